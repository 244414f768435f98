/**
 * Password hashes: scrypt (memory-hard) encoded as
 * `scrypt$N$r$p$<salt base64>$<hash base64>`, verified in constant time.
 */
import { randomBytes, scrypt, timingSafeEqual } from 'node:crypto';

/** scrypt cost: N (CPU/memory, a power of two), r (block size), p (parallelism). */
export interface ScryptCost {
  readonly N: number;
  readonly r: number;
  readonly p: number;
}

/** The cost of every new hash: N=2^15, r=8, p=1 (about 32 MiB and tens of milliseconds). */
export const DEFAULT_SCRYPT_COST: ScryptCost = { N: 2 ** 15, r: 8, p: 1 };

const KEY_LENGTH = 32;
const SALT_LENGTH = 16;
/** Bounds on costs read from a file, so a tampered file cannot make one login take minutes or gigabytes. */
const MAX_N = 2 ** 20;
const MAX_R = 32;
const MAX_P = 16;

/** A parsed hash. */
export interface PasswordHash {
  readonly cost: ScryptCost;
  readonly salt: Buffer;
  readonly hash: Buffer;
}

function derive(password: string, salt: Buffer, cost: ScryptCost, length: number): Promise<Buffer> {
  // scrypt needs about 128 * N * r * p bytes; Node's default limit (32 MiB) is too small for N=2^15, r=8.
  const maxmem = 256 * cost.N * cost.r * cost.p + 16 * 1024 * 1024;
  return new Promise((resolve, reject) => {
    scrypt(password, salt, length, { N: cost.N, r: cost.r, p: cost.p, maxmem }, (err, key) =>
      err ? reject(err) : resolve(key),
    );
  });
}

/** Hashes a password with a fresh random salt. */
export async function hashPassword(
  password: string,
  cost: ScryptCost = DEFAULT_SCRYPT_COST,
): Promise<string> {
  const salt = randomBytes(SALT_LENGTH);
  const hash = await derive(password, salt, cost, KEY_LENGTH);
  return `scrypt$${cost.N}$${cost.r}$${cost.p}$${salt.toString('base64')}$${hash.toString('base64')}`;
}

const BASE64 = /^[A-Za-z0-9+/]+={0,2}$/;
const INTEGER = /^[1-9][0-9]{0,9}$/;

/** Parses an encoded hash; undefined when it is not one this code writes (or its cost is out of bounds). */
export function parsePasswordHash(encoded: string): PasswordHash | undefined {
  const parts = encoded.split('$');
  if (parts.length !== 6 || parts[0] !== 'scrypt') return undefined;
  const [, n, r, p, salt, hash] = parts as [string, string, string, string, string, string];
  if (!INTEGER.test(n) || !INTEGER.test(r) || !INTEGER.test(p)) return undefined;
  const cost = { N: Number(n), r: Number(r), p: Number(p) };
  if (cost.N < 2 || cost.N > MAX_N || (cost.N & (cost.N - 1)) !== 0) return undefined;
  if (cost.r > MAX_R || cost.p > MAX_P) return undefined;
  if (!BASE64.test(salt) || !BASE64.test(hash)) return undefined;
  const saltBytes = Buffer.from(salt, 'base64');
  const hashBytes = Buffer.from(hash, 'base64');
  if (saltBytes.length < 8 || hashBytes.length < 16 || hashBytes.length > 64) return undefined;
  return { cost, salt: saltBytes, hash: hashBytes };
}

/** True when `password` matches the parsed hash; the comparison takes the same time wherever the bytes differ. */
export async function verifyPasswordHash(password: string, parsed: PasswordHash): Promise<boolean> {
  const candidate = await derive(password, parsed.salt, parsed.cost, parsed.hash.length);
  return timingSafeEqual(candidate, parsed.hash);
}

/** A hash that no password matches, at `cost`: verified against when a user does not exist, so timing does not tell. */
export function dummyPasswordHash(cost: ScryptCost = DEFAULT_SCRYPT_COST): PasswordHash {
  return { cost, salt: randomBytes(SALT_LENGTH), hash: randomBytes(KEY_LENGTH) };
}
