/**
 * The compiled evaluator's index: rules split by direction and protocol, then
 * a tree over remote port -> local port -> remote address, plus one entry per
 * application. A lookup visits only the branches the connection can match,
 * so its cost follows the depth of the tree, not the number of rules. Leaves
 * are runs of packed rule records (leaf-pool.ts) checked in full, so the
 * index only narrows and never decides on its own.
 *
 * At 100,000 rules the index no longer fits in the CPU's near caches, and a
 * decision costs what its dependent loads from cold memory cost, so the
 * layout keeps them few:
 * - An application with a few rules has one leaf holding all of them (every
 *   direction and protocol: records check those), found by the number the
 *   engine gave the application (application-ids.ts) or, without one, by
 *   its path in the application dictionary: number or dictionary, then leaf.
 * - A decision allocates nothing (leaf-pool.ts: one LeafSearch reused).
 * - One node shape for every level, with its segments and jump table as
 *   fields of the node (no object in between), and a level that would only
 *   pass everything to its `any` branch is left out.
 * - Segment starts and child references are interleaved in one Int32Array, so
 *   the last probe of a search reads its child in the same cache line, and a
 *   jump table entry whose bucket lies inside one segment names that child
 *   (leaf, node or nothing) directly: table, then leaf.
 */
import { type ListsGuard, listsGuardOf, listsRuleOut } from './address-lists.js';
import { ApplicationKeys, NO_APPLICATION_ID, NOT_REMEMBERED } from './application-ids.js';
import type { CompiledRule } from './compile.js';
import { IndexNames } from './index-names.js';
import {
  type AppKeyTable,
  appKeyTable,
  LeafPoolBuilder,
  type LeafSearch,
  leafFirst,
  leafSearch,
  scanLeaf,
} from './leaf-pool.js';
import { matches, remoteIn } from './match.js';
import { PROTO_ICMP, PROTO_OTHER, PROTO_TCP, PROTO_UDP } from './protocol-bits.js';
import type { ConnectionFacts, PortRange } from './rule.js';
import { type RangeItem, RESOLVED, segment, segmentNum } from './segments.js';
import { type V6Segments, v6SegmentAt, v6Segments } from './v6-segments.js';

/** A leaf: the offset of its rule records in the leaf pool (leaf-pool.ts). */
type Leaf = number;

/** What a branch leads to: a node, a leaf, or nothing. */
type Child = IndexNode | Leaf | null;

/**
 * A child as an int in the segment arrays: -1 nothing, <= -2 the leaf at offset -2 - ref,
 * >= 0 the node kids[ref].
 */
type Ref = number;

const KIND_REMOTE_PORT = 0;
const KIND_LOCAL_PORT = 1;
const KIND_ADDR = 2;

/**
 * One node of the tree, the same shape at every level (monomorphic loads). A port node (remote or
 * local) keys its segments on that port; an address node on the IPv4 address, with IPv6 ranges and
 * host names beside.
 *
 * Segments, jump table and occupancy bitmap: segments.ts. The bitmap, a few kilobytes that stay
 * in the cache, answers most keys no rule names (a random remote address, most often) without
 * reading the jump table.
 */
class IndexNode {
  constructor(
    readonly kind: number,
    /** Smallest rule position in this subtree: a search that already has a better answer skips it. */
    readonly min: number,
    readonly any: Child,
    readonly seg: Int32Array | null,
    readonly jump: Int32Array | null,
    readonly shift: number,
    readonly occ: Int32Array | null,
    readonly occShift: number,
    readonly kids: readonly IndexNode[],
    readonly v6Ranges: V6Segments<Leaf> | null,
    /** Host names and `*.` suffixes (index-names.ts). */
    readonly names: IndexNames | null,
  ) {}
}

/** Below a few rules a tree level costs more (pointer chasing, cache misses) than checking the rules in full. */
const SMALL = 6;

/**
 * An application with at most this many rules gets one leaf with all of them, named by the
 * application dictionary; one with more gets a subtree per direction and protocol.
 */
const APP_LEAF_MAX = 8;

interface AppRoot {
  readonly any: Child;
  /** By application tree id (from the application's key, see AppKeyTable). */
  readonly byTree: readonly Child[] | null;
}

