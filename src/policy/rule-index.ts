/**
 * The compiled evaluator's index: rules split by direction and protocol, then
 * a tree over application -> remote port -> local port -> remote address.
 * Each level keeps port and IPv4 keys as sorted elementary segments with a
 * jump table, names in a Map, and the rules that do not constrain that field in an
 * `any` branch. A lookup visits only the branches the connection can match,
 * so its cost follows the depth of the tree, not the number of rules. Leaves
 * are runs of packed rule records (leaf-pool.ts) checked in full, so the
 * index only narrows and never decides on its own.
 */
import type { CompiledRule } from './compile.js';
import {
  type AppIdTable,
  appIdTable,
  LeafPoolBuilder,
  type LeafSearch,
  leafSearch,
  scanLeaf,
} from './leaf-pool.js';
import { matches } from './match.js';
import { PROTO_ICMP, PROTO_OTHER, PROTO_TCP, PROTO_UDP } from './protocol-bits.js';
import type { ConnectionFacts, PortRange } from './rule.js';

/** A leaf: the offset of its rule records in the leaf pool (leaf-pool.ts). */
type Leaf = number;

interface Segments<K, C> {
  readonly starts: K[];
  /** children[i] covers [starts[i], starts[i + 1]); the last start only closes the previous segment. */
  readonly children: (C | null)[];
}

/**
 * Elementary segments over a numeric key (port, IPv4 address) with a jump table: for bucket
 * b = key >>> shift, jump[2b] is the last segment starting at or below the bucket's first key
 * (-1: none) and jump[2b + 1] the last starting at or below its last key. A lookup reads the
 * table once and searches only the segments that start inside its bucket (most often none or
 * one), so it touches two or three cache lines however many segments there are, where a binary
 * search over tens of thousands of starts missed the cache at every step. When one segment
 * covers the whole bucket and its child is a leaf, jump[2b] holds that leaf directly as
 * -2 - offset: one cache line, then the leaf.
 */
interface NumSegments<C> {
  readonly starts: Float64Array;
  readonly children: (C | null)[];
  /** Null below JUMP_MIN segments: a binary search over a few cache lines is as fast. */
  readonly jump: Int32Array | null;
  readonly shift: number;
}

interface AddrNode {
  /** Smallest rule position in this subtree: a search that already has a better answer skips it. */
  readonly min: number;
  readonly any: Leaf | null;
  /** Single addresses and ranges alike, so a lookup is one segment search. */
  readonly v4: NumSegments<Leaf> | null;
  readonly v6Ranges: Segments<bigint, Leaf> | null;
  readonly hosts: Map<string, Leaf> | null;
  readonly suffixes: Map<string, Leaf> | null;
}

interface PortNode<C> {
  readonly min: number;
  readonly any: C | null;
  /** Single ports and ranges alike, so a lookup is one segment search. */
  readonly ports: NumSegments<C> | null;
}

/** Below a few rules a tree level costs more (pointer chasing, cache misses) than checking the rules in full. */
const SMALL = 6;

type LocalPortNode = PortNode<AddrNode | Leaf> | Leaf;
type RemotePortNode = PortNode<LocalPortNode> | Leaf;

interface AppNode {
  readonly any: RemotePortNode | null;
  /** By application id (RuleIndex.appIds), so the path is looked up once per decision. */
  readonly byAppId: readonly (RemotePortNode | undefined)[] | null;
}

/** Opaque index built by compilePolicy; searched by findFirstMatchIndexed. */
export interface RuleIndex {
  /** [direction (incoming 0, outgoing 1) * 4 + protocol (tcp 0, udp 1, icmp 2, other 3)] */
  readonly buckets: readonly (AppNode | null)[];
  readonly rules: readonly CompiledRule[];
  readonly pool: Int32Array;
  readonly appIds: AppIdTable;
  /**
   * Per bucket, the rules with a domain list (ascending): checked in full once per decision
   * beside the tree, rather than at every address node the tree would copy them into.
   */
  readonly side: readonly (readonly CompiledRule[] | null)[];
}

const PROTO_BITS = [PROTO_TCP, PROTO_UDP, PROTO_ICMP, PROTO_OTHER];

