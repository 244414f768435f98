/**
 * The match side of the ruleset compiler: a rule's kernel-visible conditions
 * as elements of concatenated nft sets, grouped by shape (which fields a
 * match tests) and split into layers so no set holds two overlapping interval
 * elements (the kernel rejects those: "conflicting intervals" / "File exists").
 * Pure: no I/O.
 */
import { formatRange } from '../ip/index.js';
import type { CompiledRule } from '../policy/compile.js';
import { PROTO_ICMP, PROTO_OTHER, PROTO_TCP, PROTO_UDP } from '../policy/protocol-bits.js';

/** The fields a match can test, in the order they appear in a concatenation. */
export type Field = 'proto' | 'addr4' | 'addr6' | 'rport' | 'lport' | 'uid';
const FIELD_ORDER: readonly Field[] = ['proto', 'addr4', 'addr6', 'rport', 'lport', 'uid'];

/** nft set type of each field. */
const FIELD_TYPE: Record<Field, string> = {
  proto: 'inet_proto',
  addr4: 'ipv4_addr',
  addr6: 'ipv6_addr',
  rport: 'inet_service',
  lport: 'inet_service',
  uid: 'uid',
};

/** IANA numbers of the protocols a rule can name, so they compare as intervals like the other fields. */
export const PROTO_NUMBER: Record<string, number> = { icmp: 1, tcp: 6, udp: 17, 'ipv6-icmp': 58 };
const PROTO_NAME: Record<number, string> = { 1: 'icmp', 6: 'tcp', 17: 'udp', 58: 'ipv6-icmp' };

/** One element: per field an inclusive interval [lo, hi]. Addresses of IPv6 are bigints. */
export interface Element {
  readonly fields: readonly Field[];
  readonly lo: readonly (number | bigint)[];
  readonly hi: readonly (number | bigint)[];
  /**
   * The identity of the rule the element stands for (ruleIdentity), in runs the kernel decides: the
   * engine maps the element's counter back to its rule by the element's key (ruleset-counters.ts).
   */
  readonly rule?: string;
}

/** The packet expression of each field in a chain: outgoing sees the remote as destination, incoming as source. */
export function fieldExpression(field: Field, chain: 'output' | 'input'): string {
  const out = chain === 'output';
  switch (field) {
    case 'proto':
      return 'meta l4proto';
    case 'addr4':
      return out ? 'ip daddr' : 'ip saddr';
    case 'addr6':
      return out ? 'ip6 daddr' : 'ip6 saddr';
    case 'rport':
      return out ? 'th dport' : 'th sport';
    case 'lport':
      return out ? 'th sport' : 'th dport';
    case 'uid':
      return 'meta skuid';
  }
}

function formatValue(field: Field, lo: number | bigint, hi: number | bigint): string {
  switch (field) {
    case 'proto':
      return PROTO_NAME[Number(lo)] ?? String(lo);
    case 'addr4':
      return formatRange({ version: 4, first: lo as number, last: hi as number });
    case 'addr6':
      return formatRange({ version: 6, first: lo as bigint, last: hi as bigint });
    default:
      return lo === hi ? String(lo) : `${lo}-${hi}`;
  }
}

const ALL_PROTOCOLS = PROTO_TCP | PROTO_UDP | PROTO_ICMP | PROTO_OTHER;

/**
 * The l4 protocol numbers a rule matches, or null when it matches every protocol (no test needed).
 * Ports exist only for TCP and UDP, so a rule with ports is narrowed to those.
 */
function protocolValues(mask: number, hasPorts: boolean, family: 4 | 6 | null): number[] | null {
  if (!hasPorts && (mask & ALL_PROTOCOLS) === ALL_PROTOCOLS) return null;
  const out: number[] = [];
  if (mask & PROTO_TCP) out.push(PROTO_NUMBER.tcp!);
  if (mask & PROTO_UDP) out.push(PROTO_NUMBER.udp!);
  if (!hasPorts && mask & PROTO_ICMP) {
    if (family !== 6) out.push(PROTO_NUMBER.icmp!);
    if (family !== 4) out.push(PROTO_NUMBER['ipv6-icmp']!);
  }
  return out.sort((a, b) => a - b);
}

/** protocolValues as [p, p] pairs, computed once per combination (a rule's elements share them). */
const protocolPairCache = new Map<number, readonly (readonly [number, number])[] | null>();

