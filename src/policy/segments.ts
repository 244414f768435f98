/**
 * Elementary segments over possibly overlapping ranges of keys, as the rule index's nodes hold
 * them (rule-index.ts): the ranges cut the key space into segments, each with the rules covering it
 * in rule order; numeric keys are packed with a jump table and an occupancy bitmap, so a lookup
 * touches few cache lines.
 *
 * Segments: seg = [start0, ref0, start1, ref1, ...], starts ascending and compared unsigned;
 * segment i covers [start i, start i+1), the last one up to the end of the key space. Jump table
 * (from JUMP_MIN segments): for bucket b = key >>> shift, jump[2b] is the last segment starting at
 * or below the bucket's first key (-1: none) and jump[2b + 1] the last starting at or below its last
 * key, so a lookup searches only the segments that start inside its bucket; when that is none,
 * jump[2b + 1] is RESOLVED and jump[2b] the ref itself. Occupancy bitmap (with the jump table,
 * when most of the key space leads nowhere): bit key >>> occShift is set when a segment with a
 * child meets that slice of the key space.
 */
import type { CompiledRule } from './compile.js';

/** In a jump table's second slot: the bucket lies inside one segment, whose ref is the first slot. */
export const RESOLVED = -2;

export interface RangeItem<K> {
  readonly from: K;
  readonly to: K;
  readonly rule: CompiledRule;
}

/** Splits possibly overlapping ranges into elementary segments, each with the rules covering it (in rule order). */
export function segment<K extends number | bigint, C>(
  items: readonly RangeItem<K>[],
  next: (k: K) => K,
  build: (rules: CompiledRule[]) => C | null,
): { starts: K[]; children: (C | null)[] } | null {
  if (items.length === 0) return null;
  const points: K[] = [];
  for (const it of items) points.push(it.from, next(it.to));
  points.sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  const starts: K[] = [];
  for (const p of points) if (starts.length === 0 || starts[starts.length - 1] !== p) starts.push(p);
  const lists: CompiledRule[][] = starts.map(() => []);
  for (const it of items) {
    const first = lowerBound(starts, it.from);
    const end = lowerBound(starts, next(it.to));
    for (let i = first; i < end; i++) {
      const list = lists[i]!;
      if (list[list.length - 1] !== it.rule) list.push(it.rule);
    }
  }
  return { starts, children: lists.map((l) => (l.length === 0 ? null : build(l))) };
}

/** Segments with a jump table from this many on. */
export const JUMP_MIN = 16;

export interface NumSegments<N> {
  readonly seg: Int32Array;
  readonly jump: Int32Array | null;
  readonly shift: number;
  readonly occ: Int32Array | null;
  readonly occShift: number;
  /** The node children, named in `seg` by their position here (>= 0); a leaf (a number) by -2 - leaf. */
  readonly kids: N[];
}

/** The occupancy bitmap has 2 ** OCC_EXTRA_BITS bits per jump table bucket (up to one per key). */
const OCC_EXTRA_BITS = 3;

/**
 * Elementary segments over numeric keys below 2 ** keyBits, packed as the index's nodes hold them.
 * Each phase is a function of its own: V8 optimizes a long function on its first hot loop (on-stack
 * replacement) before the later loops have run, and that code then left at the first of them on
 * every call (no type feedback there yet), so the later loops ran in the interpreter each time.
 */
export function segmentNum<N extends object>(
  items: readonly RangeItem<number>[],
  keyBits: number,
  build: (rules: CompiledRule[]) => N | number | null,
): NumSegments<N> | null {
  if (items.length === 0) return null;
  const starts = segmentStarts(items, keyBits);
  const n = starts.length;
  const lists = coveringRules(items, starts);
  const kids: N[] = [];
  const seg = new Int32Array(n * 2);
  for (let i = 0; i < n; i++) {
    const l = lists[i]!;
    const child = l === null ? null : build(l);
    seg[i * 2] = starts[i]! | 0;
    seg[i * 2 + 1] = child === null ? -1 : typeof child === 'number' ? -2 - child : kids.push(child) - 1;
  }
  if (n < JUMP_MIN) return { seg, jump: null, shift: 0, occ: null, occShift: 0, kids };
  const bits = Math.min(keyBits, Math.ceil(Math.log2(n)) + 1);
  const shift = keyBits - bits;
  const jump = jumpTable(seg, starts, bits, shift);
  const occShift = Math.max(0, shift - OCC_EXTRA_BITS);
  return { seg, jump, shift, ...occupancy(seg, keyBits, occShift), kids };
}

