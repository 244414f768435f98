/**
 * Nodes of the rule index (rule-index.ts) as records in the leaf pool's Int32Array (leaf-pool.ts),
 * beside the leaves: a header, then the node's segments, jump table and occupancy bitmap
 * (segments.ts) one after the other. A child is named by an int (rule-index.ts, Ref), so going
 * down a level reads the jump table's entry and then the child's header, two loads from the one
 * array, where a node object with typed arrays and an array of children read five objects, each
 * cold at 100,000 rules.
 *
 * Layout of a node at offset `o`: the header fields below, then `count` segments as [start, ref]
 * pairs; the jump table (2 ints per bucket) and the occupancy bitmap at the offsets the header
 * names (0: none).
 */
import type { LeafPoolBuilder } from './leaf-pool.js';
import type { NumSegments } from './segments.js';
import { RESOLVED } from './segments.js';

/** A port node (remote or local) keys its segments on that port; an address node on the IPv4 address. */
export const KIND_REMOTE_PORT = 0;
export const KIND_LOCAL_PORT = 1;
export const KIND_ADDR = 2;

const N_KIND = 0;
/** Smallest rule position in the node's subtree: a search that already has a better answer skips it. */
const N_MIN = 1;
/** The child of keys no segment names a rule for (rules without this level's key). */
const N_ANY = 2;
const N_COUNT = 3;
const N_SHIFT = 4;
const N_JUMP = 5;
const N_OCC_SHIFT = 6;
const N_OCC = 7;
/** An address node's number for its IPv6 ranges and host names (RuleIndex.v6, .names); -1: none. */
const N_SIDE = 8;
const HEADER = 9;

/** Appends a node; returns its offset (a Ref >= 0). */
export function addNode(
  b: LeafPoolBuilder,
  kind: number,
  min: number,
  any: number,
  segments: NumSegments | null,
  side: number,
): number {
  const count = segments === null ? 0 : segments.seg.length >> 1;
  const jump = segments?.jump ?? null;
  const occ = segments?.occ ?? null;
  const header = new Int32Array(HEADER);
  const offset = b.append([]);
  header[N_KIND] = kind;
  header[N_MIN] = min;
  header[N_ANY] = any;
  header[N_COUNT] = count;
  header[N_SHIFT] = segments?.shift ?? 0;
  header[N_JUMP] = jump === null ? 0 : offset + HEADER + count * 2;
  header[N_OCC_SHIFT] = segments?.occShift ?? 0;
  header[N_OCC] = occ === null ? 0 : offset + HEADER + count * 2 + (jump?.length ?? 0);
  header[N_SIDE] = side;
  const parts: ArrayLike<number>[] = [header];
  if (segments !== null) parts.push(segments.seg);
  if (jump !== null) parts.push(jump);
  if (occ !== null) parts.push(occ);
  return b.append(parts);
}

export function nodeKind(pool: Int32Array, o: number): number {
  return pool[o + N_KIND]!;
}

export function nodeMin(pool: Int32Array, o: number): number {
  return pool[o + N_MIN]!;
}

export function nodeAny(pool: Int32Array, o: number): number {
  return pool[o + N_ANY]!;
}

export function nodeSide(pool: Int32Array, o: number): number {
  return pool[o + N_SIDE]!;
}

/** The ref of the segment holding `key` (below 2 ** 32) in the node at `o`; -1 when none does. */
export function nodeSegmentRef(pool: Int32Array, o: number, key: number): number {
  let lo = -1;
  let hi = pool[o + N_COUNT]! - 1;
  const jump = pool[o + N_JUMP]!;
  if (jump !== 0) {
    const occ = pool[o + N_OCC]!;
    if (occ !== 0) {
      const slice = key >>> pool[o + N_OCC_SHIFT]!;
      if ((pool[occ + (slice >>> 5)]! & (1 << (slice & 31))) === 0) return -1;
    }
    // key < 2 ** 32, so >>> keeps it unsigned.
    const at = jump + (key >>> pool[o + N_SHIFT]!) * 2;
    hi = pool[at + 1]!;
    if (hi === RESOLVED) return pool[at]!;
    lo = pool[at]!;
  }
  // The last start at or below the key; it is at or below whenever lo >= 0.
  const seg = o + HEADER;
  while (lo < hi) {
    const mid = (lo + hi + 1) >> 1;
    if (pool[seg + mid * 2]! >>> 0 <= key) lo = mid;
    else hi = mid - 1;
  }
  return lo < 0 ? -1 : pool[seg + lo * 2 + 1]!;
}
