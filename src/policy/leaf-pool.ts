/**
 * Leaves of the rule index, packed into one Int32Array. A leaf is a run of
 * rule records in ascending rule order, each carrying what a match needs
 * (direction, protocols, uid, ports, one IPv4 range), so
 * checking a leaf reads one stretch of memory instead of a chain of objects:
 * the index is bound by memory latency, not by comparisons. Rules that also
 * constrain what a record cannot hold (several remote ranges, host names, a
 * user name, interfaces, expiry, and any field of CompiledRule this file does not know)
 * are finished by `matches` on the full rule, so `matches` keeps the last
 * word and a new rule field needs no change here. Together they answer
 * exactly what `matches` answers; the property test holds them to it.
 *
 * Layout of a leaf at offset `o`: pool[o] = number of records, pool[o + 1] =
 * its summary (below), then records of variable length, as short as the rule
 * allows (a leaf of a few rules then fits in one or two cache lines, and at
 * 100,000 rules each line is a load from cold memory):
 *   [index, flags and range counts, uid (F_UID), v4First, v4Last (F_V4_RANGE),
 *    remote port ranges..., local port ranges...]
 * a port range packed in one int as from << 16 | to. The application is not
 * in the record: rules naming one are only in that application's leaves
 * (rule-index.ts), found by the application's key.
 */
import type { CompiledRule } from './compile.js';
import { matches } from './match.js';
import type { ConnectionFacts } from './rule.js';

const F_INCOMING = 1 << 0;
const F_OUTGOING = 1 << 1;
/** Bits 2-5: the protocol mask (tcp 1, udp 2, icmp 4, other 8) shifted by 2. */
const PROTO_SHIFT = 2;
const F_UID = 1 << 7;
const F_REMOTE_PORTS = 1 << 8;
const F_LOCAL_PORTS = 1 << 9;
/** Finish with `matches` on the full rule (remote addresses beyond one IPv4 range, user name, expiry, sha256). */
const F_FULL = 1 << 10;
/** The rule's remote addresses are exactly one IPv4 range, held in the record. */
const F_V4_RANGE = 1 << 11;
/** Bits 16-23: the number of remote port ranges in the record; bits 24-30: local ones. */
const REMOTE_COUNT_SHIFT = 16;
const LOCAL_COUNT_SHIFT = 24;
/**
 * A leaf's summary: the remote ports its records could match, bit port % 32 (every bit for a
 * record without remote ports in it), so that a connection none of them can match skips the leaf
 * on one word, in the cache line the leaf starts in, instead of checking every record (an
 * application's leaf of 3 records at 100,000 rules, on most decisions). Only a filter: a record
 * still checks everything.
 */
const SUMMARY_ALL_PORTS = -1;

/** More ranges than the counts hold leave the ports to `matches`. */
const MAX_REMOTE_RANGES = 0xff;
const MAX_LOCAL_RANGES = 0x7f;

/** Builds the pool while the index is built; `finish` freezes it. */
export class LeafPoolBuilder {
  #pool = new Int32Array(1 << 16);
  #length = 0;
  /**
   * Each rule's record, made once however many leaves hold the rule: its offset in `#recs` and
   * its length, by rule position * 2, + 1 for the record of a leaf whose remote is matched (0: not
   * made yet). One growing array rather than a typed array
   * per rule (100,000 typed arrays, and their garbage, when compiling 100,000 rules).
   */
  #recs = new Int32Array(1 << 16);
  #recsLength = 0;
  #recAt = new Int32Array(1024);
  #recLength = new Int32Array(1024);
  #recSummary = new Int32Array(1024);
  /** Nodes and leaves already built, by kind and rule list: the same rules always give the same subtree. */
  readonly #shared = new SharedTable();
  /** Application path -> key (AppKeyTable). */
  readonly appKeys = new Map<string, number>();