/** Opaque index built by compilePolicy; searched by findFirstMatchIndexed. */
export interface RuleIndex {
  /** [direction (incoming 0, outgoing 1) * 4 + protocol (tcp 0, udp 1, icmp 2, other 3)] */
  readonly buckets: readonly (AppRoot | null)[];
  readonly rules: readonly CompiledRule[];
  readonly pool: Int32Array;
  readonly appKeys: AppKeyTable;
  /** appKeys by application number (application-ids.ts), remembered as numbers come. */
  readonly appKeysById: ApplicationKeys;
  /**
   * Per bucket, the rules with a domain list or many address ranges (a list's: `beside`),
   * ascending: checked once per decision beside the tree, remote first (one bit for domain lists,
   * one load for ranges: range-set.ts), rather than copied into every address node of the tree,
   * where a list's 100,000 ranges would make every address lookup of the bucket search them.
   */
  readonly side: readonly (readonly CompiledRule[] | null)[];
  /** Per bucket, what the remote's list bits say of its `side` rules at once (address-lists.ts): most often, that none matches. */
  readonly sideGuards: readonly (ListsGuard | null)[];
}

/** Rules checked beside the tree: with a domain list, or with many address ranges. */
function beside(r: CompiledRule): boolean {
  const set = r.remote;
  return set !== null && (set.domainLists.length > 0 || set.v4Set !== null || set.v6Set !== null);
}

const PROTO_BITS = [PROTO_TCP, PROTO_UDP, PROTO_ICMP, PROTO_OTHER];

/** Builds the index over the active rules. */
export function buildRuleIndex(rules: readonly CompiledRule[]): RuleIndex {
  const b = new LeafPoolBuilder();
  // Rules with a domain list or many ranges are checked beside the index (the `side` lists), not in it.
  const active: CompiledRule[] = [];
  const besides: CompiledRule[] = [];
  for (const r of rules) if (r.active) (beside(r) ? besides : active).push(r);
  const side: (CompiledRule[] | null)[] = [];
  for (const incoming of [true, false]) {
    for (const bit of PROTO_BITS) {
      const list = besides.filter((r) => (incoming ? r.incoming : r.outgoing) && (r.protocols & bit) !== 0);
      side.push(list.length === 0 ? null : list);
    }
  }
  // Applications first: their keys go into the rule records.
  const byApp = new Map<string, CompiledRule[]>();
  for (const r of active) if (r.application !== null) pushUnique(byApp, r.application, r);
  let trees = 0;
  for (const [app, list] of byApp) {
    if (list.length <= APP_LEAF_MAX) b.appLeaf(app, list);
    else b.setAppKey(app, -3 - trees++);
  }
  const buckets: (AppRoot | null)[] = [];
  for (const incoming of [true, false]) {
    for (const bit of PROTO_BITS) {
      const subset = active.filter((r) => (incoming ? r.incoming : r.outgoing) && (r.protocols & bit) !== 0);
      buckets.push(subset.length === 0 ? null : buildApp(b, subset, trees));
    }
  }
  const sideGuards = side.map((l) => (l === null ? null : listsGuardOf(l.map((r) => r.remote))));
  return {
    buckets,
    rules,
    pool: b.finish(),
    appKeys: appKeyTable(b.appKeys),
    appKeysById: new ApplicationKeys(),
    side,
    sideGuards,
  };
}

function pushUnique<T>(map: Map<T, CompiledRule[]>, key: T, r: CompiledRule): void {
  const list = map.get(key);
  if (list === undefined) map.set(key, [r]);
  else if (list[list.length - 1] !== r) list.push(r);
}

function leafOf(b: LeafPoolBuilder, rules: readonly CompiledRule[]): Leaf | null {
  return rules.length === 0 ? null : b.addLeaf(rules);
}

function mapValues<K, A, B>(m: Map<K, A>, f: (a: A) => B): Map<K, B> {
  const out = new Map<K, B>();
  for (const [k, v] of m) out.set(k, f(v));
  return out;
}

