/**
 * The verdict cache's key (native/bpf_attr.h, struct vcache_key), built by the engine from the
 * record its decision used: the connect program builds the same bytes from the record it just made
 * and the address connected to. 80 bytes, in the host's byte order (x86-64, arm64: little-endian).
 * What makes a key: the executable file's identity (the record's `executable.id`: mount id,
 * device, inode number, generation, change time, path fingerprint), the effective uid, the remote
 * address (IPv4 as ::ffff:a.b.c.d, as an IPv6 socket connecting to a mapped address gives it) and
 * port, and the cache's generation. Pure: no I/O.
 */
import { endianness } from 'node:os';
import type { IpAddress } from '../ip/index.js';

export const VCACHE_KEY_BYTES = 80;
const LITTLE = endianness() === 'LE';

/** The parts of an executable's id (native/sock_diag.c: "mnt:dev:ino:gen:sec.nsec:pathhash"), or null. */
function idParts(
  id: string,
): { mnt: number; dev: number; ino: bigint; gen: number; sec: bigint; nsec: number; hash: bigint } | null {
  const m = /^(-?\d+):(\d+):(\d+):(\d+):(-?\d+)\.(\d+):([0-9a-f]+)$/.exec(id);
  if (m === null) return null;
  return {
    mnt: Number(m[1]),
    dev: Number(m[2]),
    ino: BigInt(m[3]!),
    gen: Number(m[4]),
    sec: BigInt(m[5]!),
    nsec: Number(m[6]),
    hash: BigInt(`0x${m[7]}`),
  };
}

/**
 * The key of a connection to `remote`:`port` by a process whose executable has the recorded `id`
 * and whose effective uid is `euid`; null when the id is not one the programs can give.
 */
export function verdictCacheKey(
  id: string,
  euid: number,
  remote: IpAddress,
  port: number,
  generation: number,
): Buffer | null {
  const e = idParts(id);
  if (e === null || !LITTLE || port < 1 || port > 65535) return null;
  const key = Buffer.alloc(VCACHE_KEY_BYTES);
  key.writeBigUInt64LE(BigInt.asUintN(64, e.ino), 0);
  key.writeBigInt64LE(BigInt.asIntN(64, e.sec), 8);
  key.writeBigUInt64LE(BigInt.asUintN(64, e.hash), 16);
  // 24: what the programs could not read (0: all of it); the engine inserts only full identities.
  key.writeUInt32LE(e.nsec & 0x3fffffff, 32);
  key.writeUInt32LE(e.dev >>> 0, 36);
  key.writeUInt32LE(e.gen >>> 0, 40);
  key.writeInt32LE(e.mnt | 0, 44);
  key.writeUInt32LE(euid >>> 0, 48);
  // The port as the program reads user_port: network byte order in the low 16 bits.
  key.writeUInt16BE(port, 52);
  if (remote.version === 4) {
    key.writeUInt16BE(0xffff, 66);
    key.writeUInt32BE(remote.value >>> 0, 68);
  } else {
    key.writeBigUInt64BE(remote.value >> 64n, 56);
    key.writeBigUInt64BE(remote.value & 0xffffffffffffffffn, 64);
  }
  key.writeUInt32LE(generation >>> 0, GENERATION_AT);
  return key;
}

/** Where a key's generation is (struct vcache_key: the last field before the padding). */
const GENERATION_AT = 72;

/** `key` (verdictCacheKey's, or a copy of it) for another generation of the cache: written in place. */
export function withGeneration(key: Buffer, generation: number): Buffer {
  key.writeUInt32LE(generation >>> 0, GENERATION_AT);
  return key;
}
