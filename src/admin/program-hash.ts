/**
 * programs.hash: the SHA-256 of a program on the engine's host, for `warden rules add --pin` and the
 * web rule form's "pin current". Only an absolute path to a regular, executable file is hashed (not
 * any file root can read: a hash of a secret is a way to test guesses of it), by the engine's hasher
 * (a worker thread, once per file version, bounded in size).
 */
import { constants } from 'node:fs';
import { access, stat } from 'node:fs/promises';
import { ErrorCode, WardenError } from '../errors.js';
import type { FileHasher } from './handler-context.js';

/** The programs.hash handler; without a hasher (an administration server alone) it says so. */
export function programHashHandler(
  hasher: FileHasher | undefined,
): (p: { path: string }) => Promise<{ path: string; sha256: string }> {
  return async ({ path }) => {
    if (hasher === undefined)
      throw new WardenError(ErrorCode.NOT_FOUND, 'this administration server hashes no programs', {
        suggestion: 'Connect to the engine wardend started.',
      });
    const st = await stat(path).catch((e: NodeJS.ErrnoException) => {
      throw new WardenError(
        e.code === 'ENOENT' ? ErrorCode.NOT_FOUND : ErrorCode.FILE_IO,
        `programs.hash: ${path}: ${e.code === 'ENOENT' ? 'no such file on the engine host' : e.message}`,
      );
    });
    const executable = await access(path, constants.X_OK).then(
      () => true,
      () => false,
    );
    if (!st.isFile() || !executable || (st.mode & 0o111) === 0)
      throw new WardenError(
        ErrorCode.PARAMS_INVALID,
        `programs.hash: ${path} is not an executable file (only programs are hashed)`,
      );
    try {
      return { path, sha256: (await hasher.ofPath(path)).sha256 };
    } catch (e) {
      throw new WardenError(ErrorCode.FILE_IO, `programs.hash: ${(e as Error).message}`);
    }
  };
}
