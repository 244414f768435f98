/** The console's side of the local administrator token: read it if this user may. */
import { readFile } from 'node:fs/promises';
import { ErrorCode, WardenError } from '../errors.js';

/**
 * The token in `path`, or null when this user cannot read it (missing, or no
 * permission: the console then needs a user and password).
 */
export async function readLocalToken(path: string): Promise<string | null> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'EACCES' || code === 'EPERM' || code === 'ENOTDIR') return null;
    throw new WardenError(ErrorCode.FILE_IO, `cannot read ${path}: ${(e as Error).message}`, { cause: e });
  }
  const token = text.trim();
  return token === '' ? null : token;
}