  /**
   * Builds a subtree over the rules once and returns the same one whenever the same rules come
   * again (the same CIDR rules sit below every protocol; overlapping ranges repeat rule lists),
   * so compiling and the index's memory grow with the distinct rule lists, not their copies.
   */
  shared<T>(
    kind: string,
    rules: readonly CompiledRule[],
    build: (b: LeafPoolBuilder, rules: readonly CompiledRule[]) => T,
  ): T {
    const hash = listHash(kind, rules);
    const known = this.#shared.find(hash, kind, rules);
    if (known >= 0) return this.#shared.value(known) as T;
    const built = build(this, rules);
    this.#shared.add(hash, kind, rules, built);
    return built;
  }

  /**
   * Appends a leaf for the rules (ascending positions), or finds the same leaf, and returns its
   * offset. `remoteMatched`: the leaf is only reached when the connection's remote is one of every
   * rule's remote addresses or names (an address node's segment or name: rule-index.ts), so its
   * records leave the remote out, and a rule that needed `matches` for its remote alone (a host
   * name, IPv6 ranges, several ranges) no longer does.
   */
  addLeaf(rules: readonly CompiledRule[], remoteMatched = false): number {
    const kind = remoteMatched ? 'leaf, remote matched' : 'leaf';
    const hash = listHash(kind, rules);
    const known = this.#shared.find(hash, kind, rules);
    if (known >= 0) return this.#shared.value(known) as number;
    const offset = this.#length;
    this.#shared.add(hash, kind, rules, offset);
    this.#push(rules.length);
    this.#push(0);
    let summary = 0;
    const variant = remoteMatched ? 1 : 0;
    for (const r of rules) {
      const slot = r.index * 2 + variant;
      const at = this.#record(r, slot, remoteMatched);
      const n = this.#recLength[slot]!;
      this.#reserve(n);
      const pool = this.#pool;
      const recs = this.#recs;
      for (let i = 0; i < n; i++) pool[this.#length + i] = recs[at + i]!;
      this.#length += n;
      summary |= this.#recSummary[slot]!;
    }
    this.#pool[offset + 1] = summary;
    return offset;
  }

  /** Gives the application the leaf of all its rules (positions ascending); its key is that leaf's offset. */
  appLeaf(path: string, rules: readonly CompiledRule[]): void {
    this.appKeys.set(path, this.addLeaf(rules));
  }

  /** Sets the key of an application whose rules are in trees (a key <= -3, see AppKeyTable). */
  setAppKey(path: string, key: number): void {
    this.appKeys.set(path, key);
  }

  /** The key of an application named by a rule; set before the index is built. */
  appKeyOf(path: string): number {
    const key = this.appKeys.get(path);
    if (key === undefined) throw new Error(`application ${path} has no key in the rule index`);
    return key;
  }

  finish(): Int32Array {
    return this.#pool.slice(0, this.#length);
  }

  #push(v: number): void {
    this.#reserve(1);
    this.#pool[this.#length++] = v;
  }

