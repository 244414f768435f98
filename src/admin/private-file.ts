import { chmodSync, closeSync, openSync, type Stats, statSync } from 'node:fs';
import { mkdir, stat } from 'node:fs/promises';
import { ErrorCode, WardenError } from '../errors.js';

export { syncDirectory, writeFileAtomic } from '../atomic-file.js';

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

/**
 * Makes the existing ones of `paths` owner-only (directories 0700, files 0600) when group or others
 * had any access, and creates `create` (an empty file, 0600) when it is missing. Returns the paths it
 * tightened, for the caller to say so. Errors are WARDEN_E_FILE_IO naming the path.
 */
export function tightenFiles(paths: readonly string[], options: { create?: string } = {}): string[] {
  const tightened: string[] = [];
  for (const path of paths) {
    try {
      if (path === options.create) closeSync(openSync(path, 'a', 0o600));
      const s = statSync(path, { throwIfNoEntry: false });
      if (s === undefined || (s.mode & 0o077) === 0) continue;
      chmodSync(path, s.isDirectory() ? 0o700 : 0o600);
      tightened.push(path);
    } catch (e) {
      throw ioError('make owner-only', path, e);
    }
  }
  return tightened;
}
