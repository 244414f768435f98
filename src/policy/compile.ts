/**
 * Compiles a policy once, on load or reload, into rules that are cheap to
 * match: conditions resolved against the settings, groups and localhost
 * expanded into address ranges, expiry as a number, protocol as a bit mask.
 */
import type { IpAddress } from '../ip/index.js';
import { defaultSettings } from '../settings/parse.js';
import { type Settings, settingValue } from '../settings/schema.js';
import { AddressListTable } from './address-lists.js';
import { DomainListTable, type HostLists } from './domain-lists.js';
import { compileGlob, type Glob } from './glob.js';
import { emptyList, type ListContent, mergeRanges, type NameTable, nameInList } from './list-format.js';
import { PROTOCOL_MASK } from './protocol-bits.js';
import { RANGE_SET_MIN, V4RangeSet, V6RangeSet } from './range-set.js';
import type { AddressSpec, DefaultAction, InternalRule, Mode, Policy, PortRange, Rule } from './rule.js';
import { buildRuleIndex, type RuleIndex } from './rule-index.js';

/** A set of remote addresses, ready to test: merged sorted ranges per family, exact names and `*.` suffixes. */
export interface AddressSet {
  /** Sorted, non-overlapping inclusive ranges as [first0, last0, first1, last1, ...]. */
  readonly v4: readonly number[];
  readonly v6: readonly bigint[];
  readonly hosts: ReadonlySet<string>;
  /** Suffixes with their leading dot, e.g. ".example.com" for "*.example.com". */
  readonly suffixes: readonly string[];
  /** The names of the lists (`list:name`) the set holds: their addresses are in v4 and v6 above. */
  readonly lists: readonly string[];
  /** The lists with names, matched against the remote's names (exactly, or with subdomains). */
  readonly domainLists: readonly DomainList[];
  /** The v4 ranges as a one-load lookup, when they are many (range-set.ts); null: few, searched in v4. */
  readonly v4Set: V4RangeSet | null;
  /** The same for v6 (a search over packed numbers rather than BigInt objects). */
  readonly v6Set: V6RangeSet | null;
  /** The bits of all its domain lists in `domainTable`; 0 when one of them has none (then looked up by name). */
  readonly domainMask: number;
  readonly domainTable: DomainListTable | null;
  /**
   * With v4Set or v6Set: the set's bit in `addressTable` (address-lists.ts), which the engine
   * remembers per remote address; 0 and null when it has none (then the ranges are searched).
   */
  readonly addressBit: number;
  readonly addressTable: AddressListTable | null;
}

/** A list's names as a rule's remote set holds them. */
export interface DomainList {
  readonly name: string;
  readonly names: NameTable;
  readonly subdomains: boolean;
  /** The list's bit in the policy's table (domain-lists.ts); 0: none, looked up by name. */
  readonly bit: number;
  readonly table: DomainListTable | null;
}

/** A rule's interfaces, ready to test: exact names and `prefix*` globs as prefixes. */
export interface InterfaceSet {
  readonly names: ReadonlySet<string>;
  readonly prefixes: readonly string[];
}

/** True when the interface is one of the set's names or starts with one of its prefixes. */
export function interfaceInSet(set: InterfaceSet, name: string | null | undefined): boolean {
  if (name == null) return false;
  if (set.names.has(name)) return true;
  for (const p of set.prefixes) if (name.startsWith(p)) return true;
  return false;
}

function compileInterfaces(list: readonly string[] | undefined): InterfaceSet | null {
  if (list === undefined) return null;
  return {
    names: new Set(list.filter((n) => !n.endsWith('*'))),
    prefixes: list.filter((n) => n.endsWith('*')).map((n) => n.slice(0, -1)),
  };
}

/** One rule in evaluation order, with everything a match needs precomputed. */
export interface CompiledRule {
  readonly index: number;
  readonly source: 'internal' | 'user';
  readonly rule: Rule | InternalRule;
  /** Enabled and its condition holds under the settings. Inactive rules never match. */
  readonly active: boolean;
  readonly inactiveBecause: string | undefined;
  readonly incoming: boolean;
  readonly outgoing: boolean;
  readonly protocols: number;
  readonly application: string | null;
  /** The pinned SHA-256 of the application's executable; null when the rule pins none. */
  readonly sha256: string | null;
  readonly uid: number | null;
  readonly userName: string | null;
  readonly localPorts: readonly PortRange[] | null;
  readonly remotePorts: readonly PortRange[] | null;
  /** The same port lists flattened as [from0, to0, from1, to1, ...] for the hot path. */
  readonly localPortSpans: Int32Array | null;
  readonly remotePortSpans: Int32Array | null;
  readonly remote: AddressSet | null;
  /** Interface names the rule wants (exact) and prefixes (from `wg*`); null: any interface. */
  readonly interfaces: InterfaceSet | null;
  /** Milliseconds since the epoch; Infinity when the rule does not expire. */
  readonly expiresAt: number;
  /** expiresAt is finite; tested first so permanent rules never touch the (boxed) number. */
  readonly expires: boolean;
  /** Program context (rule.parent, ancestor, arguments); null when the rule does not ask. */
  readonly parent: string | null;
  readonly ancestor: string | null;
  readonly argumentsGlob: Glob | null;
}

