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
}

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
    this.#file = {
      version: 1,
      ...(this.#file.default === name ? {} : { default: this.#file.default }),
      engines: rest,
    };
    await this.#write();
    return true;
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