function buildApp(b: LeafPoolBuilder, rules: readonly CompiledRule[], trees: number): AppRoot {
  const any: CompiledRule[] = [];
  const inTrees = new Map<number, CompiledRule[]>();
  for (const r of rules) {
    if (r.application === null) any.push(r);
    else {
      const key = b.appKeyOf(r.application);
      // Applications with a leaf of their own (key >= 0) are found through the dictionary alone.
      if (key <= -3) pushUnique(inTrees, -3 - key, r);
    }
  }
  let byTree: Child[] | null = null;
  if (inTrees.size > 0) {
    byTree = new Array<Child>(trees).fill(null);
    for (const [tree, list] of inTrees) byTree[tree] = buildRemotePort(b, list);
  }
  return { any: any.length === 0 ? null : buildRemotePort(b, any), byTree };
}

function buildRemotePort(b: LeafPoolBuilder, rules: readonly CompiledRule[]): Child {
  return b.shared('remote', rules, buildRemotePortNew);
}

function buildRemotePortNew(b: LeafPoolBuilder, rules: readonly CompiledRule[]): Child {
  return rules.length <= SMALL
    ? b.addLeaf(rules)
    : buildPort(
        KIND_REMOTE_PORT,
        rules,
        (r) => r.remotePorts,
        (l) => buildLocalPort(b, l),
      );
}

function buildLocalPort(b: LeafPoolBuilder, rules: readonly CompiledRule[]): Child {
  return b.shared('local', rules, buildLocalPortNew);
}

function buildLocalPortNew(b: LeafPoolBuilder, rules: readonly CompiledRule[]): Child {
  return rules.length <= SMALL
    ? b.addLeaf(rules)
    : buildPort(
        KIND_LOCAL_PORT,
        rules,
        (r) => r.localPorts,
        (l) => buildAddrOrLeaf(b, l),
      );
}

function buildAddrOrLeaf(b: LeafPoolBuilder, rules: readonly CompiledRule[]): Child {
  return rules.length <= SMALL ? b.addLeaf(rules) : b.shared('addr', rules, buildAddr);
}

/** A port level; when no rule names a port at this level, the level is left out and its `any` branch returned. */
function buildPort(
  kind: number,
  rules: readonly CompiledRule[],
  portsOf: (r: CompiledRule) => readonly PortRange[] | null,
  buildChild: (rules: CompiledRule[]) => Child,
): Child {
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
  const anyChild = any.length === 0 ? null : buildChild(any);
  const s = segmentNum<IndexNode>(ranges, 16, buildChild);
  if (s === null) return anyChild;
  return new IndexNode(
    kind,
    rules[0]!.index,
    anyChild,
    s.seg,
    s.jump,
    s.shift,
    s.occ,
    s.occShift,
    s.kids,
    null,
    null,
  );
}

function buildAddr(b: LeafPoolBuilder, rules: readonly CompiledRule[]): Child {
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
  const anyLeaf = leafOf(b, any);
  if (any.length === rules.length) return anyLeaf;
  // A segment's or a name's rules all have the connection's remote among theirs: their leaves'
  // records leave the remote out (LeafPoolBuilder.addLeaf).
  const leaf = (l: CompiledRule[]) => (l.length === 0 ? null : b.addLeaf(l, true));
  const s = segmentNum<IndexNode>(v4, 32, leaf);
  return new IndexNode(
    KIND_ADDR,
    rules[0]!.index,
    anyLeaf,
    s?.seg ?? null,
    s?.jump ?? null,
    s?.shift ?? 0,
    s?.occ ?? null,
    s?.occShift ?? 0,
    s?.kids ?? [],
    v6Segments(segment(v6, (k) => k + 1n, leaf)),
    hosts.size + suffixes.size === 0
      ? null
      : new IndexNames(
          mapValues(hosts, (l) => b.addLeaf(l, true)),
          mapValues(suffixes, (l) => b.addLeaf(l, true)),
        ),
  );
}

// ---- lookup ----

/** The Ref of the segment holding `key` (below 2 ** 32) in the node's segments. */
function segmentRef(node: IndexNode, seg: Int32Array, key: number): Ref {
  const jump = node.jump;
  let lo = -1;
  let hi = (seg.length >> 1) - 1;
  if (jump !== null) {
    const occ = node.occ;
    if (occ !== null) {
      const slice = key >>> node.occShift;
      if ((occ[slice >>> 5]! & (1 << (slice & 31))) === 0) return -1;
    }
    // key < 2 ** 32, so >>> keeps it unsigned.
    const at = (key >>> node.shift) * 2;
    hi = jump[at + 1]!;
    if (hi === RESOLVED) return jump[at]!;
    lo = jump[at]!;
  }
  // The last start at or below the key; it is at or below whenever lo >= 0.
  while (lo < hi) {
    const mid = (lo + hi + 1) >> 1;
    if (seg[mid * 2]! >>> 0 <= key) lo = mid;
    else hi = mid - 1;
  }
  return lo < 0 ? -1 : seg[lo * 2 + 1]!;
}