/** The distinct starts of the items' segments, ascending (a start at 2 ** keyBits left out). */
function segmentStarts(items: readonly RangeItem<number>[], keyBits: number): Float64Array {
  const points = new Float64Array(items.length * 2);
  for (let i = 0; i < items.length; i++) {
    points[i * 2] = items[i]!.from;
    points[i * 2 + 1] = items[i]!.to + 1;
  }
  points.sort();
  let n = 0;
  for (let i = 0; i < points.length; i++)
    if (n === 0 || points[i] !== points[n - 1]) points[n++] = points[i]!;
  // A start at 2 ** keyBits only closes the last segment: no key reaches it.
  if (points[n - 1] === 2 ** keyBits) n--;
  return points.subarray(0, n);
}

/** For each segment, the rules of the items covering it, in the items' order (null: none). */
function coveringRules(items: readonly RangeItem<number>[], starts: Float64Array): (CompiledRule[] | null)[] {
  const lists: (CompiledRule[] | null)[] = new Array<CompiledRule[] | null>(starts.length).fill(null);
  for (const it of items) {
    const end = lowerBoundNum(starts, it.to + 1);
    for (let i = lowerBoundNum(starts, it.from); i < end; i++) {
      const list = lists[i] ?? null;
      if (list === null) lists[i] = [it.rule];
      else if (list[list.length - 1] !== it.rule) list.push(it.rule);
    }
  }
  return lists;
}

/** The jump table over 2 ** bits buckets of 2 ** shift keys each (the file comment). */
function jumpTable(seg: Int32Array, starts: Float64Array, bits: number, shift: number): Int32Array {
  const n = starts.length;
  const buckets = 2 ** bits;
  const jump = new Int32Array(buckets * 2);
  const width = 2 ** shift;
  for (let bucket = 0, j = -1; bucket < buckets; bucket++) {
    const first = bucket * width;
    while (j + 1 < n && starts[j + 1]! <= first) j++;
    let k = j;
    while (k + 1 < n && starts[k + 1]! <= first + width - 1) k++;
    if (k === j) {
      jump[bucket * 2] = j < 0 ? -1 : seg[j * 2 + 1]!;
      jump[bucket * 2 + 1] = RESOLVED;
    } else {
      jump[bucket * 2] = j;
      jump[bucket * 2 + 1] = k;
    }
  }
  return jump;
}

/** The occupancy bitmap of the segments, or null when most slices are occupied (it would rarely answer). */
function occupancy(
  seg: Int32Array,
  keyBits: number,
  occShift: number,
): { occ: Int32Array | null; occShift: number } {
  const slices = 2 ** (keyBits - occShift);
  const occ = new Int32Array(Math.max(1, slices >>> 5));
  let set = 0;
  const n = seg.length >> 1;
  for (let i = 0; i < n; i++) {
    if (seg[i * 2 + 1] === -1) continue;
    const first = (seg[i * 2]! >>> 0) / 2 ** occShift;
    const last = i + 1 < n ? ((seg[i * 2 + 2]! >>> 0) - 1) / 2 ** occShift : slices - 1;
    const end = Math.floor(last);
    for (let b = Math.floor(first); b <= end; ) {
      if ((b & 31) === 0 && b + 31 <= end) {
        // A whole word at once: wide segments cover thousands of slices.
        set += 32 - popcount(occ[b >>> 5]!);
        occ[b >>> 5] = -1;
        b += 32;
        continue;
      }
      if ((occ[b >>> 5]! & (1 << (b & 31))) === 0) set++;
      occ[b >>> 5]! |= 1 << (b & 31);
      b++;
    }
  }
  return set * 2 > slices ? { occ: null, occShift: 0 } : { occ, occShift };
}

function popcount(v: number): number {
  let n = 0;
  for (let x = v >>> 0; x !== 0; x >>>= 1) n += x & 1;
  return n;
}

function lowerBoundNum(sorted: Float64Array, key: number): number {
  let lo = 0;
  let hi = sorted.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (sorted[mid]! < key) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

function lowerBound<K extends number | bigint>(sorted: readonly K[], key: K): number {
  let lo = 0;
  let hi = sorted.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (sorted[mid]! < key) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}
