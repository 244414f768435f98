/**
 * The small reading helpers of attribution.ts: bounded concurrency, one-trip reads of /proc files
 * printed from a process's memory, and synchronous reads that note a vanished process.
 */
import { closeSync, constants, openSync, read } from 'node:fs';

/** Runs `work` over items with at most `limit` running at once. */
export async function forEachLimited<T>(
  items: readonly T[],
  limit: number,
  work: (item: T) => Promise<void>,
) {
  let next = 0;
  const worker = async () => {
    while (next < items.length) await work(items[next++]!);
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
}

/**
 * Reads a /proc file that the kernel prints from the process's memory (cmdline) with one trip
 * through the thread pool: the open does not touch the process (synchronous, microseconds), only
 * the read may wait for its memory lock. (fs.readFile takes four trips, each a thread wake-up that
 * costs milliseconds on a loaded machine.) The fd is closed whenever the read returns, even late.
 */
export function readProcessMemoryFile(path: string): Promise<Buffer> {
  let fd: number;
  try {
    // O_NONBLOCK: opening something else than a /proc file (a FIFO) must not wait either.
    fd = openSync(path, constants.O_RDONLY | constants.O_NONBLOCK);
  } catch (e) {
    return Promise.reject(e);
  }
  const chunks: Buffer[] = [];
  const next = (resolve: (b: Buffer) => void, reject: (e: Error) => void) => {
    const buffer = Buffer.allocUnsafe(chunks.length === 0 ? 16_384 : 262_144);
    read(fd, buffer, 0, buffer.length, null, (error, n) => {
      if (error) return reject(error);
      chunks.push(buffer.subarray(0, n));
      // The kernel fills the whole buffer unless the arguments end first: a short read is the end.
      if (n < buffer.length) resolve(Buffer.concat(chunks));
      else next(resolve, reject);
    });
  };
  return new Promise<Buffer>(next).finally(() => closeSync(fd));
}

/** Runs a synchronous read, keeping its value or noting that it failed (the process may be gone). */
/** Throws: the process is gone (for settle). */
export function fail(): never {
  throw new Error('gone');
}

export function settle<T>(
  read: () => T,
): { status: 'fulfilled'; value: T } | { status: 'rejected'; value?: undefined } {
  try {
    return { status: 'fulfilled', value: read() };
  } catch {
    return { status: 'rejected' };
  }
}
