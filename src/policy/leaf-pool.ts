/**
 * Leaves of the rule index, packed into one Int32Array. A leaf is a run of
 * rule records in ascending rule order, each carrying what a match needs
 * (direction, protocols, application id, uid, ports, one IPv4 range), so
 * checking a leaf reads one stretch of memory instead of a chain of objects:
 * the index is bound by memory latency, not by comparisons. Rules that also
 * constrain what a record cannot hold (several remote ranges, host names, a
 * user name, expiry) are finished by `matches` on the full rule. Together
 * they answer exactly what `matches` answers; the property test holds them
 * to it.
 *
 * Layout of a leaf at offset `o`: pool[o] = number of records, then records:
 *   [index, flags, appId, uid, v4First, v4Last, remoteRangeCount, localRangeCount,
 *    remote (from, to) pairs..., local (from, to) pairs...]
 */
import type { CompiledRule } from './compile.js';
import { matches } from './match.js';
import type { ConnectionFacts } from './rule.js';

const HEADER = 8;

const F_INCOMING = 1 << 0;
const F_OUTGOING = 1 << 1;
/** Bits 2-5: the protocol mask (tcp 1, udp 2, icmp 4, other 8) shifted by 2. */
const PROTO_SHIFT = 2;
const F_APP = 1 << 6;
const F_UID = 1 << 7;
const F_REMOTE_PORTS = 1 << 8;
const F_LOCAL_PORTS = 1 << 9;
/** Finish with `matches` on the full rule (remote addresses beyond one IPv4 range, user name, expiry). */
const F_FULL = 1 << 10;
/** The rule's remote addresses are exactly one IPv4 range, held in the record. */
const F_V4_RANGE = 1 << 11;

/** Builds the pool while the index is built; `finish` freezes it. */
export class LeafPoolBuilder {
  #pool = new Int32Array(1 << 16);
  #length = 0;
  /** Each rule's record, by rule position, made once however many leaves hold the rule. */
  readonly #records: (Int32Array | undefined)[] = [];
  /** Nodes and leaves already built, by kind and rule list: the same rules always give the same subtree. */
  readonly #shared = new Map<number, SharedEntry[]>();
  readonly appIds = new Map<string, number>();

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
    const known = this.#find(hash, kind, rules);
    if (known !== undefined) return known.value as T;
    const built = build(this, rules);
    this.#remember(hash, { kind, rules, value: built });
    return built;
  }

  #find(hash: number, kind: string, rules: readonly CompiledRule[]): SharedEntry | undefined {
    const bucket = this.#shared.get(hash);
    if (bucket === undefined) return undefined;
    for (const e of bucket) if (e.kind === kind && sameRules(e.rules, rules)) return e;
    return undefined;
  }

  #remember(hash: number, entry: SharedEntry): void {
    const bucket = this.#shared.get(hash);
    if (bucket === undefined) this.#shared.set(hash, [entry]);
    else bucket.push(entry);
  }

  /** Appends a leaf for the rules (ascending positions), or finds the same leaf, and returns its offset. */
  addLeaf(rules: readonly CompiledRule[]): number {
    const hash = listHash('leaf', rules);
    const known = this.#find(hash, 'leaf', rules);
    if (known !== undefined) return known.value as number;
    const offset = this.#length;
    this.#remember(hash, { kind: 'leaf', rules, value: offset });
    this.#push(rules.length);
    for (const r of rules) {
      const record = this.#record(r);
      this.#reserve(record.length);
      this.#pool.set(record, this.#length);
      this.#length += record.length;
    }
    return offset;
  }

  /** Id of an application path, assigned on first use. */
  appId(path: string): number {
    let id = this.appIds.get(path);
    if (id === undefined) {
      id = this.appIds.size;
      this.appIds.set(path, id);
    }
    return id;
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

  #record(r: CompiledRule): Int32Array {
    const known = this.#records[r.index];
    if (known !== undefined) return known;
    let flags = (r.protocols << PROTO_SHIFT) | (r.incoming ? F_INCOMING : 0) | (r.outgoing ? F_OUTGOING : 0);
    const appId = r.application === null ? -1 : this.appId(r.application);
    if (appId >= 0) flags |= F_APP;
    if (r.uid !== null) flags |= F_UID;
    if (r.remotePortSpans !== null) flags |= F_REMOTE_PORTS;
    if (r.localPortSpans !== null) flags |= F_LOCAL_PORTS;
    const remote = r.remote;
    const oneV4 =
      remote !== null &&
      remote.v4.length === 2 &&
      remote.v6.length === 0 &&
      remote.hosts.size === 0 &&
      remote.suffixes.length === 0 &&
      remote.domainLists.length === 0;
    if (oneV4) flags |= F_V4_RANGE;
    if ((remote !== null && !oneV4) || r.userName !== null || r.expires) flags |= F_FULL;
    const rp = r.remotePortSpans ?? new Int32Array(0);
    const lp = r.localPortSpans ?? new Int32Array(0);
    // IPv4 bounds are stored as int32 and compared after >>> 0, so the whole unsigned range fits.
    const record = Int32Array.of(
      r.index,
      flags,
      appId,
      r.uid === null ? 0 : r.uid | 0,
      oneV4 ? remote.v4[0]! | 0 : 0,
      oneV4 ? remote.v4[1]! | 0 : 0,
      rp.length / 2,
      lp.length / 2,
      ...rp,
      ...lp,
    );
    this.#records[r.index] = record;
    return record;
  }
}

