/**
 * Atomic file writes, the one implementation for the engine and the console: a temporary file in
 * the same directory (created with `mode`, whatever the umask), fsync, rename over the target, fsync
 * of the directory. A crash leaves the old file or the new one, never a mix.
 */
import { randomBytes } from 'node:crypto';
import { open, rename, unlink } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { ErrorCode, WardenError } from './errors.js';

function ioError(action: string, path: string, e: unknown): WardenError {
  return new WardenError(ErrorCode.FILE_IO, `cannot ${action} ${path}: ${(e as Error).message}`, {
    cause: e,
  });
}

/** Writes `data` to `path` atomically (see the file comment); errors are WARDEN_E_FILE_IO naming the file. */
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
