/**
 * The engine's configuration as the administration server sees it: the
 * policy and the settings, read and replaced whole. FileConfigStore keeps
 * them as YAML files written atomically (temporary file, fsync, rename, fsync
 * of the directory), so a crash never leaves a torn file. Every change is
 * also kept as a numbered version in `history/` beside the files (who, when,
 * from where, both texts), so it can be listed, compared and rolled back.
 */
import { readdir, readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { isDeepStrictEqual } from 'node:util';
import { ErrorCode, WardenError } from '../errors.js';
import {
  type Policy,
  parsePolicyText,
  policyToPlain,
  serializePolicy,
  validatePolicy,
} from '../policy/index.js';
import { parseSettingsText, type Settings, serializeSettings, validateSettings } from '../settings/index.js';
import { ensureDirectory, tightenFiles, writeFileAtomic } from './private-file.js';
import { revertChange } from './revert.js';

/** Who made a change and from where (a user name and an address, or a word like "file"). */
export interface ChangeMeta {
  readonly user: string;
  readonly source: string;
  /**
   * Called inside the change with the version number it will get, before any file is written: a change
   * applied with confirm records its pending confirmation here, so no crash can leave it applied unrecorded.
   * When it throws, nothing is written.
   */
  readonly beforeWrite?: (version: number) => Promise<void>;
}

/** What a version changed: the policy, the settings, a rollback, or a reload of hand-edited files. */
export type ChangeKind = 'policy' | 'settings' | 'rollback' | 'revert' | 'reload' | 'initial';

/** One version as listed: everything but the texts. */
export interface VersionSummary {
  readonly version: number;
  /** ISO 8601. */
  readonly time: string;
  readonly user: string;
  readonly source: string;
  readonly what: ChangeKind;
  /** For a rollback: the version it restored. */
  readonly restores?: number;
  /** For a revert: the version whose effect it undid. */
  readonly reverts?: number;
}

/** One version with the full texts of policy.yaml and settings.yaml after the change. */
export interface ConfigVersion extends VersionSummary {
  readonly policy: string;
  readonly settings: string;
}

/** Read and replace the configuration. Replacing is atomic per file; every change is a new version. */
export interface ConfigStore {
  policy(): Policy;
  settings(): Settings;
  /** Replaces the policy; returns the new version number. */
  setPolicy(policy: Policy, meta?: ChangeMeta): Promise<number>;
  /** Replaces the settings; returns the new version number. */
  setSettings(settings: Settings, meta?: ChangeMeta): Promise<number>;
  /** The kept versions, newest first. */
  history(): VersionSummary[];
  /** One kept version with its texts; WARDEN_E_NOT_FOUND when it is not kept. */
  version(n: number): Promise<ConfigVersion>;
  /** Makes the configuration of version `n` current, as a new version; returns it. */
  rollback(n: number, meta?: ChangeMeta): Promise<VersionSummary>;
  /**
   * Undoes version `n` (which changed `previous`): a rollback to `previous` when nothing came after `n`;
   * otherwise only what `n` changed is reverted, as a `revert` version, keeping the later changes. Throws
   * RevertConflict when a later change touched the same things; undefined when nothing is left to undo.
   */
  undo(n: number, previous: number, meta?: ChangeMeta): Promise<VersionSummary | undefined>;
}

/** How many versions FileConfigStore keeps by default. */
export const DEFAULT_KEEP_VERSIONS = 1000;

const UNKNOWN: ChangeMeta = { user: 'unknown', source: 'unknown' };

async function readIfExists(path: string): Promise<string | undefined> {
  try {
    return await readFile(path, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new WardenError(ErrorCode.FILE_IO, `cannot read ${path}: ${(e as Error).message}`, { cause: e });
  }
}

/**
 * Temporary files a killed writer left behind (writeFileAtomic names them `.NAME.PID.HEX.tmp`): only those
 * of the configuration files and of history/, never another program's.
 */
async function removeLeftovers(dir: string): Promise<void> {
  const leftovers = [
    { dir, pattern: /^\.(policy|settings)\.yaml\.\d+\.[0-9a-f]+\.tmp$/ },
    { dir: join(dir, 'history'), pattern: /^\.\d+\.json\.\d+\.[0-9a-f]+\.tmp$/ },
  ];
  for (const { dir: d, pattern } of leftovers) {
    const names = await readdir(d).catch(() => [] as string[]);
    for (const name of names) if (pattern.test(name)) await rm(join(d, name), { force: true });
  }
}

const versionFile = (n: number) => `${String(n).padStart(6, '0')}.json`;

async function readSummaries(dir: string): Promise<VersionSummary[]> {
  let names: string[];
  try {
    names = await readdir(dir);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw new WardenError(ErrorCode.FILE_IO, `cannot read ${dir}: ${(e as Error).message}`, { cause: e });
  }
  const out: VersionSummary[] = [];
  for (const name of names.filter((n) => /^\d+\.json$/.test(n))) {
    const text = await readIfExists(join(dir, name));
    if (text === undefined) continue;
    try {
      const { policy: _p, settings: _s, ...summary } = JSON.parse(text) as ConfigVersion;
      if (Number.isInteger(summary.version)) out.push(summary);
    } catch {
      // A damaged history file is skipped: the live configuration does not depend on it.
    }
  }
  return out.sort((a, b) => a.version - b.version);
}

interface Loaded {
  policy: Policy;
  settings: Settings;
  policyText: string;
  settingsText: string;
}

async function load(dir: string): Promise<Loaded> {
  const policyPath = join(dir, 'policy.yaml');
  const settingsPath = join(dir, 'settings.yaml');
  const policyText = await readIfExists(policyPath);
  const settingsText = await readIfExists(settingsPath);
  const policy = parsePolicyText(policyText ?? 'rules: []', { file: policyPath });
  const settings = parseSettingsText(settingsText ?? '{}', { file: settingsPath });
  return {
    policy,
    settings,
    policyText: policyText ?? serializePolicy(policy),
    settingsText: settingsText ?? serializeSettings(settings),
  };
}

/** settings.yaml may hold secrets (a proxy password): owner-only. policy.yaml holds none (0644). */
const SETTINGS_MODE = 0o600;

/** policy.yaml and settings.yaml in one directory. Missing files mean the defaults (and are written on first change). */
export class FileConfigStore implements ConfigStore {
  #current: Loaded;
  #versions: VersionSummary[];
  readonly #dir: string;
  readonly #keep: number;
  /** Changes run one after another, so versions and files never interleave. */
  #queue: Promise<unknown> = Promise.resolve();
  readonly #listeners = new Set<(what: ChangeKind) => void>();

  private constructor(dir: string, current: Loaded, versions: VersionSummary[], keep: number) {
    this.#dir = dir;
    this.#current = current;
    this.#versions = versions;
    this.#keep = keep;
  }

  /** Loads the files; an invalid file is refused with file, line and field (nothing is overwritten). */
  /** `keepVersions`: how many versions history/ keeps (at least 2, so a change can always be undone). */
  static async open(dir: string, options: { keepVersions?: number } = {}): Promise<FileConfigStore> {
    await removeLeftovers(dir);
    // settings.yaml and the history (which keeps its texts) may hold secrets (a proxy password):
    // owner-only, whatever an older version or a hand edit left.
    const history = join(dir, 'history');
    const kept = (await readdir(history).catch(() => [] as string[])).map((n) => join(history, n));
    tightenFiles([join(dir, 'settings.yaml'), history, ...kept]);
    const current = await load(dir);
    const versions = await readSummaries(join(dir, 'history'));
    const store = new FileConfigStore(
      dir,
      current,
      versions,
      Math.max(2, options.keepVersions ?? DEFAULT_KEEP_VERSIONS),
    );
    await store.#reconcile();
    return store;
  }

  /**
   * The files in force are newer than the newest version when a crash came between writing a file and
   * recording its version, or after a hand edit while the engine was stopped: they become a version
   * of their own, so history always ends with the configuration in force.
   */
  async #reconcile(): Promise<void> {
    const newest = this.#versions.at(-1);
    if (newest === undefined) return;
    const kept = await this.version(newest.version).catch(() => undefined);
    if (kept?.policy === this.#current.policyText && kept.settings === this.#current.settingsText) return;
    await this.#record('reload', { user: 'engine', source: 'file' });
  }

  /**
   * Reads both files again (after a hand edit, on SIGHUP). A file with an error is refused with
   * file, line and field, and the configuration in force stays as it was. Changed files are a new version.
   */
  async reload(meta: ChangeMeta = { user: 'root', source: 'file' }): Promise<void> {
    await this.#serially(async () => {
      const fresh = await load(this.#dir);
      const changed =
        fresh.policyText !== this.#current.policyText || fresh.settingsText !== this.#current.settingsText;
      if (changed) await this.#ensureBaseline();
      if (changed) await this.#record('reload', meta, { next: fresh });
      else this.#current = fresh;
    });
  }

  policy(): Policy {
    return this.#current.policy;
  }

  settings(): Settings {
    return this.#current.settings;
  }

  setPolicy(policy: Policy, meta: ChangeMeta = UNKNOWN): Promise<number> {
    return this.#serially(async () => {
      await this.#ensureBaseline();
      await this.#announce(meta);
      const text = serializePolicy(policy);
      await writeFileAtomic(join(this.#dir, 'policy.yaml'), text, 0o644);
      return (await this.#record('policy', meta, { next: { ...this.#current, policy, policyText: text } }))
        .version;
    });
  }

  setSettings(settings: Settings, meta: ChangeMeta = UNKNOWN): Promise<number> {
    return this.#serially(async () => {
      await this.#ensureBaseline();
      await this.#announce(meta);
      const text = serializeSettings(settings);
      await writeFileAtomic(join(this.#dir, 'settings.yaml'), text, SETTINGS_MODE);
      return (
        await this.#record('settings', meta, { next: { ...this.#current, settings, settingsText: text } })
      ).version;
    });
  }

  /**
   * Calls `listener` after every change in force (protocol, rollback, reload from the files), so
   * whatever enforces the configuration follows it; returns the unsubscribe function.
   */
  onChange(listener: (what: ChangeKind) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  history(): VersionSummary[] {
    return [...this.#versions].reverse();
  }

  async version(n: number): Promise<ConfigVersion> {
    if (!this.#versions.some((v) => v.version === n)) {
      throw new WardenError(ErrorCode.NOT_FOUND, `no configuration version ${n} is kept`, {
        suggestion: 'List the versions with `warden config history` (or the History page).',
      });
    }
    const path = join(this.#historyDir, versionFile(n));
    const text = await readIfExists(path);
    if (text === undefined) throw new WardenError(ErrorCode.NOT_FOUND, `${path} is gone`);
    try {
      return JSON.parse(text) as ConfigVersion;
    } catch (e) {
      throw new WardenError(ErrorCode.FILE_IO, `${path} is not valid JSON`, { cause: e });
    }
  }

  rollback(n: number, meta: ChangeMeta = UNKNOWN): Promise<VersionSummary> {
    return this.#serially(() => this.#restore(n, meta));
  }

  undo(n: number, previous: number, meta: ChangeMeta = UNKNOWN): Promise<VersionSummary | undefined> {
    return this.#serially(async () => {
      if (this.#versions.at(-1)?.version === n) return this.#restore(previous, meta);
      const [before, changed] = [await this.version(previous), await this.version(n)];
      const policyPlain = (t: string) => policyToPlain(parsePolicyText(t));
      const policy = validatePolicy(
        revertChange(policyPlain(before.policy), policyPlain(changed.policy), policyToPlain(this.policy())),
        { file: `policy.yaml without version ${n}` },
      );
      const settings = validateSettings(
        revertChange(
          parseSettingsText(before.settings),
          parseSettingsText(changed.settings),
          this.settings(),
        ),
        { file: `settings.yaml without version ${n}` },
      );
      const policySame = isDeepStrictEqual(policyToPlain(policy), policyToPlain(this.policy()));
      const settingsSame = isDeepStrictEqual(settings, this.settings());
      if (policySame && settingsSame) return undefined;
      const next = { ...this.#current };
      if (!policySame) {
        Object.assign(next, { policy, policyText: serializePolicy(policy) });
        await writeFileAtomic(join(this.#dir, 'policy.yaml'), next.policyText, 0o644);
      }
      if (!settingsSame) {
        Object.assign(next, { settings, settingsText: serializeSettings(settings) });
        await writeFileAtomic(join(this.#dir, 'settings.yaml'), next.settingsText, SETTINGS_MODE);
      }
      return this.#record('revert', meta, { reverts: n, next });
    });
  }

  async #restore(n: number, meta: ChangeMeta): Promise<VersionSummary> {
    const old = await this.version(n);
    // Parse first: a version that no longer validates (a newer schema) is refused before anything is written.
    const policy = parsePolicyText(old.policy, { file: `history version ${n} (policy)` });
    const settings = parseSettingsText(old.settings, { file: `history version ${n} (settings)` });
    await this.#announce(meta);
    await writeFileAtomic(join(this.#dir, 'policy.yaml'), old.policy, 0o644);
    await writeFileAtomic(join(this.#dir, 'settings.yaml'), old.settings, SETTINGS_MODE);
    const next = { policy, settings, policyText: old.policy, settingsText: old.settings };
    return this.#record('rollback', meta, { restores: n, next });
  }

  get #historyDir(): string {
    return join(this.#dir, 'history');
  }

  #serially<T>(work: () => Promise<T>): Promise<T> {
    const next = this.#queue.then(work, work);
    this.#queue = next.catch(() => {});
    return next;
  }

  async #announce(meta: ChangeMeta): Promise<void> {
    await meta.beforeWrite?.((this.#versions.at(-1)?.version ?? 0) + 1);
  }

  /** Before the first change, the configuration as found is version 1, so it can be rolled back to. */
  async #ensureBaseline(): Promise<void> {
    if (this.#versions.length === 0) await this.#record('initial', { user: 'engine', source: 'file' });
  }

  /**
   * Writes the version of `next` (default: the configuration in force) to history, then makes
   * `next` current and lists the version in one step, so settings() and history() always agree.
   */
  async #record(
    what: ChangeKind,
    meta: ChangeMeta,
    options: { restores?: number; reverts?: number; next?: Loaded } = {},
  ): Promise<VersionSummary> {
    const { restores, reverts } = options;
    const next = options.next ?? this.#current;
    await ensureDirectory(this.#historyDir, 0o700);
    const last = this.#versions.at(-1)?.version ?? 0;
    const summary: VersionSummary = {
      version: last + 1,
      time: new Date().toISOString(),
      user: meta.user,
      source: meta.source,
      what,
      ...(restores !== undefined ? { restores } : {}),
      ...(reverts !== undefined ? { reverts } : {}),
    };
    const full: ConfigVersion = {
      ...summary,
      policy: next.policyText,
      settings: next.settingsText,
    };
    await writeFileAtomic(
      join(this.#historyDir, versionFile(summary.version)),
      `${JSON.stringify(full)}\n`,
      0o600,
    );
    this.#current = next;
    this.#versions.push(summary);
    while (this.#versions.length > this.#keep) {
      const gone = this.#versions.shift()!;
      await rm(join(this.#historyDir, versionFile(gone.version)), { force: true });
    }
    if (what !== 'initial') for (const l of this.#listeners) l(what);
    return summary;
  }
}
