/**
 * The compiled evaluator's index: rules split by direction and protocol, then
 * a tree over application -> remote port -> local port -> remote address.
 * Each level keeps exact keys in a Map, ranges as sorted elementary segments
 * (binary search), and the rules that do not constrain that field in an
 * `any` branch. A lookup visits only the branches the connection can match,
 * so its cost follows the depth of the tree, not the number of rules. Leaves
 * hold rule positions in ascending order; each candidate is checked in full
 * with `matches`, so the index only narrows and never decides on its own.
 */
import type { CompiledRule } from './compile.js';
import { PROTO_ICMP, PROTO_OTHER, PROTO_TCP, PROTO_UDP } from './protocol-bits.js';
import { matches } from './match.js';
import type { ConnectionFacts, PortRange } from './rule.js';

type Leaf = Int32Array;

interface Segments<K, C> {
  readonly starts: K[];
  /** children[i] covers [starts[i], starts[i + 1]); the last start only closes the previous segment. */
  readonly children: (C | null)[];
}

interface AddrNode {
  readonly any: Leaf | null;
  readonly v4Exact: Map<number, Leaf> | null;
  readonly v4Ranges: Segments<number, Leaf> | null;
  readonly v6Ranges: Segments<bigint, Leaf> | null;
  readonly hosts: Map<string, Leaf> | null;
  readonly suffixes: Map<string, Leaf> | null;
}

interface PortNode<C> {
  readonly any: C | null;
  readonly exact: Map<number, C> | null;
  readonly ranges: Segments<number, C> | null;
}

type LocalPortNode = PortNode<AddrNode>;
type RemotePortNode = PortNode<LocalPortNode>;

interface AppNode {
  readonly any: RemotePortNode | null;
  readonly exact: Map<string, RemotePortNode> | null;
}

/** Opaque index built by compilePolicy; searched by findFirstMatchIndexed. */
export interface RuleIndex {
  /** [direction (incoming 0, outgoing 1) * 4 + protocol (tcp 0, udp 1, icmp 2, other 3)] */
  readonly buckets: readonly (AppNode | null)[];
  readonly rules: readonly CompiledRule[];
}

const PROTO_BITS = [PROTO_TCP, PROTO_UDP, PROTO_ICMP, PROTO_OTHER];

/** Builds the index over the active rules. */
export function buildRuleIndex(rules: readonly CompiledRule[]): RuleIndex {
  const buckets: (AppNode | null)[] = [];
  for (const incoming of [true, false]) {
    for (const bit of PROTO_BITS) {
      const subset = rules.filter((r) => r.active && (incoming ? r.incoming : r.outgoing) && (r.protocols & bit) !== 0);
      buckets.push(subset.length === 0 ? null : buildApp(subset));
    }
  }
  return { buckets, rules };
}

function pushUnique<T>(map: Map<T, CompiledRule[]>, key: T, r: CompiledRule): void {
  const list = map.get(key);
  if (list === undefined) map.set(key, [r]);
  else if (list[list.length - 1] !== r) list.push(r);
}

function leafOf(rules: readonly CompiledRule[]): Leaf | null {
  if (rules.length === 0) return null;
  const leaf = new Int32Array(rules.length);
  rules.forEach((r, i) => {
    leaf[i] = r.index;
  });
  return leaf;
}

function mapValues<K, A, B>(m: Map<K, A>, f: (a: A) => B): Map<K, B> | null {
  if (m.size === 0) return null;
  const out = new Map<K, B>();
  for (const [k, v] of m) out.set(k, f(v));
  return out;
}

function buildApp(rules: readonly CompiledRule[]): AppNode {
  const any: CompiledRule[] = [];
  const exact = new Map<string, CompiledRule[]>();
  for (const r of rules) {
    if (r.application === null) any.push(r);
    else pushUnique(exact, r.application, r);
  }
  return { any: any.length === 0 ? null : buildRemotePort(any), exact: mapValues(exact, buildRemotePort) };
}

function buildRemotePort(rules: readonly CompiledRule[]): RemotePortNode {
  return buildPort(rules, (r) => r.remotePorts, buildLocalPort);
}

function buildLocalPort(rules: readonly CompiledRule[]): LocalPortNode {
  return buildPort(rules, (r) => r.localPorts, buildAddr);
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
  const points = new Set<K>();
  for (const it of items) {
    points.add(it.from);
    points.add(next(it.to));
  }
  const starts = [...points].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
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
  const exact = new Map<number, CompiledRule[]>();
  const ranges: RangeItem<number>[] = [];
  for (const r of rules) {
    const ports = portsOf(r);
    if (ports === null) {
      any.push(r);
      continue;
    }
    for (const p of ports) {
      if (p.from === p.to) pushUnique(exact, p.from, r);
      else ranges.push({ from: p.from, to: p.to, rule: r });
    }
  }
  return {
    any: any.length === 0 ? null : buildChild(any),
    exact: mapValues(exact, buildChild),
    ranges: segment(ranges, (k) => k + 1, buildChild),
  };
}