/** Which program-context facts some active rule uses: the engine gathers only those. */
export interface ContextNeeds {
  readonly parent: boolean;
  readonly ancestors: boolean;
  readonly arguments: boolean;
}

/** A policy ready for evaluation. Immutable; compile again to change it. */
export interface CompiledPolicy {
  readonly mode: Mode;
  readonly defaults: { readonly incoming: DefaultAction; readonly outgoing: DefaultAction };
  /** Internal rules first, then user rules, in evaluation order. */
  readonly rules: readonly CompiledRule[];
  readonly internalCount: number;
  readonly index: RuleIndex;
  readonly needs: ContextNeeds;
  /**
   * The policy's domain lists, numbered: the engine gives a connection the bits of its names
   * (ConnectionFacts.remoteHostLists, domain-lists.ts); null when no rule names a domain list.
   */
  readonly domainLists: DomainListTable | null;
  /**
   * The policy's large address sets (a list's networks), numbered: the engine gives a connection
   * its remote address's bits (ConnectionFacts.remoteAddressLists, address-lists.ts); null when
   * no rule has one.
   */
  readonly addressLists: AddressListTable | null;
}

/** What compilePolicy needs besides the policy. */
export interface CompileOptions {
  /** Settings that rule conditions test; defaults when absent. */
  readonly settings?: Settings;
  /** Internal rules (from internalRules()), evaluated before the user's rules. */
  readonly internalRules?: readonly InternalRule[];
  /** The content of the policy's lists as loaded (src/engine/lists.ts); a list not given is empty. */
  readonly lists?: ReadonlyMap<string, ListContent>;
}

/** Compiles a validated policy. Pure: the same input always gives the same result. */
export function compilePolicy(policy: Policy, options: CompileOptions = {}): CompiledPolicy {
  const settings = options.settings ?? defaultSettings();
  const rules: CompiledRule[] = [];
  const lists = options.lists ?? new Map<string, ListContent>();
  const table = new DomainListTable();
  const addresses = new AddressListTable();
  const texts = new Map<string, string>();
  for (const r of options.internalRules ?? [])
    rules.push(compileRule(r, rules.length, 'internal', policy, settings, lists, table, addresses, texts));
  const internalCount = rules.length;
  for (const r of policy.rules)
    rules.push(compileRule(r, rules.length, 'user', policy, settings, lists, table, addresses, texts));
  const needs: ContextNeeds = {
    parent: rules.some((r) => r.active && r.parent !== null),
    ancestors: rules.some((r) => r.active && r.ancestor !== null),
    arguments: rules.some((r) => r.active && r.argumentsGlob !== null),
  };
  return {
    mode: policy.mode,
    defaults: policy.defaults,
    rules,
    internalCount,
    index: buildRuleIndex(rules),
    needs,
    domainLists: table.size > 0 ? table : null,
    addressLists: addresses.size > 0 ? addresses : null,
  };
}

function compileRule(
  rule: Rule,
  index: number,
  source: 'internal' | 'user',
  policy: Policy,
  settings: Settings,
  lists: ReadonlyMap<string, ListContent>,
  table: DomainListTable,
  addresses: AddressListTable,
  texts: Map<string, string>,
): CompiledRule {
  let inactiveBecause: string | undefined;
  if (!rule.enabled) inactiveBecause = 'the rule is disabled';
  else if (rule.condition !== undefined) {
    const actual = settingValue(settings, rule.condition.setting);
    if (actual !== rule.condition.equals) {
      inactiveBecause = `condition ${rule.condition.setting} = ${JSON.stringify(rule.condition.equals)} does not hold (it is ${JSON.stringify(actual)})`;
    }
  }
  const user = rule.user;
  return {
    index,
    source,
    rule,
    active: inactiveBecause === undefined,
    inactiveBecause,
    incoming: rule.direction !== 'outgoing',
    outgoing: rule.direction !== 'incoming',
    protocols: PROTOCOL_MASK[rule.protocol],
    application: rule.application === 'any' ? null : sameText(texts, rule.application),
    sha256: rule.sha256 ?? null,
    uid: typeof user === 'number' ? user : null,
    userName: typeof user === 'string' ? user : null,
    localPorts: rule.localPorts ?? null,
    remotePorts: rule.remotePorts ?? null,
    localPortSpans: spans(rule.localPorts),
    remotePortSpans: spans(rule.remotePorts),
    remote:
      rule.remote === undefined
        ? null
        : compileAddressSet(rule.remote, policy.addressGroups, lists, policy.lists, table, addresses),
    interfaces: compileInterfaces(rule.interface),
    expiresAt: rule.expires === undefined ? Number.POSITIVE_INFINITY : Date.parse(rule.expires),
    expires: rule.expires !== undefined,
    parent: rule.parent === undefined ? null : internalized(rule.parent),
    ancestor: rule.ancestor === undefined ? null : internalized(rule.ancestor),
    argumentsGlob: rule.arguments === undefined ? null : compiledGlob(rule.arguments),
  };
}