/** Builds the index over the active rules. */
export function buildRuleIndex(rules: readonly CompiledRule[]): RuleIndex {
  const b = new LeafPoolBuilder();
  const buckets: (AppNode | null)[] = [];
  const side: (CompiledRule[] | null)[] = [];
  for (const incoming of [true, false]) {
    for (const bit of PROTO_BITS) {
      const all = rules.filter(
        (r) => r.active && (incoming ? r.incoming : r.outgoing) && (r.protocols & bit) !== 0,
      );
      const named = all.filter((r) => r.remote !== null && r.remote.domainLists.length > 0);
      const subset = named.length === 0 ? all : all.filter((r) => !named.includes(r));
      buckets.push(subset.length === 0 ? null : buildApp(b, subset));
      side.push(named.length === 0 ? null : named);
    }
  }
  return { buckets, rules, pool: b.finish(), appIds: appIdTable(b.appIds), side };
}

function pushUnique<T>(map: Map<T, CompiledRule[]>, key: T, r: CompiledRule): void {
  const list = map.get(key);
  if (list === undefined) map.set(key, [r]);
  else if (list[list.length - 1] !== r) list.push(r);
}

function leafOf(b: LeafPoolBuilder, rules: readonly CompiledRule[]): Leaf | null {
  return rules.length === 0 ? null : b.addLeaf(rules);
}

function mapValues<K, A, B>(m: Map<K, A>, f: (a: A) => B): Map<K, B> | null {
  if (m.size === 0) return null;
  const out = new Map<K, B>();
  for (const [k, v] of m) out.set(k, f(v));
  return out;
}

function buildApp(b: LeafPoolBuilder, rules: readonly CompiledRule[]): AppNode {
  const any: CompiledRule[] = [];
  const exact = new Map<string, CompiledRule[]>();
  for (const r of rules) {
    if (r.application === null) any.push(r);
    else pushUnique(exact, r.application, r);
  }
  let byAppId: (RemotePortNode | undefined)[] | null = null;
  if (exact.size > 0) {
    const entries = [...exact].map(([app, list]) => [b.appId(app), buildRemotePort(b, list)] as const);
    byAppId = new Array<RemotePortNode | undefined>(b.appIds.size).fill(undefined);
    for (const [id, node] of entries) byAppId[id] = node;
  }
  return { any: any.length === 0 ? null : buildRemotePort(b, any), byAppId };
}

function buildRemotePort(b: LeafPoolBuilder, rules: readonly CompiledRule[]): RemotePortNode {
  return b.shared('remote', rules, buildRemotePortNew);
}

function buildRemotePortNew(b: LeafPoolBuilder, rules: readonly CompiledRule[]): RemotePortNode {
  return rules.length <= SMALL
    ? b.addLeaf(rules)
    : buildPort(
        rules,
        (r) => r.remotePorts,
        (l) => buildLocalPort(b, l),
      );
}

function buildLocalPort(b: LeafPoolBuilder, rules: readonly CompiledRule[]): LocalPortNode {
  return b.shared('local', rules, buildLocalPortNew);
}

function buildLocalPortNew(b: LeafPoolBuilder, rules: readonly CompiledRule[]): LocalPortNode {
  return rules.length <= SMALL
    ? b.addLeaf(rules)
    : buildPort(
        rules,
        (r) => r.localPorts,
        (l) => buildAddrOrLeaf(b, l),
      );
}

function buildAddrOrLeaf(b: LeafPoolBuilder, rules: readonly CompiledRule[]): AddrNode | Leaf {
  return rules.length <= SMALL ? b.addLeaf(rules) : b.shared('addr', rules, buildAddr);
}

interface RangeItem<K> {
  readonly from: K;
  readonly to: K;
  readonly rule: CompiledRule;
}

