import { mkdir, readFile, stat } from 'node:fs/promises';
import { homedir } from 'node:os';
import { dirname, isAbsolute, join } from 'node:path';
import { writeFileAtomic } from '../atomic-file.js';
import { ErrorCode, WardenError } from '../errors.js';

export interface KnownHost {
  readonly hostPort: string;
  readonly fingerprint: string;
  /** ISO 8601 time it was pinned. */
  readonly added: string;
}

export type HostCheck = { status: 'known' } | { status: 'unknown' } | { status: 'changed'; pinned: string };

export interface KnownHostsOptions {
  /** Clock for the `added` time of new pins. */
  readonly now?: () => Date;
}

const FINGERPRINT_PATTERN = /^SHA256:[0-9A-F]{2}(:[0-9A-F]{2}){31}$/;

/** `$XDG_CONFIG_HOME/warden/known-hosts.json`, or `~/.config/warden/known-hosts.json`. */
export function defaultKnownHostsPath(
  env: Readonly<Record<string, string | undefined>> = process.env,
  home: string = homedir(),
): string {
  const xdg = env.XDG_CONFIG_HOME;
  // The XDG spec says a relative value is invalid and must be ignored.
  const base = xdg !== undefined && xdg !== '' && isAbsolute(xdg) ? xdg : join(home, '.config');
  return join(base, 'warden', 'known-hosts.json');
}

export { fingerprintOfDer } from '../protocol/fingerprint.js';

/** A fingerprint in canonical form (upper-case hex), or undefined when `text` is not one. */
export function normalizeFingerprint(text: string): string | undefined {
  const upper = text.trim().toUpperCase();
  return FINGERPRINT_PATTERN.test(upper) ? upper : undefined;
}

/** Host names are matched without regard to case. */
function keyOf(hostPort: string): string {
  const key = hostPort.trim().toLowerCase();
  if (key === '') throw new WardenError(ErrorCode.PARAMS_INVALID, 'an engine address must not be empty');
  return key;
}

function ioError(action: string, path: string, e: unknown): WardenError {
  return new WardenError(ErrorCode.FILE_IO, `cannot ${action} ${path}: ${(e as Error).message}`, {
    cause: e,
  });
}

function malformed(path: string, why: string): WardenError {
  return new WardenError(ErrorCode.FILE_IO, `the known-hosts file ${path} is malformed: ${why}`, {
    suggestion: `fix ${path}, or remove it and accept each engine's fingerprint again`,
  });
}

/** Reads and checks the file; an empty map when it does not exist. */
async function load(path: string): Promise<Map<string, KnownHost>> {
  let text: string;
  try {
    const stats = await stat(path);
    if ((stats.mode & 0o022) !== 0) {
      throw new WardenError(
        ErrorCode.FILE_IO,
        `the known-hosts file ${path} has mode 0${(stats.mode & 0o777).toString(8)}: group or others may change it, so it is refused`,
        { suggestion: `make it writable by its owner only: chmod 600 ${path}` },
      );
    }
    text = await readFile(path, 'utf8');
  } catch (e) {
    if (e instanceof WardenError) throw e;
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return new Map();
    throw ioError('read', path, e);
  }
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (e) {
    throw malformed(path, (e as Error).message);
  }
  if (typeof doc !== 'object' || doc === null || Array.isArray(doc))
    throw malformed(path, 'not a JSON object');
  const { version, hosts } = doc as { version?: unknown; hosts?: unknown };
  if (version !== 1) throw malformed(path, `unsupported version ${JSON.stringify(version)} (expected 1)`);
  if (typeof hosts !== 'object' || hosts === null || Array.isArray(hosts))
    throw malformed(path, '"hosts" is not an object');
  const out = new Map<string, KnownHost>();
  for (const [hostPort, entry] of Object.entries(hosts)) {
    const { fingerprint, added } = (entry ?? {}) as { fingerprint?: unknown; added?: unknown };
    const fp = typeof fingerprint === 'string' ? normalizeFingerprint(fingerprint) : undefined;
    if (fp === undefined)
      throw malformed(path, `hosts["${hostPort}"].fingerprint is not a SHA256 fingerprint`);
    if (hostPort.trim() === '') throw malformed(path, 'an engine address is empty');
    out.set(keyOf(hostPort), { hostPort: keyOf(hostPort), fingerprint: fp, added: String(added ?? '') });
  }
  return out;
}

function serialize(hosts: ReadonlyMap<string, KnownHost>): string {
  const obj: Record<string, { fingerprint: string; added: string }> = {};
  for (const [key, h] of [...hosts].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)))
    obj[key] = { fingerprint: h.fingerprint, added: h.added };
  return `${JSON.stringify({ version: 1, hosts: obj }, null, 2)}\n`;
}

