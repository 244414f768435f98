/**
 * The console's named list of engines (`~/.config/warden/engines.json`), so
 * commands can say `--engine office` instead of a host and a user every time.
 */
import { mkdir, open, readFile, rename } from 'node:fs/promises';
import { homedir } from 'node:os';
import { dirname, isAbsolute, join } from 'node:path';
import { ErrorCode, WardenError } from '../errors.js';

export const DEFAULT_PORT = 44334;

/** One engine the console knows. */
export interface EngineEntry {
  readonly host: string;
  readonly port: number;
  /** User to log in as; absent: the local administrator token. */
  readonly user?: string;
}

export interface EnginesFile {
  readonly version: 1;
  readonly default?: string;
  readonly engines: Readonly<Record<string, EngineEntry>>;
  /** Named groups of engines for `warden fleet` (docs/fleet.md), members in the order given. */
  readonly groups?: Readonly<Record<string, readonly string[]>>;
  /** When the console last reached each engine (ISO 8601), for `warden fleet status`. */
  readonly contacts?: Readonly<Record<string, string>>;
}

/** A group name: 1-64 letters, digits, _ . - (not a word `--group` could confuse with an option). */
const GROUP_NAME = /^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,63}$/;

/** The console's configuration directory: $XDG_CONFIG_HOME/warden or ~/.config/warden. */
export function consoleConfigDir(env: Readonly<Record<string, string | undefined>> = process.env): string {
  const xdg = env.XDG_CONFIG_HOME;
  return join(
    xdg !== undefined && xdg !== '' && isAbsolute(xdg) ? xdg : join(homedir(), '.config'),
    'warden',
  );
}

/** Parses `HOST`, `HOST:PORT`, `[IPv6]` or `[IPv6]:PORT`. */
export function parseHostPort(text: string): { host: string; port: number } {
  const bracket = /^\[([^\]]+)\](?::(\d{1,5}))?$/.exec(text);
  const plain = /^([^:]+)(?::(\d{1,5}))?$/.exec(text);
  const m = bracket ?? plain;
  const host = m?.[1] ?? (text.includes(':') && !bracket ? text : undefined);
  const port = m?.[2] === undefined ? DEFAULT_PORT : Number(m[2]);
  if (host === undefined || host === '' || port < 1 || port > 65535) {
    throw new WardenError(ErrorCode.USAGE, `"${text}" is not HOST[:PORT]`, {
      suggestion: 'e.g. warden connect fw.example.net:44334, or [2001:db8::1]:44334',
    });
  }
  return { host, port };
}

/** `host:port` as the known-hosts file keys it. */
export function hostPortKey(e: { host: string; port: number }): string {
  return e.host.includes(':') ? `[${e.host}]:${e.port}` : `${e.host}:${e.port}`;
}

export class EngineList {
  #file: EnginesFile;
  readonly #path: string;

  private constructor(path: string, file: EnginesFile) {
    this.#path = path;
    this.#file = file;
  }

  /** Loads the list; a missing file is an empty list. */
  static async open(path = join(consoleConfigDir(), 'engines.json')): Promise<EngineList> {
    let text: string | undefined;
    try {
      text = await readFile(path, 'utf8');
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT')
        throw new WardenError(ErrorCode.FILE_IO, `cannot read ${path}: ${(e as Error).message}`);
    }
    if (text === undefined) return new EngineList(path, { version: 1, engines: {} });
    try {
      const parsed = JSON.parse(text) as EnginesFile;
      if (parsed.version !== 1 || typeof parsed.engines !== 'object')
        throw new Error('not a version 1 engines file');
      const groups = parsed.groups as unknown;
      if (
        groups !== undefined &&
        (typeof groups !== 'object' ||
          groups === null ||
          Object.values(groups).some((m) => !Array.isArray(m) || m.some((x) => typeof x !== 'string')))
      )
        throw new Error('"groups" must map each group name to a list of engine names');
      return new EngineList(path, parsed);
    } catch (e) {
      throw new WardenError(
        ErrorCode.FILE_IO,
        `${path} is not a valid engines file: ${(e as Error).message}`,
        { suggestion: 'Fix or delete the file; `warden connect` writes it again.' },
      );
    }
  }

  get path(): string {
    return this.#path;
  }