export function protocolPairs(
  mask: number,
  hasPorts: boolean,
  family: 4 | 6 | null,
): readonly (readonly [number, number])[] | null {
  const key = mask * 8 + (hasPorts ? 4 : 0) + (family === null ? 0 : family === 4 ? 1 : 2);
  let pairs = protocolPairCache.get(key);
  if (pairs === undefined) {
    pairs = protocolValues(mask, hasPorts, family)?.map((p) => [p, p] as const) ?? null;
    protocolPairCache.set(key, pairs);
  }
  return pairs;
}

/** An element written for a set declaration: `tcp . 10.0.0.0/8 . 80-90`. */
export function formatElement(e: Element): string {
  let text = formatValue(e.fields[0]!, e.lo[0]!, e.hi[0]!);
  for (let i = 1; i < e.fields.length; i++) text += ` . ${formatValue(e.fields[i]!, e.lo[i]!, e.hi[i]!)}`;
  return text;
}

/** An element written as separate matches in a rule: `meta l4proto tcp ip daddr 10.0.0.1 th dport 80`. */
export function inlineMatch(e: Element, chain: 'output' | 'input'): string {
  return e.fields
    .map((f, i) => `${fieldExpression(f, chain)} ${formatValue(f, e.lo[i]!, e.hi[i]!)}`)
    .join(' ');
}

const shapes = new Map<string, { fields: Field[]; shape: string }>();

/**
 * The shape of dimensions in concatenation order: its field list (one array shared by every rule of
 * that shape, not one per rule) and its key, e.g. "proto,addr4,rport".
 */
export function shapeOf(dims: readonly { field: Field }[]): { fields: Field[]; shape: string } {
  let key = '';
  for (const d of dims) key += key === '' ? d.field : `,${d.field}`;
  let found = shapes.get(key);
  if (found === undefined) {
    found = { fields: dims.map((d) => d.field), shape: key };
    shapes.set(key, found);
  }
  return found;
}

/** Sorts fields into concatenation order. */
export function orderFields(fields: readonly Field[]): Field[] {
  return FIELD_ORDER.filter((f) => fields.includes(f));
}

/** The set declaration's type line for a shape. */
export function setType(fields: readonly Field[]): string {
  return fields.map((f) => FIELD_TYPE[f]).join(' . ');
}

/** The concatenated packet expression of a shape, to look up in its set. */
export function concatExpression(fields: readonly Field[], chain: 'output' | 'input'): string {
  return fields.map((f) => fieldExpression(f, chain)).join(' . ');
}

function overlaps(a: Element, b: Element): boolean {
  for (let i = 0; i < a.lo.length; i++) if (a.lo[i]! > b.hi[i]! || b.lo[i]! > a.hi[i]!) return false;
  return true;
}

function isPoint(e: Element): boolean {
  for (let i = 0; i < e.lo.length; i++) if (e.lo[i] !== e.hi[i]) return false;
  return true;
}

function pointKey(e: Element): string {
  return e.lo.join('|');
}

/**
 * The elements of one shape within one run. Points (every field a single value) all go into one
 * layer, a hash set in the kernel: exact duplicates are dropped and points never overlap, and a hash
 * set loads and changes faster than an interval set. Ranges go into interval layers, split so no
 * layer holds two overlapping ranges (the kernel rejects those: "conflicting intervals"). Within a
 * run every element has the same verdict, so a packet that matches any layer gets that verdict: the
 * layers are checked one after the other, in any order.
 */
export class ShapeLayers {
  readonly points = new Map<string, Element>();
  readonly ranges: Element[][] = [];

  add(e: Element): void {
    if (isPoint(e)) {
      const key = pointKey(e);
      if (!this.points.has(key)) this.points.set(key, e);
      return;
    }
    for (const layer of this.ranges) {
      if (!layer.some((r) => overlaps(r, e))) {
        layer.push(e);
        return;
      }
    }
    this.ranges.push([e]);
  }

  /**
   * Adds the elements of one rule, which never overlap one another (the cross product of merged
   * addresses and of port lists the parser keeps apart): each goes to the first layer where it
   * overlaps nothing, as `add` places it, but a layer is searched through an index over the
   * widest field instead of element by element, so a list of 100,000 networks is placed in
   * O(n log n) rather than compared pair by pair (minutes of compiling).
   */
  addDisjoint(elements: readonly Element[]): void {
    let rest: Element[] = [];
    for (const e of elements) {
      if (isPoint(e)) this.add(e);
      else rest.push(e);
    }
    if (rest.length < 64) {
      for (const e of rest) this.add(e);
      return;
    }
    for (const layer of this.ranges) {
      if (rest.length === 0) return;
      const index = new LayerIndex(layer, widestField(rest[0]!));
      const left: Element[] = [];
      for (const e of rest) (index.overlapsAny(e) ? left : layer).push(e);
      rest = left;
    }
    if (rest.length > 0) this.ranges.push(rest);
  }

