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
 * - Nodes are records in the same Int32Array as the leaves (node-pool.ts):
 *   header, segments, jump table and occupancy bitmap one after the other,
 *   and a child named by its offset. Going down a level reads the pool
 *   twice (the jump table's entry, the child's header) where node objects
 *   read five cold objects (the kids array, its elements, the node, its
 *   typed arrays). A level that would only pass everything to its `any`
 *   branch is left out.
 * - Segment starts and child references are interleaved, so the last probe
 *   of a search reads its child in the same cache line, and a jump table
 *   entry whose bucket lies inside one segment names that child (leaf, node
 *   or nothing) directly: table, then leaf.
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
  leafFirstRule,
  leafSearch,
  leafSummary,
  scanLeaf,
} from './leaf-pool.js';
import { matches, remoteIn } from './match.js';
import {
  addNode,
  KIND_ADDR,
  KIND_LOCAL_PORT,
  KIND_REMOTE_PORT,
  nodeAny,
  nodeKind,
  nodeMin,
  nodeSegmentRef,
  nodeSide,
} from './node-pool.js';
import { PROTO_ICMP, PROTO_OTHER, PROTO_TCP, PROTO_UDP } from './protocol-bits.js';
import type { ConnectionFacts, PortRange } from './rule.js';
import { type RangeItem, segment, segmentNum } from './segments.js';
import { type V6Segments, v6SegmentAt, v6Segments } from './v6-segments.js';

/**
 * A child as an int: -1 nothing, <= -2 the leaf at offset -2 - ref, >= 0 the node at that offset
 * of the pool (node-pool.ts).
 */
type Ref = number;

const NOTHING: Ref = -1;

function leafRef(offset: number): Ref {
  return -2 - offset;
}

/** Below a few rules a tree level costs more (pointer chasing, cache misses) than checking the rules in full. */
const SMALL = 6;

/**
 * An application with at most this many rules gets one leaf with all of them, named by the
 * application dictionary; one with more gets a subtree per direction and protocol.
 */
const APP_LEAF_MAX = 8;

interface AppRoot {
  readonly any: Ref;
  /** By application tree id (from the application's key, see AppKeyTable). */
  readonly byTree: Int32Array | null;
}