/** Splits possibly overlapping ranges into elementary segments, each with the rules covering it (in rule order). */
function segment<K extends number | bigint, C>(
  items: readonly RangeItem<K>[],
  next: (k: K) => K,
  build: (rules: CompiledRule[]) => C | null,
): Segments<K, C> | null {
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
const JUMP_MIN = 16;

/** Like `segment`, for numeric keys below 2 ** keyBits, with a jump table when there are many segments. */
function segmentNum<C>(
  items: readonly RangeItem<number>[],
  keyBits: number,
  build: (rules: CompiledRule[]) => C | null,
): NumSegments<C> | null {
  if (items.length === 0) return null;
  const points = new Float64Array(items.length * 2);
  for (let i = 0; i < items.length; i++) {
    points[i * 2] = items[i]!.from;
    points[i * 2 + 1] = items[i]!.to + 1;
  }
  points.sort();
  let n = 0;
  for (let i = 0; i < points.length; i++)
    if (n === 0 || points[i] !== points[n - 1]) points[n++] = points[i]!;
  const starts = points.slice(0, n);
  const lists: (CompiledRule[] | null)[] = new Array<CompiledRule[] | null>(n).fill(null);
  for (const it of items) {
    const end = lowerBoundNum(starts, it.to + 1);
    for (let i = lowerBoundNum(starts, it.from); i < end; i++) {
      const list = lists[i] ?? null;
      if (list === null) lists[i] = [it.rule];
      else if (list[list.length - 1] !== it.rule) list.push(it.rule);
    }
  }
  const children = lists.map((l) => (l === null ? null : build(l)));
  if (n < JUMP_MIN) return { starts, children, jump: null, shift: 0 };
  const bits = Math.min(keyBits, Math.ceil(Math.log2(n)) + 1);
  const shift = keyBits - bits;
  const buckets = 2 ** bits;
  const jump = new Int32Array(buckets * 2);
  const width = 2 ** shift;
  for (let bucket = 0, j = -1; bucket < buckets; bucket++) {
    const first = bucket * width;
    while (j + 1 < n && starts[j + 1]! <= first) j++;
    let k = j;
    while (k + 1 < n && starts[k + 1]! <= first + width - 1) k++;
    const child = j >= 0 ? children[j] : null;
    jump[bucket * 2] = k === j && typeof child === 'number' ? -2 - child : j;
    jump[bucket * 2 + 1] = k;
  }
  return { starts, children, jump, shift };
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

function buildPort<C>(
  rules: readonly CompiledRule[],
  portsOf: (r: CompiledRule) => readonly PortRange[] | null,
  buildChild: (rules: CompiledRule[]) => C,
): PortNode<C> {
  const any: CompiledRule[] = [];
  const ranges: RangeItem<number>[] = [];
  for (const r of rules) {
    const ports = portsOf(r);
    if (ports === null) {
      any.push(r);
      continue;
    }
    for (const p of ports) ranges.push({ from: p.from, to: p.to, rule: r });
  }
  return {
    min: rules[0]!.index,
    any: any.length === 0 ? null : buildChild(any),
    ports: segmentNum(ranges, 16, buildChild),
  };
}

function buildAddr(b: LeafPoolBuilder, rules: readonly CompiledRule[]): AddrNode {
  const any: CompiledRule[] = [];
  const v4: RangeItem<number>[] = [];
  const v6: RangeItem<bigint>[] = [];
  const hosts = new Map<string, CompiledRule[]>();
  const suffixes = new Map<string, CompiledRule[]>();
  for (const r of rules) {
    const set = r.remote;
    if (set === null) {
      any.push(r);
      continue;
    }
    for (let i = 0; i < set.v4.length; i += 2) v4.push({ from: set.v4[i]!, to: set.v4[i + 1]!, rule: r });
    for (let i = 0; i < set.v6.length; i += 2) v6.push({ from: set.v6[i]!, to: set.v6[i + 1]!, rule: r });
    for (const h of set.hosts) pushUnique(hosts, h, r);
    for (const s of set.suffixes) pushUnique(suffixes, s, r);
  }
  const leaf = (l: CompiledRule[]) => leafOf(b, l);
  return {
    min: rules[0]!.index,
    any: leafOf(b, any),
    v4: segmentNum(v4, 32, leaf),
    v6Ranges: segment(v6, (k) => k + 1n, leaf),
    hosts: mapValues(hosts, (l) => b.addLeaf(l)),
    suffixes: mapValues(suffixes, (l) => b.addLeaf(l)),
  };
}

// ---- lookup ----

function segmentAt<K extends number | bigint, C>(seg: Segments<K, C>, key: K): C | null {
  const starts = seg.starts;
  let lo = 0;
  let hi = starts.length - 1;
  if (hi < 0 || key < starts[0]!) return null;
  while (lo < hi) {
    const mid = (lo + hi + 1) >> 1;
    if (starts[mid]! <= key) lo = mid;
    else hi = mid - 1;
  }
  return seg.children[lo] ?? null;
}

function numSegmentAt<C>(seg: NumSegments<C>, key: number): C | null {
  const starts = seg.starts;
  const jump = seg.jump;
  let lo = -1;
  let hi = starts.length - 1;
  if (jump !== null) {
    // key < 2 ** keyBits, so >>> keeps it unsigned.
    const at = (key >>> seg.shift) * 2;
    lo = jump[at]!;
    // The whole bucket lies in one segment whose child is a leaf: C is Leaf here.
    if (lo <= -2) return (-2 - lo) as C;
    hi = jump[at + 1]!;
  }
  // The last start at or below the key; starts[lo] <= key holds whenever lo >= 0.
  while (lo < hi) {
    const mid = (lo + hi + 1) >> 1;
    if (starts[mid]! <= key) lo = mid;
    else hi = mid - 1;
  }
  return lo < 0 ? null : (seg.children[lo] ?? null);
}

function scan(s: LeafSearch, leaf: Leaf | null | undefined, best: number): number {
  return leaf == null ? best : scanLeaf(s, leaf, best);
}

function searchAddr(node: AddrNode | Leaf | null | undefined, s: LeafSearch, best: number): number {
  if (node == null) return best;
  if (typeof node === 'number') return scanLeaf(s, node, best);
  if (node.min >= best) return best;
  best = scan(s, node.any, best);
  const f = s.f;
  const addr = f.remoteAddress;
  if (addr !== null) {
    if (addr.version === 4) {
      if (node.v4 !== null) best = scan(s, numSegmentAt(node.v4, addr.value), best);
    } else if (node.v6Ranges !== null) {
      best = scan(s, segmentAt(node.v6Ranges, addr.value), best);
    }
  }
  const names = f.remoteHosts;
  for (let i = 0; i < names.length; i++) {
    const name = names[i]!;
    if (node.hosts !== null) best = scan(s, node.hosts.get(name), best);
    if (node.suffixes !== null) {
      for (let dot = name.indexOf('.'); dot !== -1; dot = name.indexOf('.', dot + 1)) {
        best = scan(s, node.suffixes.get(name.slice(dot)), best);
      }
    }
  }
  return best;
}

function searchLocalPort(node: LocalPortNode | null | undefined, s: LeafSearch, best: number): number {
  if (node == null) return best;
  if (typeof node === 'number') return scanLeaf(s, node, best);
  if (node.min >= best) return best;
  best = searchAddr(node.any, s, best);
  const port = s.f.localPort;
  if (port !== null) {
    if (node.ports !== null) best = searchAddr(numSegmentAt(node.ports, port), s, best);
  }
  return best;
}

function searchRemotePort(node: RemotePortNode | null | undefined, s: LeafSearch, best: number): number {
  if (node == null) return best;
  if (typeof node === 'number') return scanLeaf(s, node, best);
  if (node.min >= best) return best;
  best = searchLocalPort(node.any, s, best);
  const port = s.f.remotePort;
  if (port !== null) {
    if (node.ports !== null) best = searchLocalPort(numSegmentAt(node.ports, port), s, best);
  }
  return best;
}

const NONE = 0x7fffffff;

/** Position of the first active rule matching the connection, or -1. Same answer as the linear search, faster. */
export function findFirstMatchIndexed(index: RuleIndex, f: ConnectionFacts): number {
  const protoSlot = f.protocol === 'tcp' ? 0 : f.protocol === 'udp' ? 1 : f.protocol === 'icmp' ? 2 : 3;
  const bucket = (f.direction === 'incoming' ? 0 : 4) + protoSlot;
  const app = index.buckets[bucket];
  const side = index.side[bucket];
  let best = NONE;
  if (app != null) {
    const s = leafSearch(index.pool, index.rules, index.appIds, f);
    best = searchRemotePort(app.any, s, NONE);
    if (app.byAppId !== null && s.appId >= 0) best = searchRemotePort(app.byAppId[s.appId], s, best);
  }
  if (side != null) {
    for (let i = 0; i < side.length; i++) {
      const r = side[i]!;
      if (r.index >= best) break;
      if (matches(r, f)) {
        best = r.index;
        break;
      }
    }
  }
  return best === NONE ? -1 : best;
}
