/**
 * The thread that hashes executables for sha256-pinned rules (exe-hash.ts starts it): reading and
 * hashing a 50 MB binary takes tens of milliseconds of CPU, which must not hold the engine's event
 * loop (every queued connection's verdict runs there). One request at a time: open, fstat the open
 * file (the version that is hashed), read at most `maxBytes` in 1 MiB chunks into SHA-256 (and MD5
 * when asked: only to compare with a Debian package's md5sums, it costs more than SHA-256), fstat again (a file written meanwhile is
 * refused, not hashed half old, half new).
 */
import { createHash } from 'node:crypto';
import { closeSync, fstatSync, openSync, readSync } from 'node:fs';
import { parentPort, workerData } from 'node:worker_threads';

/** A request from exe-hash.ts. */
export interface HashRequest {
  readonly id: number;
  readonly path: string;
  readonly maxBytes: number;
  readonly md5: boolean;
}

/** The answer: the file version read (its identity as fstat saw it) and its hashes, or why not. */
export type HashReply =
  | {
      readonly id: number;
      readonly ok: true;
      readonly key: string;
      readonly sha256: string;
      readonly md5?: string;
      readonly size: number;
    }
  | { readonly id: number; readonly ok: false; readonly error: string };

const CHUNK = 1024 * 1024;

/** The identity of one file version: device, inode, size, mtime and ctime in nanoseconds. */
export function versionKey(st: {
  dev: bigint;
  ino: bigint;
  size: bigint;
  mtimeNs: bigint;
  ctimeNs: bigint;
}): string {
  return `${st.dev}:${st.ino}:${st.size}:${st.mtimeNs}:${st.ctimeNs}`;
}

function hashFile(req: HashRequest): HashReply {
  let fd: number | undefined;
  try {
    fd = openSync(req.path, 'r');
    const before = fstatSync(fd, { bigint: true });
    if (!before.isFile()) return { id: req.id, ok: false, error: `${req.path} is not a regular file` };
    if (before.size > BigInt(req.maxBytes))
      return {
        id: req.id,
        ok: false,
        error: `${req.path} has ${before.size} bytes, more than the ${req.maxBytes} bytes Warden hashes`,
      };
    const sha = createHash('sha256');
    const md5 = req.md5 ? createHash('md5') : undefined;
    const buf = Buffer.allocUnsafe(CHUNK);
    let total = 0;
    for (;;) {
      const n = readSync(fd, buf, 0, CHUNK, null);
      if (n === 0) break;
      total += n;
      if (total > req.maxBytes)
        return { id: req.id, ok: false, error: `${req.path} grew beyond ${req.maxBytes} bytes while read` };
      sha.update(buf.subarray(0, n));
      md5?.update(buf.subarray(0, n));
    }
    const after = fstatSync(fd, { bigint: true });
    const key = versionKey(before);
    if (versionKey(after) !== key || BigInt(total) !== before.size)
      return { id: req.id, ok: false, error: `${req.path} changed while it was hashed` };
    return {
      id: req.id,
      ok: true,
      key,
      sha256: sha.digest('hex'),
      ...(md5 !== undefined ? { md5: md5.digest('hex') } : {}),
      size: total,
    };
  } catch (e) {
    return { id: req.id, ok: false, error: (e as Error).message };
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
}

/** Marks the thread exe-hash.ts starts: another thread that imports this module (for versionKey) serves nothing. */
export const HASH_THREAD = 'warden-hash-thread';

if ((workerData as { role?: unknown } | null)?.role === HASH_THREAD)
  parentPort?.on('message', (req: HashRequest) => parentPort!.postMessage(hashFile(req)));