/** The file (mode 0600) in its directory (made 0700 when missing), written atomically. */
async function writeAtomic(path: string, text: string): Promise<void> {
  try {
    await mkdir(dirname(path), { recursive: true, mode: 0o700 });
  } catch (e) {
    throw ioError('write', path, e);
  }
  await writeFileAtomic(path, text, 0o600);
}

/** The known-hosts file, loaded in memory; pin and forget write it through. */
export class KnownHosts {
  readonly path: string;
  #hosts: Map<string, KnownHost>;
  readonly #now: () => Date;
  #queue: Promise<unknown> = Promise.resolve();

  private constructor(path: string, hosts: Map<string, KnownHost>, now: () => Date) {
    this.path = path;
    this.#hosts = hosts;
    this.#now = now;
  }

  /** Loads the file at `path`; a missing file is an empty list (created by the first pin). */
  static async open(path: string, options: KnownHostsOptions = {}): Promise<KnownHosts> {
    return new KnownHosts(path, await load(path), options.now ?? (() => new Date()));
  }

  /** The fingerprint pinned for `hostPort`, if any. */
  lookup(hostPort: string): string | undefined {
    return this.#hosts.get(keyOf(hostPort))?.fingerprint;
  }

  /** Every pinned engine, sorted by address. */
  list(): KnownHost[] {
    return [...this.#hosts.values()].sort((a, b) => (a.hostPort < b.hostPort ? -1 : 1));
  }

  /** Compares a presented fingerprint with the pinned one. */
  check(hostPort: string, fingerprint: string): HostCheck {
    const pinned = this.lookup(hostPort);
    if (pinned === undefined) return { status: 'unknown' };
    return pinned === normalizeFingerprint(fingerprint) ? { status: 'known' } : { status: 'changed', pinned };
  }

  /** Pins (or re-pins) `fingerprint` for `hostPort`. Pins other consoles wrote meanwhile are kept. */
  async pin(hostPort: string, fingerprint: string): Promise<void> {
    const key = keyOf(hostPort);
    const fp = normalizeFingerprint(fingerprint);
    if (fp === undefined) {
      throw new WardenError(ErrorCode.PARAMS_INVALID, `not a fingerprint: ${JSON.stringify(fingerprint)}`, {
        suggestion:
          'a fingerprint looks like SHA256:AB:CD:… (32 hex pairs), as the engine prints it at start',
      });
    }
    await this.#change((hosts) => {
      hosts.set(key, { hostPort: key, fingerprint: fp, added: this.#now().toISOString() });
      return true;
    });
  }

  /** Removes the pin of `hostPort`; false when there was none (nothing is written then). */
  async forget(hostPort: string): Promise<boolean> {
    const key = keyOf(hostPort);
    return this.#change((hosts) => hosts.delete(key));
  }

  /** Re-reads the file (another console may have changed it), applies `edit`, writes when it changed something. */
  #change(edit: (hosts: Map<string, KnownHost>) => boolean): Promise<boolean> {
    const run = this.#queue.then(async () => {
      const hosts = await load(this.path);
      const changed = edit(hosts);
      if (changed) await writeAtomic(this.path, serialize(hosts));
      this.#hosts = hosts;
      return changed;
    });
    this.#queue = run.catch(() => undefined);
    return run;
  }
}

/**
 * The engine at `hostPort` presented a certificate other than the pinned one:
 * refuse, loudly, the way SSH does for a changed host key.
 */
export function fingerprintMismatchError(
  hostPort: string,
  pinned: string,
  presented: string,
  file: string = defaultKnownHostsPath(),
): WardenError {
  const message = [
    "WARNING: THE ENGINE'S IDENTITY HAS CHANGED!",
    `The engine at ${hostPort} presented a certificate that is not the one pinned for it.`,
    'Someone could be intercepting this connection right now (a man-in-the-middle attack),',
    'or the engine was reinstalled and made a new certificate.',
    `  pinned:    ${pinned}`,
    `  presented: ${presented}`,
    `The pinned fingerprint is in ${file}.`,
    'The connection was refused; nothing was sent to it.',
  ].join('\n');
  return new WardenError(ErrorCode.FINGERPRINT_MISMATCH, message, {
    suggestion:
      `verify the fingerprint with the engine's administrator (\`wardend --fingerprint\` on the engine prints it); ` +
      `only if the change is expected, run \`warden engines forget ${hostPort}\` and connect again`,
  });
}

/** The console has not met the engine at `hostPort` before, and its fingerprint was not accepted. */
export function fingerprintUnknownError(hostPort: string, presented: string): WardenError {
  const message = [
    `The engine at ${hostPort} is not known yet, and its fingerprint was not accepted.`,
    `  presented: ${presented}`,
  ].join('\n');
  return new WardenError(ErrorCode.FINGERPRINT_UNKNOWN, message, {
    suggestion:
      'compare it with the fingerprint the engine prints at start (or `wardend --fingerprint` on the engine); ' +
      `if they are the same, accept it: connect again with \`--accept ${presented}\` or answer yes at the prompt`,
  });
}
