/**
 * The engine's configuration as the administration server sees it: the
 * policy and the settings, read and replaced whole. FileConfigStore keeps
 * them as YAML files written atomically (temporary file, fsync, rename, fsync
 * of the directory), so a crash never leaves a torn file. History and
 * confirmed apply build on this in the daemon (issue 5).
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { ErrorCode, WardenError } from '../errors.js';
import { type Policy, parsePolicyText, serializePolicy } from '../policy/index.js';
import { parseSettingsText, type Settings, serializeSettings } from '../settings/index.js';
import { writeFileAtomic } from './private-file.js';

/** Read and replace the configuration. Replacing is atomic per file. */
export interface ConfigStore {
  policy(): Policy;
  settings(): Settings;
  setPolicy(policy: Policy): Promise<void>;
  setSettings(settings: Settings): Promise<void>;
}

async function readIfExists(path: string): Promise<string | undefined> {
  try {
    return await readFile(path, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new WardenError(ErrorCode.FILE_IO, `cannot read ${path}: ${(e as Error).message}`, { cause: e });
  }
}

/** policy.yaml and settings.yaml in one directory. Missing files mean the defaults (and are written on first change). */
export class FileConfigStore implements ConfigStore {
  #policy: Policy;
  #settings: Settings;
  readonly #dir: string;

  private constructor(dir: string, policy: Policy, settings: Settings) {
    this.#dir = dir;
    this.#policy = policy;
    this.#settings = settings;
  }

  /** Loads the files; an invalid file is refused with file, line and field (nothing is overwritten). */
  static async open(dir: string): Promise<FileConfigStore> {
    const policyPath = join(dir, 'policy.yaml');
    const settingsPath = join(dir, 'settings.yaml');
    const policyText = await readIfExists(policyPath);
    const settingsText = await readIfExists(settingsPath);
    const policy = parsePolicyText(policyText ?? 'rules: []', { file: policyPath });
    const settings = parseSettingsText(settingsText ?? '{}', { file: settingsPath });
    return new FileConfigStore(dir, policy, settings);
  }

  /**
   * Reads both files again (after a hand edit, on SIGHUP). A file with an error is refused with
   * file, line and field, and the configuration in force stays as it was.
   */
  async reload(): Promise<void> {
    const fresh = await FileConfigStore.open(this.#dir);
    this.#policy = fresh.#policy;
    this.#settings = fresh.#settings;
  }

  policy(): Policy {
    return this.#policy;
  }

  settings(): Settings {
    return this.#settings;
  }

  async setPolicy(policy: Policy): Promise<void> {
    await writeFileAtomic(join(this.#dir, 'policy.yaml'), serializePolicy(policy), 0o644);
    this.#policy = policy;
  }

  async setSettings(settings: Settings): Promise<void> {
    await writeFileAtomic(join(this.#dir, 'settings.yaml'), serializeSettings(settings), 0o644);
    this.#settings = settings;
  }
}
