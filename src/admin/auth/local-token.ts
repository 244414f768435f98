/**
 * The local administrator token: 32 random bytes (base64url) in a file only
 * its owner (root, for the engine) can read. A console on the same machine
 * that can read the file proves it is run by that user and logs in as
 * administrator with it, without a password.
 */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { link, open, readFile, unlink } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { ErrorCode, WardenError } from '../../errors.js';
import { assertPrivateFile, ensureDirectory, statIfExists, syncDirectory } from '../private-file.js';

const TOKEN_PATTERN = /^[A-Za-z0-9_-]{43}$/;

function ioError(action: string, path: string, e: unknown): WardenError {
  return new WardenError(ErrorCode.FILE_IO, `cannot ${action} ${path}: ${(e as Error).message}`, {
    cause: e,
  });
}

/**
 * Returns the token in `path`, creating the file first when it is missing
 * (mode 0600; owned by root when run as root; its directory made 0700). An
 * existing file that group or others may read or write, that belongs to
 * another user, or that does not hold a token is refused with WARDEN_E_FILE_IO.
 */
export async function ensureLocalToken(path: string): Promise<string> {
  const existing = await readExistingToken(path);
  if (existing !== undefined) return existing;
  await ensureDirectory(dirname(path));
  const token = randomBytes(32).toString('base64url');
  const tmp = join(dirname(path), `.${basename(path)}.${process.pid}.${randomBytes(6).toString('hex')}.tmp`);
  try {
    const fh = await open(tmp, 'wx', 0o600);
    try {
      await fh.chmod(0o600);
      if (process.geteuid?.() === 0) await fh.chown(0, 0);
      await fh.writeFile(`${token}\n`);
      await fh.sync();
    } finally {
      await fh.close();
    }
    // link() fails when the target exists, so two engines starting at once agree on one token.
    await link(tmp, path);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw ioError('create the local token file', path, e);
    const winner = await readExistingToken(path);
    if (winner === undefined) throw ioError('create the local token file', path, e);
    return winner;
  } finally {
    await unlink(tmp).catch(() => undefined);
  }
  await syncDirectory(dirname(path));
  return token;
}

async function readExistingToken(path: string): Promise<string | undefined> {
  const stats = await statIfExists(path);
  if (stats === undefined) return undefined;
  assertPrivateFile(path, stats, 'local token file');
  const uid = process.geteuid?.();
  if (uid !== undefined && stats.uid !== uid) {
    throw new WardenError(
      ErrorCode.FILE_IO,
      `the local token file ${path} belongs to user id ${stats.uid}, not to this process's user (${uid}), so it is refused`,
      { suggestion: `remove ${path}; the engine makes a new one when it starts` },
    );
  }
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (e) {
    throw ioError('read', path, e);
  }
  const token = text.trim();
  if (!TOKEN_PATTERN.test(token)) {
    throw new WardenError(ErrorCode.FILE_IO, `the local token file ${path} does not hold a token`, {
      suggestion: `remove ${path}; the engine makes a new one when it starts`,
    });
  }
  return token;
}

/** Compares two tokens in time that depends on neither their contents nor their lengths. */
export function tokensEqual(a: string, b: string): boolean {
  const da = createHash('sha256').update(a, 'utf8').digest();
  const db = createHash('sha256').update(b, 'utf8').digest();
  return timingSafeEqual(da, db) && a === b;
}