/**
 * One string object per text in a compiled policy: the parser gives every rule its own slice of
 * the policy's source, and the rule index's maps by application (rule-index.ts) then compared the
 * characters of cold slices (at 100,000 rules, a fifth of the index's build) where they now
 * compare pointers.
 */
function sameText(texts: Map<string, string>, s: string): string {
  const known = texts.get(s);
  if (known !== undefined) return known;
  texts.set(s, s);
  return s;
}

/**
 * The same text as V8's internalized (flat, unique) string: a path sliced out of the YAML source
 * compares several times slower on every decision (measured: ~150 ns against ~25 ns a rule).
 */
function internalized(s: string): string {
  return Object.keys({ [s]: 0 })[0]!;
}

function compiledGlob(source: string): Glob {
  const r = compileGlob(source);
  if (!r.ok) throw new Error(`arguments glob ${JSON.stringify(source)} passed validation but: ${r.message}`);
  return r.glob;
}

function spans(ports: readonly PortRange[] | undefined): Int32Array | null {
  if (ports === undefined) return null;
  const out = new Int32Array(ports.length * 2);
  ports.forEach((p, i) => {
    out[i * 2] = p.from;
    out[i * 2 + 1] = p.to;
  });
  return out;
}

const LOCALHOST_V4: [number, number] = [0x7f000000, 0x7fffffff];
const LOCALHOST_V6: [bigint, bigint] = [1n, 1n];

/** Expands address entries (groups, localhost) into an AddressSet. */
export function compileAddressSet(
  specs: readonly AddressSpec[],
  groups: Policy['addressGroups'],
  lists: ReadonlyMap<string, ListContent> = new Map(),
  sources: Policy['lists'] = {},
  table: DomainListTable | null = null,
  addresses: AddressListTable | null = null,
): AddressSet {
  const v4: [number, number][] = [];
  const v6: [bigint, bigint][] = [];
  const hosts = new Set<string>();
  const suffixes: string[] = [];
  const listNames: string[] = [];
  const domainLists: DomainList[] = [];
  // A rule naming one list alone (the usual case) shares the list's merged ranges and their lookup.
  const only = specs.length === 1 && specs[0]!.kind === 'list' ? lists.get(specs[0]!.name) : undefined;
  const add = (spec: AddressSpec): void => {
    switch (spec.kind) {
      case 'localhost':
        v4.push(LOCALHOST_V4);
        v6.push(LOCALHOST_V6);
        break;
      case 'ip':
        if (spec.range.version === 4) v4.push([spec.range.first, spec.range.last]);
        else v6.push([spec.range.first, spec.range.last]);
        break;
      case 'host':
        if (spec.name.startsWith('*.')) suffixes.push(spec.name.slice(1));
        else hosts.add(spec.name);
        break;
      case 'group':
        for (const member of groups[spec.name] ?? []) add(member);
        break;
      case 'list': {
        if (listNames.includes(spec.name)) break;
        listNames.push(spec.name);
        const format = sources?.[spec.name]?.format ?? 'ips';
        const content = lists.get(spec.name) ?? emptyList(format);
        if (content !== only) {
          for (let i = 0; i < content.v4.length; i += 2) v4.push([content.v4[i]!, content.v4[i + 1]!]);
          for (let i = 0; i < content.v6.length; i += 2) v6.push([content.v6[i]!, content.v6[i + 1]!]);
        }
        if (content.names.size > 0)
          domainLists.push({
            name: spec.name,
            names: content.names,
            subdomains: content.subdomains,
            bit: table === null ? 0 : table.bitOf(spec.name, content.names, content.subdomains),
            table,
          });
        break;
      }
    }
  };
  for (const s of specs) add(s);
  const merged4 = only !== undefined ? only.v4 : v4.length === 0 ? NO_V4 : mergeRanges(v4);
  let domainMask = 0;
  for (const l of domainLists) domainMask |= l.bit;
  if (domainLists.some((l) => l.bit === 0)) domainMask = 0;
  const merged6 = only !== undefined ? only.v6 : v6.length === 0 ? NO_V6 : mergeRanges(v6);
  const v4Set = rangeSetOf(merged4, v4Sets, (r) => new V4RangeSet(r));
  const v6Set = rangeSetOf(merged6, v6Sets, (r) => new V6RangeSet(r));
  const ranges = { v4: merged4, v6: merged6, v4Set, v6Set };
  // A large set gets a bit the engine remembers per remote address (address-lists.ts).
  const addressBit =
    addresses !== null && (v4Set !== null || v6Set !== null)
      ? addresses.bitOf(merged4, merged6, (a) => addressInSet(ranges, a))
      : 0;
  // Empty parts are shared (most rules name one kind of address): 100,000 rules made as many
  // empty arrays and sets, a good part of compiling's garbage collection.
  return {
    v4: merged4,
    v6: merged6,
    hosts: hosts.size === 0 ? NO_HOSTS : hosts,
    suffixes: suffixes.length === 0 ? NO_TEXT : [...new Set(suffixes)],
    lists: listNames.length === 0 ? NO_TEXT : listNames,
    domainLists: domainLists.length === 0 ? NO_DOMAIN_LISTS : domainLists,
    v4Set,
    v6Set,
    domainMask,
    domainTable: domainMask === 0 ? null : table,
    addressBit,
    addressTable: addressBit === 0 ? null : addresses,
  };
}

