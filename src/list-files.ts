/**
 * Reads what a list or rule subscription names on this host: a file, or a directory whose regular
 * files (not hidden ones) are read in name order as one text (OpenSnitch keeps its lists so). One
 * reader for the engine (src/engine/remote-source.ts) and the console's explain and lint of a policy
 * file (src/console/files.ts), so both see the same text.
 *
 * The engine reads as root what a policy names, and a path may be one a user can change: each file
 * is opened without blocking (a FIFO put in its place is refused, not waited on), must be a regular
 * file once open, and the whole read has a deadline (a file whose reads never return, e.g. on a FUSE
 * mount a user serves, fails the attempt; the next read of that path fails at once until it returns,
 * so at most one thread waits per path). A file is `quotable` (its bad lines may be shown in
 * engine.status and the log) only when no other user could have made it point elsewhere: not a
 * symlink, owned by root or the reader, not writable by group or others, in a directory alike.
 */
import { createHash } from 'node:crypto';
import { constants } from 'node:fs';
import { type FileHandle, lstat, open, readdir, stat } from 'node:fs/promises';
import { dirname, join } from 'node:path';

/** Longest whole read of one list (all its files) before the attempt fails. */
const READ_DEADLINE_MS = 60_000;

/** Paths whose read passed its deadline and has not returned yet. */
const stuck = new Set<string>();

/**
 * Streams the file (or the directory's files, each followed by a newline so a last line without one
 * does not run into the next file's first) to `push`, refusing it past `maxBytes`. Returns its size
 * and the SHA-256 of what was pushed (hex).
 */
export async function readListFiles(
  path: string,
  maxBytes: number,
  push: (chunk: Buffer, quotable: boolean) => void,
  deadlineMs = READ_DEADLINE_MS,
): Promise<{ bytes: number; digest: string }> {
  if (stuck.has(path)) throw new Error(`an earlier read of ${path} has not returned yet`);
  let timer: NodeJS.Timeout | undefined;
  let late = false;
  const reading = readAll(path, maxBytes, (chunk, quotable) => {
    if (!late) push(chunk, quotable);
  });
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      late = true;
      stuck.add(path);
      reading.then(
        () => stuck.delete(path),
        () => stuck.delete(path),
      );
      reject(new Error(`reading ${path} took longer than ${deadlineMs / 1000} s`));
    }, deadlineMs);
    timer.unref();
  });
  try {
    return await Promise.race([reading, deadline]);
  } finally {
    clearTimeout(timer);
  }
}

async function readAll(
  path: string,
  maxBytes: number,
  push: (chunk: Buffer, quotable: boolean) => void,
): Promise<{ bytes: number; digest: string }> {
  // The path may be a symlink to a directory (its files are then not quotable: see openRegular).
  const top = await stat(path).catch(() => undefined);
  const directory = top?.isDirectory() === true;
  let files: string[];
  if (directory) {
    const entries = await readdir(path, { withFileTypes: true });
    files = entries
      .filter((e) => !e.name.startsWith('.') && (e.isFile() || e.isSymbolicLink()))
      .map((e) => join(path, e.name))
      .sort();
  } else files = [path];
  const hash = createHash('sha256');
  const newline = Buffer.from('\n');
  let bytes = 0;
  for (const file of files) {
    const opened = await openRegular(file, directory);
    if (opened === null) continue;
    const { handle, quotable } = opened;
    try {
      const stream = handle.createReadStream({ highWaterMark: 1 << 20, autoClose: false });
      for await (const chunk of stream as AsyncIterable<Buffer>) {
        bytes += chunk.length;
        if (bytes > maxBytes) {
          stream.destroy();
          throw new Error(`more than its bound of ${maxBytes} bytes`);
        }
        push(chunk, quotable);
        hash.update(chunk);
      }
    } finally {
      await handle.close().catch(() => undefined);
    }
    push(newline, quotable);
    hash.update(newline);
  }
  return { bytes, digest: hash.digest('hex') };
}

/**
 * Opens a file to read, refusing anything but a regular file, and says whether it may be quoted. A
 * directory's `member` that is not a regular file (a symlink to a directory or to nothing, a FIFO) is
 * passed over: null.
 */
async function openRegular(
  file: string,
  member: boolean,
): Promise<{ handle: FileHandle; quotable: boolean } | null> {
  let handle: FileHandle;
  try {
    handle = await open(file, constants.O_RDONLY | constants.O_NONBLOCK | constants.O_NOCTTY);
  } catch (e) {
    if (member && (e as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw e;
  }
  try {
    const opened = await handle.stat();
    if (!opened.isFile()) {
      if (!member) throw new Error(`${file} is not a regular file or a directory`);
      await handle.close().catch(() => undefined);
      return null;
    }
    const link = await lstat(file);
    const parent = await lstat(dirname(file));
    const uid = process.geteuid?.() ?? 0;
    const ownedSafely = (s: { uid: number; mode: number }) =>
      (s.uid === 0 || s.uid === uid) && (s.mode & 0o022) === 0;
    const quotable =
      !link.isSymbolicLink() &&
      link.ino === opened.ino &&
      link.dev === opened.dev &&
      ownedSafely(opened) &&
      ownedSafely(parent);
    return { handle, quotable };
  } catch (e) {
    await handle.close().catch(() => undefined);
    throw e;
  }
}
