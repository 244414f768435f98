/**
 * The host names and `*.` suffixes of an address node of the rule index (rule-index.ts), in one
 * open-addressing table keyed by a hash computed from the end of the name backwards, as
 * list-format.ts's NameTable does: one pass over a connection's name looks up the name and every
 * suffix of it that starts at a dot, with no substring made. Before, each suffix was a new string
 * hashed and looked up in a Map of its own (two cold lines a lookup), and the name in another.
 * A bitmap of the entries' hashes, small enough to stay in the cache, answers most suffixes no
 * rule names without reading the table.
 */
import { type LeafSearch, scanLeaf } from './leaf-pool.js';
import { backwardHash, FNV_OFFSET, FNV_PRIME, slotOf } from './list-format.js';

const DOT = 46;
/** Filter bits per entry, and the filter's largest size (64 KiB). */
const FILTER_BITS_PER_ENTRY = 16;
const FILTER_MAX_BITS = 1 << 19;

export class IndexNames {
  /** [hash, entry + 1] per slot; entry + 1 = 0: empty. */
  readonly #table: Int32Array;
  readonly #mask: number;
  readonly #filter: Int32Array;
  readonly #filterMask: number;
  readonly #names: string[] = [];
  /** Per entry: its leaf offset in the pool. */
  readonly #leaves: number[] = [];
  /** Per entry: a suffix (with its leading dot) rather than a whole name. */
  readonly #suffix: boolean[] = [];
  readonly hasSuffixes: boolean;

  /** Names and suffixes (".example.com" for "*.example.com") with their leaves. */
  constructor(hosts: ReadonlyMap<string, number>, suffixes: ReadonlyMap<string, number>) {
    const n = hosts.size + suffixes.size;
    let slots = 16;
    while (slots < n * 2) slots *= 2;
    this.#table = new Int32Array(slots * 2);
    this.#mask = slots - 1;
    let bits = 1024;
    while (bits < n * FILTER_BITS_PER_ENTRY && bits < FILTER_MAX_BITS) bits *= 2;
    this.#filter = new Int32Array(bits >>> 5);
    this.#filterMask = bits - 1;
    for (const [name, leaf] of hosts) this.#add(name, leaf, false);
    for (const [suffix, leaf] of suffixes) this.#add(suffix, leaf, true);
    this.hasSuffixes = suffixes.size > 0;
  }

  #add(name: string, leaf: number, suffix: boolean): void {
    const h = backwardHash(name);
    this.#names.push(name);
    this.#leaves.push(leaf);
    this.#suffix.push(suffix);
    let slot = slotOf(h, this.#mask);
    while (this.#table[slot * 2 + 1] !== 0) slot = (slot + 1) & this.#mask;
    this.#table[slot * 2] = h;
    this.#table[slot * 2 + 1] = this.#names.length;
    const bit = filterBit(h, this.#filterMask);
    this.#filter[bit >>> 5]! |= 1 << (bit & 31);
  }

  /** The leaf of the entry name[from..] (suffix: an entry that is a suffix), or -1. */
  #find(h: number, name: string, from: number, suffix: boolean): number {
    const bit = filterBit(h, this.#filterMask);
    if ((this.#filter[bit >>> 5]! & (1 << (bit & 31))) === 0) return -1;
    const table = this.#table;
    const mask = this.#mask;
    for (let slot = slotOf(h, mask); ; slot = (slot + 1) & mask) {
      const e = table[slot * 2 + 1]!;
      if (e === 0) return -1;
      if (table[slot * 2] === h && this.#suffix[e - 1] === suffix) {
        const candidate = this.#names[e - 1]!;
        if (
          from === 0
            ? candidate === name
            : candidate.length === name.length - from && name.endsWith(candidate)
        )
          return this.#leaves[e - 1]!;
      }
    }
  }

  /** Scans the leaves of the name and of its suffixes at dots; returns the best rule position. */
  search(s: LeafSearch, name: string, best: number): number {
    let h = FNV_OFFSET;
    const suffixes = this.hasSuffixes;
    for (let i = name.length - 1; i >= 0; i--) {
      const c = name.charCodeAt(i);
      h = Math.imul(h ^ c, FNV_PRIME);
      // h is now the hash of name[i..]: at a dot, a suffix entry may match.
      if (c === DOT && suffixes) {
        const leaf = this.#find(h, name, i, true);
        if (leaf >= 0) best = scanLeaf(s, leaf, best);
      }
    }
    const leaf = this.#find(h, name, 0, false);
    return leaf >= 0 ? scanLeaf(s, leaf, best) : best;
  }
}

function filterBit(h: number, mask: number): number {
  return (h ^ (h >>> 13) ^ (h >>> 26)) & mask;
}