// Not frozen: a frozen array's elements kind would make the hot path's loads polymorphic.
const NO_V4: readonly number[] = [];
const NO_V6: readonly bigint[] = [];
const NO_TEXT: readonly string[] = [];
const NO_DOMAIN_LISTS: readonly DomainList[] = [];
const NO_HOSTS: ReadonlySet<string> = new Set();

/** Lookups of ranges shared by several rules (a list's), made once per list content. */
const v4Sets = new WeakMap<readonly number[], V4RangeSet>();
const v6Sets = new WeakMap<readonly bigint[], V6RangeSet>();

function rangeSetOf<K, S>(
  ranges: readonly K[],
  known: WeakMap<readonly K[], S>,
  make: (r: readonly K[]) => S,
): S | null {
  if (ranges.length / 2 < RANGE_SET_MIN) return null;
  let set = known.get(ranges);
  if (set === undefined) {
    set = make(ranges);
    known.set(ranges, set);
  }
  return set;
}

/** True when the address is in the set's ranges (binary search). Host names are tested separately. */
export function addressInSet(
  set: Pick<AddressSet, 'v4' | 'v6' | 'v4Set' | 'v6Set'>,
  addr: IpAddress,
): boolean {
  if (addr.version === 4) {
    if (set.v4Set !== null) return set.v4Set.has(addr.value);
  } else if (set.v6Set !== null) return set.v6Set.has(addr.value);
  const ranges: readonly (number | bigint)[] = addr.version === 4 ? set.v4 : set.v6;
  let lo = 0;
  let hi = ranges.length / 2 - 1;
  const v = addr.value;
  while (lo <= hi) {
    const mid = (lo + hi) >> 1;
    if (v < ranges[mid * 2]!) hi = mid - 1;
    else if (v > ranges[mid * 2 + 1]!) lo = mid + 1;
    else return true;
  }
  return false;
}

/**
 * True when one of the names is in the set (exactly, or below a `*.` suffix, or in one of its
 * lists). `lists`: the names' bits in the policy's domain lists (domain-lists.ts), used when they
 * are for the table of the set's lists; otherwise the names are looked up in the lists.
 */
export function hostInSet(set: AddressSet, names: readonly string[], lists?: HostLists): boolean {
  // Lists only, all with bits for the connection's table (the usual domain-list rule): one test.
  if (
    lists !== undefined &&
    lists.table === set.domainTable &&
    set.hosts.size === 0 &&
    set.suffixes.length === 0
  )
    return (lists.bits & set.domainMask) !== 0;
  if (set.hosts.size > 0 || set.suffixes.length > 0) {
    for (const name of names) {
      if (set.hosts.has(name)) return true;
      for (const suffix of set.suffixes) if (name.endsWith(suffix)) return true;
    }
  }
  const domainLists = set.domainLists;
  for (let i = 0; i < domainLists.length; i++) {
    const list = domainLists[i]!;
    if (lists !== undefined && list.bit !== 0 && lists.table === list.table) {
      if ((lists.bits & list.bit) !== 0) return true;
    } else if (nameInList(list, names)) return true;
  }
  return false;
}