  all(): [string, EngineEntry][] {
    return Object.entries(this.#file.engines);
  }

  get defaultName(): string | undefined {
    return this.#file.default;
  }

  /** Finds an engine by name, or takes the text as HOST[:PORT]; no name: the default engine, else this host. */
  resolve(nameOrAddress: string | undefined): { name: string; entry: EngineEntry } {
    const name = nameOrAddress ?? this.#file.default;
    if (name === undefined) return { name: 'local', entry: { host: '127.0.0.1', port: DEFAULT_PORT } };
    const known = this.#file.engines[name];
    if (known) return { name, entry: known };
    const hp = parseHostPort(name);
    const match = this.all().find(([, e]) => e.host === hp.host && e.port === hp.port);
    return match ? { name: match[0], entry: match[1] } : { name, entry: hp };
  }

  /** Saves an engine under a name (and makes it the default when it is the first). */
  async save(name: string, entry: EngineEntry): Promise<void> {
    this.#file = {
      ...this.#file,
      default: this.#file.default ?? name,
      engines: { ...this.#file.engines, [name]: entry },
    };
    await this.#write();
  }

  async remove(name: string): Promise<boolean> {
    if (!(name in this.#file.engines)) return false;
    const { [name]: _gone, ...rest } = this.#file.engines;
    const groups: Record<string, readonly string[]> = {};
    for (const [g, members] of Object.entries(this.#file.groups ?? {}))
      groups[g] = members.filter((m) => m !== name);
    const { [name]: _contact, ...contacts } = this.#file.contacts ?? {};
    this.#file = {
      version: 1,
      ...(this.#file.default === name ? {} : { default: this.#file.default }),
      engines: rest,
      groups,
      contacts,
    };
    await this.#write();
    return true;
  }

  /** The groups, name -> members. */
  groups(): Record<string, readonly string[]> {
    return { ...(this.#file.groups ?? {}) };
  }

  /** A group's members; WARDEN_E_NOT_FOUND naming the groups there are when it does not exist. */
  group(name: string): readonly string[] {
    const members = this.#file.groups?.[name];
    if (members !== undefined) return members;
    const known = Object.keys(this.#file.groups ?? {});
    throw new WardenError(ErrorCode.NOT_FOUND, `no engine group is named "${name}"`, {
      suggestion:
        known.length === 0
          ? 'Make one with `warden engines group add NAME ENGINE...`.'
          : `The groups are: ${known.join(', ')} (\`warden engines group list\`).`,
    });
  }

  /** Adds engines (by name, each remembered already) to a group, creating it; returns those it lacked. */
  async addToGroup(group: string, members: readonly string[]): Promise<string[]> {
    if (!GROUP_NAME.test(group))
      throw new WardenError(
        ErrorCode.USAGE,
        `"${group}" is not a group name: 1-64 letters, digits, _ . - starting with a letter or digit`,
      );
    const unknown = members.filter((m) => !(m in this.#file.engines));
    if (unknown.length > 0)
      throw new WardenError(
        ErrorCode.NOT_FOUND,
        `no engine is named ${unknown.map((u) => `"${u}"`).join(', ')} in ${this.#path}`,
        {
          suggestion: `Groups hold remembered engines: \`warden engines list\` names them; add one with \`warden connect HOST --name NAME\`. Known: ${Object.keys(this.#file.engines).join(', ') || '(none)'}.`,
        },
      );
    const before = this.#file.groups?.[group] ?? [];
    const added = [...new Set(members)].filter((m) => !before.includes(m));
    this.#file = { ...this.#file, groups: { ...(this.#file.groups ?? {}), [group]: [...before, ...added] } };
    await this.#write();
    return added;
  }

  /** Removes members from a group, or the group itself when `members` is empty. */
  async removeFromGroup(group: string, members: readonly string[]): Promise<void> {
    const before = this.group(group);
    const missing = members.filter((m) => !before.includes(m));
    if (missing.length > 0)
      throw new WardenError(
        ErrorCode.NOT_FOUND,
        `engine group "${group}" has no member ${missing.map((m) => `"${m}"`).join(', ')} (its members: ${before.join(', ') || '(none)'})`,
      );
    const { [group]: _old, ...others } = this.#file.groups ?? {};
    const next =
      members.length === 0 ? others : { ...others, [group]: before.filter((m) => !members.includes(m)) };
    this.#file = { ...this.#file, groups: next };
    await this.#write();
  }

  /** When the console last reached an engine (ISO 8601), if ever recorded. */
  lastContact(name: string): string | undefined {
    return this.#file.contacts?.[name];
  }

  /**
   * Records that the console reached these engines now (one write for all). A contact recorded less
   * than a minute ago is not written again: the Fleet page asks every 5 s and need not rewrite the file.
   */
  async contacted(names: readonly string[], at = new Date()): Promise<void> {
    const contacts = { ...(this.#file.contacts ?? {}) };
    const stale = names.filter(
      (n) => n in this.#file.engines && !(at.getTime() - Date.parse(contacts[n] ?? '') < 60_000),
    );
    if (stale.length === 0) return;
    for (const n of stale) contacts[n] = at.toISOString();
    this.#file = { ...this.#file, contacts };
    await this.#write();
  }

  async #write(): Promise<void> {
    const dir = dirname(this.#path);
    await mkdir(dir, { recursive: true, mode: 0o700 });
    const tmp = `${this.#path}.${process.pid}.tmp`;
    const fh = await open(tmp, 'w', 0o600);
    try {
      await fh.writeFile(`${JSON.stringify(this.#file, null, 2)}\n`);
      await fh.sync();
    } finally {
      await fh.close();
    }
    await rename(tmp, this.#path);
  }
}
