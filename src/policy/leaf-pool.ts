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
  readonly #pool: number[] = [];
  readonly #records = new Map<CompiledRule, number[]>();
  /** Nodes and leaves already built, by kind and rule list: the same rules always give the same subtree. */
  readonly #shared = new Map<string, unknown>();
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
    const key = `${kind}:${listKey(rules)}`;
    if (this.#shared.has(key)) return this.#shared.get(key) as T;
    const built = build(this, rules);
    this.#shared.set(key, built);
    return built;
  }

  /** Appends a leaf for the rules (ascending positions), or finds the same leaf, and returns its offset. */
  addLeaf(rules: readonly CompiledRule[]): number {
    const key = `leaf:${listKey(rules)}`;
    const known = this.#shared.get(key);
    if (known !== undefined) return known as number;
    const offset = this.#pool.length;
    this.#shared.set(key, offset);
    this.#pool.push(rules.length);
    for (const r of rules) for (const v of this.#record(r)) this.#pool.push(v);
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
    return Int32Array.from(this.#pool);
  }

  #record(r: CompiledRule): number[] {
    const known = this.#records.get(r);
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
      remote.suffixes.length === 0;
    if (oneV4) flags |= F_V4_RANGE;
    if ((remote !== null && !oneV4) || r.userName !== null || r.expires) flags |= F_FULL;
    const rp = r.remotePortSpans ?? new Int32Array(0);
    const lp = r.localPortSpans ?? new Int32Array(0);
    // IPv4 bounds are stored as int32 and compared after >>> 0, so the whole unsigned range fits.
    const record = [
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
    ];
    this.#records.set(r, record);
    return record;
  }
}

function listKey(rules: readonly CompiledRule[]): string {
  let key = '';
  for (const r of rules) key += `${r.index},`;
  return key;
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

/** Computes the per-decision facts once. */
export function leafSearch(
  pool: Int32Array,
  rules: readonly CompiledRule[],
  appIds: ReadonlyMap<string, number>,
  f: ConnectionFacts,
): LeafSearch {
  const bit = f.protocol === 'tcp' ? 1 : f.protocol === 'udp' ? 2 : f.protocol === 'icmp' ? 4 : 8;
  const appId = f.application === null ? -2 : (appIds.get(f.application) ?? -2);
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