  /** The layers: the points (when there are any) first, then each range layer; `interval` says which kind. */
  elements(): Layer[] {
    const out: Layer[] =
      this.points.size > 0 ? [{ interval: false, elements: [...this.points.values()] }] : [];
    for (const layer of this.ranges) out.push({ interval: true, elements: layer });
    return out;
  }
}

/** One set's worth of a shape: points (a hash set) or ranges (an interval set). */
export interface Layer {
  readonly interval: boolean;
  readonly elements: Element[];
}

/** The field of an element with the widest range (the address, for a list): the index's key. */
function widestField(e: Element): number {
  let best = 0;
  let width = -1;
  for (let i = 0; i < e.lo.length; i++) {
    const w = Number(e.hi[i]!) - Number(e.lo[i]!);
    if (w > width) {
      width = w;
      best = i;
    }
  }
  // A field that is a single value in the sample says nothing; prefer an address field.
  const addr = e.fields.findIndex((f) => f === 'addr4' || f === 'addr6');
  return addr >= 0 ? addr : best;
}

/** A layer's elements sorted by one field's low end, with the running maximum of its high end. */
class LayerIndex {
  readonly #sorted: Element[];
  readonly #maxHi: (number | bigint)[];
  readonly #d: number;

  constructor(layer: readonly Element[], d: number) {
    this.#d = d;
    this.#sorted = [...layer].sort((a, b) => (a.lo[d]! < b.lo[d]! ? -1 : a.lo[d]! > b.lo[d]! ? 1 : 0));
    this.#maxHi = [];
    let m: number | bigint | undefined;
    for (const e of this.#sorted) {
      if (m === undefined || e.hi[d]! > m) m = e.hi[d]!;
      this.#maxHi.push(m);
    }
  }

  /** Whether e overlaps an element of the layer (checked in full on those that meet it in the key field). */
  overlapsAny(e: Element): boolean {
    const d = this.#d;
    const sorted = this.#sorted;
    // The last element starting at or below e's high end; earlier ones end too early once maxHi < e.lo.
    let lo = 0;
    let hi = sorted.length - 1;
    let at = -1;
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      if (sorted[mid]!.lo[d]! <= e.hi[d]!) {
        at = mid;
        lo = mid + 1;
      } else hi = mid - 1;
    }
    for (let i = at; i >= 0 && this.#maxHi[i]! >= e.lo[d]!; i--) if (overlaps(sorted[i]!, e)) return true;
    return false;
  }
}

/** A named set of Warden's table as the compiler declares it. */
export interface SetModel {
  readonly name: string;
  /** The declaration's lines inside the braces, without the elements (`type ...`, `flags ...`). */
  readonly declaration: readonly string[];
  /** Each element as nft writes it; empty for dynamic sets (traffic fills them). */
  readonly elements: readonly string[];
}

/** A chain of Warden's table: `hook` is the base chain's `type ... hook ...` line, null for a regular chain. */
export interface ChainModel {
  readonly name: string;
  readonly hook: string | null;
  readonly rules: readonly string[];
}

/** nft identifiers Warden emits: a letter, then letters, digits and underscores (never user text). */
export const NFT_NAME = /^[a-zA-Z][a-zA-Z0-9_]{0,62}$/;

/**
 * 16 hex digits naming a set or run by what it stands for: FNV-1a over the UTF-16 code units in two
 * 32-bit lanes with different offsets (pure: this module does no I/O and imports no node: module).
 * A collision between set names is resolved by the caller; not a security boundary.
 */
export function hash(text: string): string {
  let a = 0x811c9dc5;
  let b = 0x01000193 ^ 0x5bd1e995;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    a = Math.imul(a ^ c, 0x01000193);
    b = Math.imul(b ^ c, 0x01000193) ^ (b >>> 15);
  }
  return (a >>> 0).toString(16).padStart(8, '0') + (b >>> 0).toString(16).padStart(8, '0');
}