  #reserve(n: number): void {
    if (this.#length + n <= this.#pool.length) return;
    const bigger = new Int32Array(Math.max(this.#pool.length * 2, this.#length + n));
    bigger.set(this.#pool);
    this.#pool = bigger;
  }

  /** The offset of the rule's record in `#recs`, made on first use (slot: see `#recAt`). */
  #record(r: CompiledRule, slot: number, remoteMatched: boolean): number {
    if (slot < this.#recAt.length) {
      const known = this.#recAt[slot]!;
      if (known > 0) return known - 1;
    } else {
      const size = Math.max(this.#recAt.length * 2, slot + 1);
      this.#recAt = grown(this.#recAt, size);
      this.#recLength = grown(this.#recLength, size);
      this.#recSummary = grown(this.#recSummary, size);
    }
    let flags = (r.protocols << PROTO_SHIFT) | (r.incoming ? F_INCOMING : 0) | (r.outgoing ? F_OUTGOING : 0);
    if (r.uid !== null) flags |= F_UID;
    const rp = r.remotePortSpans;
    const lp = r.localPortSpans;
    const remoteRanges = rp === null || rp.length / 2 > MAX_REMOTE_RANGES ? 0 : rp.length / 2;
    const localRanges = lp === null || lp.length / 2 > MAX_LOCAL_RANGES ? 0 : lp.length / 2;
    if (remoteRanges > 0) flags |= F_REMOTE_PORTS | (remoteRanges << REMOTE_COUNT_SHIFT);
    if (localRanges > 0) flags |= F_LOCAL_PORTS | (localRanges << LOCAL_COUNT_SHIFT);
    const remote = remoteMatched ? null : r.remote;
    const oneV4 =
      remote !== null &&
      remote.v4.length === 2 &&
      remote.v6.length === 0 &&
      remote.hosts.size === 0 &&
      remote.suffixes.length === 0 &&
      remote.domainLists.length === 0;
    if (oneV4) flags |= F_V4_RANGE;
    const portsLeft = (rp !== null && remoteRanges === 0) || (lp !== null && localRanges === 0);
    if ((remote !== null && !oneV4) || r.userName !== null || r.expires || portsLeft || constrainsMore(r))
      flags |= F_FULL;
    const length = 2 + (r.uid !== null ? 1 : 0) + (oneV4 ? 2 : 0) + remoteRanges + localRanges;
    if (this.#recsLength + length > this.#recs.length)
      this.#recs = grown(this.#recs, Math.max(this.#recs.length * 2, this.#recsLength + length));
    const recs = this.#recs;
    const at = this.#recsLength;
    let p = at;
    recs[p++] = r.index;
    recs[p++] = flags;
    if (r.uid !== null) recs[p++] = r.uid | 0;
    // IPv4 bounds are stored as int32 and compared after >>> 0, so the whole unsigned range fits.
    if (oneV4) {
      recs[p++] = remote.v4[0]! | 0;
      recs[p++] = remote.v4[1]! | 0;
    }
    for (let i = 0; i < remoteRanges * 2; i += 2) recs[p++] = (rp![i]! << 16) | rp![i + 1]!;
    for (let i = 0; i < localRanges * 2; i += 2) recs[p++] = (lp![i]! << 16) | lp![i + 1]!;
    this.#recsLength = p;
    this.#recAt[slot] = at + 1;
    this.#recLength[slot] = length;
    this.#recSummary[slot] =
      remoteRanges === 0 ? (rp === null || portsLeft ? SUMMARY_ALL_PORTS : 0) : portBits(rp!);
    return at;
  }
}

/** The summary bits of remote port ranges [from0, to0, ...] (leaf summary). */
function portBits(spans: Int32Array): number {
  let bits = 0;
  for (let i = 0; i < spans.length; i += 2) {
    const from = spans[i]!;
    const to = spans[i + 1]!;
    if (to - from + 1 >= 32) return SUMMARY_ALL_PORTS;
    for (let p = from; p <= to; p++) bits |= 1 << (p & 31);
  }
  return bits;
}

/** A copy of the array in a bigger one (zeros after). */
function grown(a: Int32Array, size: number): Int32Array<ArrayBuffer> {
  const out = new Int32Array(size);
  out.set(a);
  return out;
}

/**
 * Fields of CompiledRule that a record holds, that send a rule to `matches` above, or that never
 * constrain a match. A rule with any other field set (not null, undefined or false) is finished by
 * `matches`: fields added to rules later are checked there without a change here.
 */
const KNOWN_FIELDS = new Set([
  'index',
  'source',
  'rule',
  'active',
  'inactiveBecause',
  'incoming',
  'outgoing',
  'protocols',
  'application',
  'uid',
  'userName',
  'localPorts',
  'remotePorts',
  'localPortSpans',
  'remotePortSpans',
  'remote',
  'expiresAt',
  'expires',
]);

/** The fields of the last rule seen, and those of them not in KNOWN_FIELDS (rules share one shape). */
let lastFields: string[] = [];
let lastUnknown: string[] = [];

function constrainsMore(r: CompiledRule): boolean {
  // The keys compared in place (for-in allocates nothing); Object.keys only when the shape changes.
  let n = 0;
  let same = true;
  for (const field in r) {
    if (same && lastFields[n] !== field) same = false;
    n++;
  }
  if (!same || n !== lastFields.length) {
    lastFields = Object.keys(r);
    lastUnknown = lastFields.filter((f) => !KNOWN_FIELDS.has(f));
  }
  const values = r as unknown as Record<string, unknown>;
  for (const field of lastUnknown) {
    const value = values[field];
    if (value !== null && value !== undefined && value !== false) return true;
  }
  return false;
}

/**
 * What LeafPoolBuilder built, by kind and rule list: an open-addressing table over the lists'
 * hashes, in typed arrays. A Map of arrays of entry objects, keyed by hashes most of which are not
 * small integers (a heap number each), cost about as much as the rest of building the leaves.
 */
class SharedTable {
  /** [hash, entry + 1] per slot; 0: empty. */
  #slots = new Int32Array(2048);
  #mask = 1023;
  readonly #hashes: number[] = [];
  readonly #kinds: string[] = [];
  readonly #rules: (readonly CompiledRule[])[] = [];
  readonly #values: unknown[] = [];

  /** The entry of this kind and rule list, or -1. */
  find(hash: number, kind: string, rules: readonly CompiledRule[]): number {
    const slots = this.#slots;
    for (let slot = hash & this.#mask; ; slot = (slot + 1) & this.#mask) {
      const e = slots[slot * 2 + 1]!;
      if (e === 0) return -1;
      if (slots[slot * 2] === hash && this.#kinds[e - 1] === kind && sameRules(this.#rules[e - 1]!, rules))
        return e - 1;
    }
  }

  value(entry: number): unknown {
    return this.#values[entry];
  }

  add(hash: number, kind: string, rules: readonly CompiledRule[], value: unknown): void {
    this.#hashes.push(hash);
    this.#kinds.push(kind);
    this.#rules.push(rules);
    this.#values.push(value);
    if (this.#hashes.length * 2 > this.#mask + 1) {
      this.#slots = new Int32Array(this.#slots.length * 2);
      this.#mask = this.#mask * 2 + 1;
      for (let e = 0; e < this.#hashes.length - 1; e++) this.#place(this.#hashes[e]!, e);
    }
    this.#place(hash, this.#hashes.length - 1);
  }

  #place(hash: number, entry: number): void {
    const slots = this.#slots;
    let slot = hash & this.#mask;
    while (slots[slot * 2 + 1] !== 0) slot = (slot + 1) & this.#mask;
    slots[slot * 2] = hash;
    slots[slot * 2 + 1] = entry + 1;
  }
}

/** A hash of the kind and the rule positions (FNV-1a over 32-bit words); equal lists are then compared in full. */
function listHash(kind: string, rules: readonly CompiledRule[]): number {
  let h = 0x811c9dc5 ^ kind.length ^ (kind.charCodeAt(0) << 8);
  h = Math.imul(h ^ rules.length, 0x01000193);
  for (let i = 0; i < rules.length; i++) h = Math.imul(h ^ rules[i]!.index, 0x01000193);
  // Low bits pick a slot of SharedTable: mix the high ones in.
  return h ^ (h >>> 16);
}

function sameRules(a: readonly CompiledRule[], b: readonly CompiledRule[]): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** What one search carries: the pool, the rules, the connection and its per-decision facts. */
export interface LeafSearch {
  readonly pool: Int32Array;
  readonly rules: readonly CompiledRule[];
  readonly f: ConnectionFacts;
  /** F_INCOMING or F_OUTGOING. */
  readonly direction: number;
  /** The connection's protocol bit, shifted like the records' mask. */
  readonly protocol: number;
  /** The connection's application key (AppKeyTable), or -1 when no rule names its application. */
  readonly appKey: number;
  /** The connection's bit in a leaf summary: its remote port's. */
  readonly portBit: number;
}

/**
 * Application path -> key: the offset of the application's own leaf (>= 0), which holds all its
 * rules when it has a few, or -3 - tree for one whose rules are in per-bucket trees. A
 * prototype-less dictionary object rather than a Map: looking a string up as a property key
 * internalizes it, and V8 then turns the caller's string into a reference to the internalized
 * one, so the next lookup with the same string (the engine keeps one path string per process)
 * compares pointers. A Map compares the characters of its own key strings, which at tens of
 * thousands of applications are cold in the cache: this lookup was most of a decision's cost at
 * 100,000 rules (about 300 of 700 ns).
 */
export type AppKeyTable = Readonly<Record<string, number>>;

export function appKeyTable(keys: ReadonlyMap<string, number>): AppKeyTable {
  const table: Record<string, number> = Object.create(null);
  for (const [path, key] of keys) table[path] = key;
  return table;
}

/**
 * The one LeafSearch every decision fills (a decision is synchronous and never nested): a decision
 * allocates nothing. At 100,000 rules the young-generation collections that a new object per
 * decision caused were about a tenth of a decision's cost. Valid until the next decision.
 */
const scratch: { -readonly [K in keyof LeafSearch]: LeafSearch[K] } = {
  pool: new Int32Array(0),
  rules: [],
  f: null as unknown as ConnectionFacts,
  direction: 0,
  protocol: 0,
  appKey: -1,
  portBit: 0,
};

/** Computes the per-decision facts once, into the shared LeafSearch. */
export function leafSearch(
  pool: Int32Array,
  rules: readonly CompiledRule[],
  appKey: number,
  f: ConnectionFacts,
): LeafSearch {
  const bit = f.protocol === 'tcp' ? 1 : f.protocol === 'udp' ? 2 : f.protocol === 'icmp' ? 4 : 8;
  const port = f.remotePort;
  const s = scratch;
  s.pool = pool;
  s.rules = rules;
  s.f = f;
  s.direction = f.direction === 'incoming' ? F_INCOMING : F_OUTGOING;
  s.protocol = bit << PROTO_SHIFT;
  s.appKey = appKey;
  // No remote port: no record with remote ports matches, but records without them may.
  s.portBit = port === null ? SUMMARY_ALL_PORTS : 1 << (port & 31);
  return s;
}

function portIn(pool: Int32Array, at: number, count: number, port: number | null): boolean {
  if (port === null) return false;
  const end = at + count;
  for (let i = at; i < end; i++) {
    const range = pool[i]!;
    if (range >>> 16 <= port && port <= (range & 0xffff)) return true;
  }
  return false;
}

/** The position of the leaf's first rule, or 0x7fffffff when its summary says none can match. */
export function leafFirst(s: LeafSearch, offset: number): number {
  const pool = s.pool;
  return (pool[offset + 1]! & s.portBit) !== 0 ? pool[offset + 2]! : 0x7fffffff;
}

/** Scans the leaf at `offset`; returns the first matching rule position below `best`, else `best`. */
export function scanLeaf(s: LeafSearch, offset: number, best: number): number {
  const pool = s.pool;
  const f = s.f;
  const count = pool[offset]!;
  if ((pool[offset + 1]! & s.portBit) === 0) return best;
  let p = offset + 2;
  for (let k = 0; k < count; k++) {
    const index = pool[p]!;
    if (index >= best) return best;
    const flags = pool[p + 1]!;
    const nRemote = (flags >>> REMOTE_COUNT_SHIFT) & MAX_REMOTE_RANGES;
    const nLocal = (flags >>> LOCAL_COUNT_SHIFT) & MAX_LOCAL_RANGES;
    const uidAt = p + 2;
    const v4At = (flags & F_UID) === 0 ? uidAt : uidAt + 1;
    const ports = (flags & F_V4_RANGE) === 0 ? v4At : v4At + 2;
    if (
      (flags & s.direction) !== 0 &&
      (flags & s.protocol) !== 0 &&
      ((flags & F_UID) === 0 || (f.uid !== null && pool[uidAt] === (f.uid | 0))) &&
      ((flags & F_REMOTE_PORTS) === 0 || portIn(pool, ports, nRemote, f.remotePort)) &&
      ((flags & F_LOCAL_PORTS) === 0 || portIn(pool, ports + nRemote, nLocal, f.localPort)) &&
      ((flags & F_V4_RANGE) === 0 || inV4(f, pool[v4At]!, pool[v4At + 1]!)) &&
      ((flags & F_FULL) === 0 || matches(s.rules[index]!, f))
    ) {
      return index;
    }
    p = ports + nRemote + nLocal;
  }
  return best;
}

function inV4(f: ConnectionFacts, first: number, last: number): boolean {
  const a = f.remoteAddress;
  return a !== null && a.version === 4 && a.value >= first >>> 0 && a.value <= last >>> 0;
}
