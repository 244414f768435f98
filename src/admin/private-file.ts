/**
 * Files that hold secrets (the users file, the local token, the TLS key):
 * written atomically with a mode that only the owner can read, and refused on
 * reading when group or others could read or write them (as ssh refuses a
 * private key with loose permissions).
 */
import { randomBytes } from 'node:crypto';
import type { Stats } from 'node:fs';
import { mkdir, open, rename, stat, unlink } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { ErrorCode, WardenError } from '../errors.js';

/** `0o644` as `0644`: the form chmod takes. */
export function formatMode(mode: number): string {
  return `0${(mode & 0o777).toString(8).padStart(3, '0')}`;
}

function ioError(action: string, path: string, e: unknown): WardenError {
  return new WardenError(ErrorCode.FILE_IO, `cannot ${action} ${path}: ${(e as Error).message}`, {
    cause: e,
  });
}

/** Creates `dir` (and its parents) with `mode` when it is missing; an existing directory is left as it is. */
export async function ensureDirectory(dir: string, mode = 0o700): Promise<void> {
  try {
    await mkdir(dir, { recursive: true, mode });
  } catch (e) {
    throw ioError('create the directory', dir, e);
  }
}

/**
 * Writes `data` to `path` atomically: a temporary file in the same directory
 * (created with `mode`, whatever the umask), fsync, rename over the target,
 * fsync of the directory. A crash leaves the old file or the new one, never a mix.
 */
export async function writeFileAtomic(path: string, data: string, mode: number): Promise<void> {
  const dir = dirname(path);
  const tmp = join(dir, `.${basename(path)}.${process.pid}.${randomBytes(6).toString('hex')}.tmp`);
  try {
    const fh = await open(tmp, 'wx', mode);
    try {
      await fh.chmod(mode);
      await fh.writeFile(data);
      await fh.sync();
    } finally {
      await fh.close();
    }
    await rename(tmp, path);
  } catch (e) {
    await unlink(tmp).catch(() => undefined);
    throw ioError('write', path, e);
  }
  await syncDirectory(dir);
}

/** Fsyncs a directory so a rename or a new entry in it survives a crash. */
export async function syncDirectory(dir: string): Promise<void> {
  try {
    const d = await open(dir, 'r');
    try {
      await d.sync();
    } finally {
      await d.close();
    }
  } catch (e) {
    throw ioError('sync the directory', dir, e);
  }
}

/** Stats `path`; undefined when it does not exist. Any other failure is a WARDEN_E_FILE_IO. */
export async function statIfExists(path: string): Promise<Stats | undefined> {
  try {
    return await stat(path);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw ioError('read', path, e);
  }
}

/**
 * Refuses a secret file that is not a regular file, or that group or others
 * may read or write: `what` names it in the message ("users file").
 */
export function assertPrivateFile(path: string, stats: Stats, what: string): void {
  if (!stats.isFile()) throw new WardenError(ErrorCode.FILE_IO, `the ${what} ${path} is not a regular file`);
  if ((stats.mode & 0o077) !== 0) {
    throw new WardenError(
      ErrorCode.FILE_IO,
      `the ${what} ${path} has mode ${formatMode(stats.mode)}: group or others may read or write it, so it is refused`,
      { suggestion: `make it readable by its owner only: chmod 600 ${path}` },
    );
  }
}