/** The nft named counter of a rule (key: ruleIdentity): a hash of it, so a rule keeps its counter while its name stays. */
export function ruleCounterName(key: string): string {
  return `c_${hash(key)}`;
}

/** Every combination of one value range per dimension, as elements of the given fields (a rule's cross product). */
export function cross(
  dims: readonly { field: Field; values: readonly (readonly [number | bigint, number | bigint])[] }[],
  i: number,
  lo: (number | bigint)[],
  hi: (number | bigint)[],
  fields: Field[],
  rule: string | undefined,
  out: Element[],
): void {
  if (i === dims.length) {
    // A point (most elements) keeps one array for both ends.
    const low = [...lo];
    let point = true;
    for (let d = 0; d < lo.length; d++) if (lo[d] !== hi[d]) point = false;
    const high = point ? low : [...hi];
    out.push(rule === undefined ? { fields, lo: low, hi: high } : { fields, lo: low, hi: high, rule });
    return;
  }
  for (const [a, b] of dims[i]!.values) {
    lo.push(a);
    hi.push(b);
    cross(dims, i + 1, lo, hi, fields, rule, out);
    lo.pop();
    hi.pop();
  }
}

/** Elements of one shape: the fields (in concatenation order), their key, and the elements. */
export interface ElementGroup {
  readonly fields: Field[];
  readonly shape: string;
  readonly elements: Element[];
  /**
   * The one protocol of a rule that names one (`tcp`), with other fields beside it: tested in the
   * rule (`meta l4proto tcp`), not in the key, whose elements then leave it out (null: in the key,
   * or none). A key one field shorter is parsed by nft and checked by the kernel in 40% less time
   * (100,000 elements: `nft -f` 1.26 -> 0.75 s here); the shape key says it, so a set of one
   * protocol is never one of another, or of several.
   */
  readonly proto: string | null;
}

/**
 * The rule's kernel-visible conditions in this chain as set elements (the cross product of its
 * lists), one group per address family. The dimensions are pushed in concatenation order
 * (FIELD_ORDER above; the protocol first, when the key has it), so fields and shape key are computed
 * once per group.
 */
export function elementsOf(
  r: CompiledRule,
  chain: 'output' | 'input',
  remote: CompiledRule['remote'],
  rule: string | undefined,
): ElementGroup[] {
  const hasPorts = r.localPorts !== null || r.remotePorts !== null;
  const families =
    remote === null ? ANY_FAMILY : FAMILIES[(remote.v4.length > 0 ? 1 : 0) + (remote.v6.length > 0 ? 2 : 0)]!;
  const out: ElementGroup[] = [];
  for (const family of families) {
    const dims: { field: Field; values: readonly (readonly [number | bigint, number | bigint])[] }[] = [];
    const protos = protocolPairs(r.protocols, hasPorts, family);
    if (protos?.length === 0) continue;
    if (family === 4 && remote !== null) dims.push({ field: 'addr4', values: pairs(remote.v4) });
    if (family === 6 && remote !== null) dims.push({ field: 'addr6', values: pairs(remote.v6) });
    if (r.remotePorts !== null)
      dims.push({ field: 'rport', values: r.remotePorts.map((p) => [p.from, p.to]) });
    if (r.localPorts !== null) dims.push({ field: 'lport', values: r.localPorts.map((p) => [p.from, p.to]) });
    if (r.uid !== null && chain === 'output') dims.push({ field: 'uid', values: [[r.uid, r.uid]] });
    const proto =
      protos !== null && protos.length === 1 && dims.length > 0 ? PROTO_NAME[protos[0]![0]]! : null;
    if (protos !== null && proto === null) dims.unshift({ field: 'proto', values: protos });
    const { fields, shape } = shapeOf(dims);
    const elements: Element[] = [];
    cross(dims, 0, [], [], fields, rule, elements);
    out.push({ fields, shape: proto === null ? shape : `${proto}:${shape}`, elements, proto });
  }
  return out;
}

/** The address families of a rule's elements, by which families its remote has (bit 1: IPv4, bit 2: IPv6). */
const ANY_FAMILY: readonly null[] = [null];
const FAMILIES: readonly (readonly (4 | 6)[])[] = [[], [4], [6], [4, 6]];

function pairs<T>(flat: readonly T[]): [T, T][] {
  const out: [T, T][] = [];
  for (let i = 0; i < flat.length; i += 2) out.push([flat[i]!, flat[i + 1]!]);
  return out;
}