interface SharedEntry {
  readonly kind: string;
  readonly rules: readonly CompiledRule[];
  readonly value: unknown;
}

/** A hash of the kind and the rule positions (FNV-1a over 32-bit words); equal lists are then compared in full. */
function listHash(kind: string, rules: readonly CompiledRule[]): number {
  let h = 0x811c9dc5 ^ kind.length ^ (kind.charCodeAt(0) << 8);
  h = Math.imul(h ^ rules.length, 0x01000193);
  for (let i = 0; i < rules.length; i++) h = Math.imul(h ^ rules[i]!.index, 0x01000193);
  return h;
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
  /** The connection's application id, or -2 when no rule names its application. */
  readonly appId: number;
}

/**
 * Application path -> id, as a prototype-less dictionary object rather than a Map. Looking a
 * string up as a property key internalizes it, and V8 then turns the caller's string into a
 * reference to the internalized one, so the next lookup with the same string (the engine keeps
 * one path string per process) compares pointers. A Map compares the characters of its own key
 * strings, which at tens of thousands of applications are cold in the cache: this lookup was
 * most of a decision's cost at 100,000 rules (about 300 of 700 ns).
 */
export type AppIdTable = Readonly<Record<string, number>>;

export function appIdTable(ids: ReadonlyMap<string, number>): AppIdTable {
  const table: Record<string, number> = Object.create(null);
  for (const [path, id] of ids) table[path] = id;
  return table;
}

/** Computes the per-decision facts once. */
export function leafSearch(
  pool: Int32Array,
  rules: readonly CompiledRule[],
  appIds: AppIdTable,
  f: ConnectionFacts,
): LeafSearch {
  const bit = f.protocol === 'tcp' ? 1 : f.protocol === 'udp' ? 2 : f.protocol === 'icmp' ? 4 : 8;
  const appId = f.application === null ? -2 : (appIds[f.application] ?? -2);
  return {
    pool,
    rules,
    f,
    direction: f.direction === 'incoming' ? F_INCOMING : F_OUTGOING,
    protocol: bit << PROTO_SHIFT,
    appId,
  };
}

function portIn(pool: Int32Array, at: number, count: number, port: number | null): boolean {
  if (port === null) return false;
  const end = at + count * 2;
  for (let i = at; i < end; i += 2) if (pool[i]! <= port && port <= pool[i + 1]!) return true;
  return false;
}

/** Scans the leaf at `offset`; returns the first matching rule position below `best`, else `best`. */
export function scanLeaf(s: LeafSearch, offset: number, best: number): number {
  const pool = s.pool;
  const f = s.f;
  const count = pool[offset]!;
  let p = offset + 1;
  for (let k = 0; k < count; k++) {
    const index = pool[p]!;
    if (index >= best) return best;
    const flags = pool[p + 1]!;
    const nRemote = pool[p + 6]!;
    const nLocal = pool[p + 7]!;
    const ports = p + HEADER;
    const next = ports + (nRemote + nLocal) * 2;
    if (
      (flags & s.direction) !== 0 &&
      (flags & s.protocol) !== 0 &&
      ((flags & F_APP) === 0 || pool[p + 2] === s.appId) &&
      ((flags & F_UID) === 0 || (f.uid !== null && pool[p + 3] === (f.uid | 0))) &&
      ((flags & F_REMOTE_PORTS) === 0 || portIn(pool, ports, nRemote, f.remotePort)) &&
      ((flags & F_LOCAL_PORTS) === 0 || portIn(pool, ports + nRemote * 2, nLocal, f.localPort)) &&
      ((flags & F_V4_RANGE) === 0 || inV4(f, pool[p + 4]!, pool[p + 5]!)) &&
      ((flags & F_FULL) === 0 || matches(s.rules[index]!, f))
    ) {
      return index;
    }
    p = next;
  }
  return best;
}

function inV4(f: ConnectionFacts, first: number, last: number): boolean {
  const a = f.remoteAddress;
  return a !== null && a.version === 4 && a.value >= first >>> 0 && a.value <= last >>> 0;
}