/** Opaque index built by compilePolicy; searched by findFirstMatchIndexed. */
export interface RuleIndex {
  /** [direction (incoming 0, outgoing 1) * 4 + protocol (tcp 0, udp 1, icmp 2, other 3)] */
  readonly buckets: readonly (AppRoot | null)[];
  readonly rules: readonly CompiledRule[];
  /** The leaves and the nodes (leaf-pool.ts, node-pool.ts). */
  readonly pool: Int32Array;
  /** The IPv6 ranges and host names of address nodes, by the node's side number (node-pool.ts). */
  readonly v6: readonly (V6Segments<number> | null)[];
  readonly names: readonly (IndexNames | null)[];
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
  const x = new IndexBuilder();
  const b = x.b;
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
      buckets.push(subset.length === 0 ? null : x.app(subset, trees));
    }
  }
  const sideGuards = side.map((l) => (l === null ? null : listsGuardOf(l.map((r) => r.remote))));
  return {
    buckets,
    rules,
    pool: b.finish(),
    v6: x.v6,
    names: x.names,
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

function mapValues<K, A, B>(m: Map<K, A>, f: (a: A) => B): Map<K, B> {
  const out = new Map<K, B>();
  for (const [k, v] of m) out.set(k, f(v));
  return out;
}

/** The pool being built, and the IPv6 ranges and names of its address nodes. */
class IndexBuilder {
  readonly b = new LeafPoolBuilder();
  readonly v6: (V6Segments<number> | null)[] = [];
  readonly names: (IndexNames | null)[] = [];

  leaf(rules: readonly CompiledRule[]): Ref {
    return rules.length === 0 ? NOTHING : leafRef(this.b.addLeaf(rules));
  }

  app(rules: readonly CompiledRule[], trees: number): AppRoot {
    const any: CompiledRule[] = [];
    const inTrees = new Map<number, CompiledRule[]>();
    for (const r of rules) {
      if (r.application === null) any.push(r);
      else {
        const key = this.b.appKeyOf(r.application);
        // Applications with a leaf of their own (key >= 0) are found through the dictionary alone.
        if (key <= -3) pushUnique(inTrees, -3 - key, r);
      }
    }
    let byTree: Int32Array | null = null;
    if (inTrees.size > 0) {
      byTree = new Int32Array(trees).fill(NOTHING);
      for (const [tree, list] of inTrees) byTree[tree] = this.remotePort(list);
    }
    return { any: any.length === 0 ? NOTHING : this.remotePort(any), byTree };
  }

  remotePort(rules: readonly CompiledRule[]): Ref {
    return this.b.shared('remote', rules, () =>
      rules.length <= SMALL
        ? this.leaf(rules)
        : this.port(
            KIND_REMOTE_PORT,
            rules,
            (r) => r.remotePorts,
            (l) => this.localPort(l),
          ),
    );
  }

  localPort(rules: readonly CompiledRule[]): Ref {
    return this.b.shared('local', rules, () =>
      rules.length <= SMALL
        ? this.leaf(rules)
        : this.port(
            KIND_LOCAL_PORT,
            rules,
            (r) => r.localPorts,
            (l) => this.addrOrLeaf(l),
          ),
    );
  }

  addrOrLeaf(rules: readonly CompiledRule[]): Ref {
    return rules.length <= SMALL ? this.leaf(rules) : this.b.shared('addr', rules, () => this.addr(rules));
  }

  /** A port level; when no rule names a port at this level, the level is left out and its `any` branch returned. */
  port(
    kind: number,
    rules: readonly CompiledRule[],
    portsOf: (r: CompiledRule) => readonly PortRange[] | null,
    buildChild: (rules: CompiledRule[]) => Ref,
  ): Ref {
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
    const anyChild = any.length === 0 ? NOTHING : buildChild(any);
    const s = segmentNum(ranges, 16, buildChild);
    if (s === null) return anyChild;
    return addNode(this.b, kind, rules[0]!.index, anyChild, s, -1);
  }

  addr(rules: readonly CompiledRule[]): Ref {
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
    const anyLeaf = this.leaf(any);
    if (any.length === rules.length) return anyLeaf;
    // A segment's or a name's rules all have the connection's remote among theirs: their leaves'
    // records leave the remote out (LeafPoolBuilder.addLeaf).
    const b = this.b;
    const matched = (l: CompiledRule[]) => b.addLeaf(l, true);
    const s = segmentNum(v4, 32, (l) => leafRef(matched(l)));
    const v6Ranges = v6Segments(
      segment(
        v6,
        (k) => k + 1n,
        (l) => (l.length === 0 ? null : matched(l)),
      ),
    );
    const names =
      hosts.size + suffixes.size === 0
        ? null
        : new IndexNames(mapValues(hosts, matched), mapValues(suffixes, matched));
    let side = -1;
    if (v6Ranges !== null || names !== null) {
      side = this.v6.length;
      this.v6.push(v6Ranges);
      this.names.push(names);
    }
    return addNode(b, KIND_ADDR, rules[0]!.index, anyLeaf, s, side);
  }
}

// ---- lookup ----

function scan(s: LeafSearch, leaf: number | null | undefined, best: number): number {
  return leaf == null ? best : scanLeaf(s, leaf, best);
}

function search(index: RuleIndex, ref: Ref, s: LeafSearch, best: number): number {
  if (ref === NOTHING) return best;
  if (ref <= -2) return scanLeaf(s, -2 - ref, best);
  const pool = s.pool;
  if (nodeMin(pool, ref) >= best) return best;
  best = search(index, nodeAny(pool, ref), s, best);
  const f = s.f;
  const kind = nodeKind(pool, ref);
  if (kind === KIND_ADDR) {
    const addr = f.remoteAddress;
    const side = nodeSide(pool, ref);
    if (addr !== null) {
      if (addr.version === 4) {
        best = search(index, nodeSegmentRef(pool, ref, addr.value), s, best);
      } else if (side >= 0) {
        const v6 = index.v6[side];
        if (v6 != null) best = scan(s, v6SegmentAt(v6, addr.value), best);
      }
    }
    const names = f.remoteHosts;
    const table = side >= 0 ? index.names[side] : null;
    if (table != null) for (let i = 0; i < names.length; i++) best = table.search(s, names[i]!, best);
    return best;
  }
  const port = kind === KIND_REMOTE_PORT ? f.remotePort : f.localPort;
  if (port !== null) best = search(index, nodeSegmentRef(pool, ref, port), s, best);
  return best;
}

const NONE = 0x7fffffff;

/**
 * The connection's application key (AppKeyTable) into `s.appKey`, and the first rule position its own
 * leaf could match (NONE: none can, or it has no leaf of its own): by its number when the engine
 * gave one, from what the index remembers beside the number (the leaf's summary and first rule, in
 * one line of a small array that stays in the cache, so that the leaf itself, cold at 100,000 rules,
 * is read only when it may hold the answer); else by its path.
 */
function appFirstOf(index: RuleIndex, s: LeafSearch, f: ConnectionFacts): number {
  const path = f.application;
  if (path === null) return NONE;
  const id = f.applicationId ?? NO_APPLICATION_ID;
  const keys = index.appKeysById;
  const at = keys.at(id, path);
  if (at !== NOT_REMEMBERED) {
    const entries = keys.entries;
    const key = entries[at]!;
    s.appKey = key;
    return key >= 0 && (entries[at + 1]! & s.portBit) !== 0 ? entries[at + 2]! : NONE;
  }
  const key = index.appKeys[path] ?? -1;
  s.appKey = key;
  if (key < 0) {
    keys.remember(id, path, key, 0, NONE);
    return NONE;
  }
  keys.remember(id, path, key, leafSummary(index.pool, key), leafFirstRule(index.pool, key));
  return leafFirst(s, key);
}

/** Position of the first active rule matching the connection, or -1. Same answer as the linear search, faster. */
export function findFirstMatchIndexed(index: RuleIndex, f: ConnectionFacts): number {
  const protoSlot = f.protocol === 'tcp' ? 0 : f.protocol === 'udp' ? 1 : f.protocol === 'icmp' ? 2 : 3;
  const bucket = (f.direction === 'incoming' ? 0 : 4) + protoSlot;
  const root = index.buckets[bucket];
  const s = leafSearch(index.pool, index.rules, -1, f);
  const appFirst = appFirstOf(index, s, f);
  const key = s.appKey;
  let best = root == null ? NONE : search(index, root.any, s, NONE);
  // An application's own leaf holds its rules of every direction and protocol (the records check
  // those), so it is scanned whatever the bucket holds.
  if (appFirst < best) best = scanLeaf(s, key, best);
  else if (key <= -3 && root != null && root.byTree !== null)
    best = search(index, root.byTree[-3 - key]!, s, best);
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