function buildAddr(rules: readonly CompiledRule[]): AddrNode {
  const any: CompiledRule[] = [];
  const v4Exact = new Map<number, CompiledRule[]>();
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
    for (let i = 0; i < set.v4.length; i += 2) {
      const from = set.v4[i]!;
      const to = set.v4[i + 1]!;
      if (from === to) pushUnique(v4Exact, from, r);
      else v4.push({ from, to, rule: r });
    }
    for (let i = 0; i < set.v6.length; i += 2) v6.push({ from: set.v6[i]!, to: set.v6[i + 1]!, rule: r });
    for (const h of set.hosts) pushUnique(hosts, h, r);
    for (const s of set.suffixes) pushUnique(suffixes, s, r);
  }
  return {
    any: leafOf(any),
    v4Exact: mapValues(v4Exact, (l) => leafOf(l)!),
    v4Ranges: segment(v4, (k) => k + 1, leafOf),
    v6Ranges: segment(v6, (k) => k + 1n, leafOf),
    hosts: mapValues(hosts, (l) => leafOf(l)!),
    suffixes: mapValues(suffixes, (l) => leafOf(l)!),
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

function scanLeaf(leaf: Leaf | null | undefined, rules: readonly CompiledRule[], f: ConnectionFacts, best: number): number {
  if (leaf == null) return best;
  for (let i = 0; i < leaf.length; i++) {
    const idx = leaf[i]!;
    if (idx >= best) return best;
    if (matches(rules[idx]!, f)) return idx;
  }
  return best;
}

function searchAddr(node: AddrNode | null | undefined, rules: readonly CompiledRule[], f: ConnectionFacts, best: number): number {
  if (node == null) return best;
  best = scanLeaf(node.any, rules, f, best);
  const addr = f.remoteAddress;
  if (addr !== null) {
    if (addr.version === 4) {
      if (node.v4Exact !== null) best = scanLeaf(node.v4Exact.get(addr.value), rules, f, best);
      if (node.v4Ranges !== null) best = scanLeaf(segmentAt(node.v4Ranges, addr.value), rules, f, best);
    } else if (node.v6Ranges !== null) {
      best = scanLeaf(segmentAt(node.v6Ranges, addr.value), rules, f, best);
    }
  }
  const names = f.remoteHosts;
  if (names.length > 0) {
    for (const name of names) {
      if (node.hosts !== null) best = scanLeaf(node.hosts.get(name), rules, f, best);
      if (node.suffixes !== null) {
        for (let dot = name.indexOf('.'); dot !== -1; dot = name.indexOf('.', dot + 1)) {
          best = scanLeaf(node.suffixes.get(name.slice(dot)), rules, f, best);
        }
      }
    }
  }
  return best;
}

function searchPort<C>(
  node: PortNode<C> | null | undefined,
  port: number | null,
  child: (c: C | null | undefined, best: number) => number,
  best: number,
): number {
  if (node == null) return best;
  best = child(node.any, best);
  if (port !== null) {
    if (node.exact !== null) best = child(node.exact.get(port), best);
    if (node.ranges !== null) best = child(segmentAt(node.ranges, port), best);
  }
  return best;
}

/** Position of the first active rule matching the connection, or -1. Same answer as the linear search, faster. */
export function findFirstMatchIndexed(index: RuleIndex, f: ConnectionFacts): number {
  const protoSlot = f.protocol === 'tcp' ? 0 : f.protocol === 'udp' ? 1 : f.protocol === 'icmp' ? 2 : 3;
  const app = index.buckets[(f.direction === 'incoming' ? 0 : 4) + protoSlot];
  if (app == null) return -1;
  const rules = index.rules;
  const addr = (n: AddrNode | null | undefined, best: number) => searchAddr(n, rules, f, best);
  const local = (n: LocalPortNode | null | undefined, best: number) => searchPort(n, f.localPort, addr, best);
  const remote = (n: RemotePortNode | null | undefined, best: number) => searchPort(n, f.remotePort, local, best);
  let best = remote(app.any, 0x7fffffff);
  if (app.exact !== null && f.application !== null) best = remote(app.exact.get(f.application), best);
  return best === 0x7fffffff ? -1 : best;
}