function searchRef(node: IndexNode, ref: Ref, s: LeafSearch, best: number): number {
  if (ref === -1) return best;
  if (ref <= -2) return scanLeaf(s, -2 - ref, best);
  return search(node.kids[ref]!, s, best);
}

function scan(s: LeafSearch, leaf: Leaf | null | undefined, best: number): number {
  return leaf == null ? best : scanLeaf(s, leaf, best);
}

function search(node: Child, s: LeafSearch, best: number): number {
  if (node === null) return best;
  if (typeof node === 'number') return scanLeaf(s, node, best);
  if (node.min >= best) return best;
  best = search(node.any, s, best);
  const f = s.f;
  const seg = node.seg;
  if (node.kind === KIND_ADDR) {
    const addr = f.remoteAddress;
    if (addr !== null) {
      if (addr.version === 4) {
        if (seg !== null) best = searchRef(node, segmentRef(node, seg, addr.value), s, best);
      } else if (node.v6Ranges !== null) {
        best = scan(s, v6SegmentAt(node.v6Ranges, addr.value), best);
      }
    }
    const names = f.remoteHosts;
    if (node.names !== null)
      for (let i = 0; i < names.length; i++) best = node.names.search(s, names[i]!, best);
    return best;
  }
  const port = node.kind === KIND_REMOTE_PORT ? f.remotePort : f.localPort;
  if (port !== null && seg !== null) best = searchRef(node, segmentRef(node, seg, port), s, best);
  return best;
}

const NONE = 0x7fffffff;

/** The connection's application key (AppKeyTable): by its number when the engine gave one, else by its path. */
function appKeyOf(index: RuleIndex, f: ConnectionFacts): number {
  const path = f.application;
  if (path === null) return -1;
  const id = f.applicationId ?? NO_APPLICATION_ID;
  const known = index.appKeysById.known(id, path);
  if (known !== NOT_REMEMBERED) return known;
  const key = index.appKeys[path] ?? -1;
  index.appKeysById.remember(id, path, key);
  return key;
}

/** Position of the first active rule matching the connection, or -1. Same answer as the linear search, faster. */
export function findFirstMatchIndexed(index: RuleIndex, f: ConnectionFacts): number {
  const protoSlot = f.protocol === 'tcp' ? 0 : f.protocol === 'udp' ? 1 : f.protocol === 'icmp' ? 2 : 3;
  const bucket = (f.direction === 'incoming' ? 0 : 4) + protoSlot;
  const root = index.buckets[bucket];
  const s = leafSearch(index.pool, index.rules, appKeyOf(index, f), f);
  const key = s.appKey;
  // The first rule position in the application's own leaf, read before the trees are searched: the
  // leaf is most often cold at 100,000 rules, and its load then overlaps the search.
  const appFirst = key >= 0 ? leafFirst(s, key) : NONE;
  let best = root == null ? NONE : search(root.any, s, NONE);
  // An application's own leaf holds its rules of every direction and protocol (the records check
  // those), so it is scanned whatever the bucket holds.
  if (appFirst < best) best = scanLeaf(s, key, best);
  else if (key <= -3 && root != null && root.byTree !== null) best = search(root.byTree[-3 - key]!, s, best);
  const side = index.side[bucket];
  const guard = index.sideGuards[bucket];
  if (side != null && (guard == null || !listsRuleOut(guard, f))) {
    for (let i = 0; i < side.length; i++) {
      const r = side[i]!;
      if (r.index >= best) break;
      // The remote first (the rule is beside the tree for it: one bit for domain lists, a filter
      // probe for many ranges), after the application, which costs nothing.
      if (
        (r.application === null || r.application === f.application) &&
        remoteIn(r.remote!, f) &&
        matches(r, f)
      ) {
        best = r.index;
        break;
      }
    }
  }
  return best === NONE ? -1 : best;
}
