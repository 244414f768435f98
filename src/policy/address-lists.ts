/**
 * Which of a policy's large address sets (a list's networks, 32 ranges or more: the rules beside
 * the rule index) a remote address is in, computed once per address the engine sees rather than at
 * every decision. The IP-list counterpart of domain-lists.ts: a compiled policy numbers those sets
 * in an AddressListTable (one bit each); the engine keeps one LearnedHost per remote address
 * (host-names.ts), which remembers its bits for the table it last saw. A connection then carries
 * them (ConnectionFacts.remoteAddressLists), and a rule with such a set tests one bit instead of
 * probing the set's filter, a load from memory that misses the cache on traffic to many addresses.
 * A new table (the policy or a list's content changed) makes every address compute its bits again
 * on its next connection, so a refreshed list decides the next connection; bits for another table,
 * or for another address, are never used (the set is then searched).
 */
import type { IpAddress } from '../ip/index.js';
import {
  type DomainListTable,
  type HostLists,
  hostListsOf,
  type LearnedName,
  nameStrings,
} from './domain-lists.js';
import type { ConnectionFacts } from './rule.js';

/** The membership of a connection's remote address in a table's sets: bit i set when it is in set i. */
export interface AddressLists {
  readonly table: AddressListTable;
  readonly bits: number;
}

/** Sets beyond this many in one policy have no bit and are searched at each decision. */
const MAX_BITS = 31;

/** The large address sets of one compiled policy, numbered. */
export class AddressListTable {
  readonly #tests: ((a: IpAddress) => boolean)[] = [];
  /** Bit by the set's merged ranges (v4 array, then v6 array): rules naming the same list share it. */
  readonly #byRanges = new Map<readonly number[], Map<readonly bigint[], number>>();
  /** Bits 0: the address is in none of the sets (shared: the usual answer allocates nothing). */
  readonly none: AddressLists = { table: this, bits: 0 };

  /**
   * The bit of the set with these merged ranges (the same for every rule with the same ranges);
   * `has` tests an address against them. 0 when the table has no bit left.
   */
  bitOf(v4: readonly number[], v6: readonly bigint[], has: (a: IpAddress) => boolean): number {
    let byV6 = this.#byRanges.get(v4);
    if (byV6 === undefined) {
      byV6 = new Map();
      this.#byRanges.set(v4, byV6);
    }
    const known = byV6.get(v6);
    if (known !== undefined) return known;
    const bit = this.#tests.length < MAX_BITS ? 1 << this.#tests.length : 0;
    if (bit !== 0) this.#tests.push(has);
    byV6.set(v6, bit);
    return bit;
  }

  /** Number of sets with a bit. */
  get size(): number {
    return this.#tests.length;
  }

  /** The bits of one address: every set it is in (a search per set: done once per address and table). */
  bitsOf(a: IpAddress): number {
    let bits = 0;
    for (let i = 0; i < this.#tests.length; i++) if (this.#tests[i]!(a)) bits |= 1 << i;
    return bits;
  }

  /** The AddressLists of these bits (no allocation for none, the most frequent answer). */
  withBits(bits: number): AddressLists {
    return bits === 0 ? this.none : { table: this, bits };
  }
}

/** No names (shared by every host without any: nothing allocated per address for them). */
const NO_LEARNED_NAMES: readonly LearnedName[] = Object.freeze([]);
const NO_NAMES: readonly string[] = Object.freeze([]);

/**
 * A remote address as the engine keeps it (host-names.ts: one per address, across connections and
 * policies): the address parsed once, the names the engine learned for it, and what the policy's
 * lists say of both for the last tables seen, all in fields of this one object: a connection loads
 * nothing more (the names' own bits are read when the host's names or the domain table change).
 */
export class LearnedHost {
  #names: readonly LearnedName[] = NO_LEARNED_NAMES;
  #hostNames: readonly string[] = NO_NAMES;
  /** The address's sets for the table it names (null: none computed yet). */
  #addressLists: AddressLists | null = null;
  /** Its names' domain lists for the table it names (null: none computed since the names changed). */
  #hostLists: HostLists | null = null;

  constructor(
    /** The address (null when the text the engine got is no address: nothing is remembered then). */
    readonly address: IpAddress | null,
    /** The address as the engine got it (its key), when the engine keeps it so. */
    readonly text: string | null = null,
  ) {}

  /** The names known for the address now. */
  get names(): readonly LearnedName[] {
    return this.#names;
  }

  /** The names as strings (the same array until the names change). */
  get hostNames(): readonly string[] {
    return this.#hostNames;
  }

  /** Sets the names known for the address (the engine, when they change): their bits are read again. */
  setNames(names: readonly LearnedName[]): void {
    this.#names = names.length === 0 ? NO_LEARNED_NAMES : names;
    this.#hostNames = names.length === 0 ? NO_NAMES : names.map((n) => n.name);
    this.#hostLists = null;
  }

  /** The address's bits in the table: computed on the first call for a table, then remembered. */
  bitsIn(table: AddressListTable): number {
    return this.addressListsIn(table).bits;
  }

  /** The address's AddressLists in the table (computed on the first call for a table). */
  addressListsIn(table: AddressListTable): AddressLists {
    const known = this.#addressLists;
    if (known !== null && known.table === table) return known;
    const lists = table.withBits(this.address === null ? 0 : table.bitsOf(this.address));
    this.#addressLists = lists;
    return lists;
  }

  /** Its names' HostLists in the table (from each name's remembered bits, on the first call for a table). */
  hostListsIn(table: DomainListTable): HostLists {
    const known = this.#hostLists;
    if (known !== null && known.table === table) return known;
    const lists = hostListsOf(table, this.#names)!;
    this.#hostLists = lists;
    return lists;
  }
}

/** What the engine knows of a remote: plain names, names as learned (with their lists), or the learned host. */
export type RemoteAnswer = readonly (string | LearnedName)[] | LearnedHost;

/** The tables of a compiled policy that a connection's remote facts are computed for. */
export interface ListTables {
  readonly domainLists: DomainListTable | null;
  readonly addressLists: AddressListTable | null;
}

/** The remote part of a connection's facts that lists change (see remoteFactsOf). */
export interface RemoteFacts {
  readonly remoteHosts: readonly string[];
  readonly remoteHostLists: HostLists | undefined;
  readonly remoteAddressLists: AddressLists | undefined;
}

/**
 * The remote part of a connection's facts, as the engine builds it for every connection: the names
 * as strings, their domain lists' bits (domain-lists.ts) and the address's sets' bits, each when
 * the policy has such lists and the engine remembers them (undefined otherwise: then looked up).
 * `address` is the connection's remote address: a LearnedHost for another one gives no bits.
 */
export function remoteFactsOf(
  policy: ListTables,
  answer: RemoteAnswer,
  address: IpAddress | null,
): RemoteFacts {
  if (answer instanceof LearnedHost) {
    const domains = policy.domainLists;
    const table = policy.addressLists;
    const own = answer.address;
    return {
      remoteHosts: answer.hostNames,
      remoteHostLists: domains === null ? undefined : answer.hostListsIn(domains),
      // The host's own address (the enforcer's, for a remembered address), or one equal to it.
      remoteAddressLists:
        table === null ||
        own === null ||
        (own !== address && (address === null || own.value !== address.value))
          ? undefined
          : answer.addressListsIn(table),
    };
  }
  return {
    remoteHosts: nameStrings(answer),
    remoteHostLists: hostListsOf(policy.domainLists, answer),
    remoteAddressLists: undefined,
  };
}

/**
 * What the lists' bits can say of a run of rules beside the rule index (rule-index.ts) at once:
 * when every rule's remote is exactly its lists (address sets with a bit, domain lists with bits,
 * nothing else), a connection whose remembered bits meet none of them matches none of the rules,
 * the usual case, decided with two tests instead of a check per rule.
 */
export interface ListsGuard {
  readonly addressTable: AddressListTable | null;
  readonly addressMask: number;
  readonly domainTable: DomainListTable | null;
  readonly domainMask: number;
}

/** The rules' remote sets as the guard needs them (compile.ts AddressSet). */
interface GuardedSet {
  readonly v4: readonly number[];
  readonly v6: readonly bigint[];
  readonly hosts: ReadonlySet<string>;
  readonly suffixes: readonly string[];
  readonly domainLists: readonly unknown[];
  readonly domainMask: number;
  readonly domainTable: DomainListTable | null;
  readonly addressBit: number;
  readonly addressTable: AddressListTable | null;
}

/** The guard of these rules' remote sets, or null when one of them is not exactly lists with bits. */
export function listsGuardOf(sets: readonly (GuardedSet | null)[]): ListsGuard | null {
  let addressTable: AddressListTable | null = null;
  let addressMask = 0;
  let domainTable: DomainListTable | null = null;
  let domainMask = 0;
  for (const s of sets) {
    if (s === null || s.hosts.size > 0 || s.suffixes.length > 0) return null;
    if (s.v4.length > 0 || s.v6.length > 0) {
      if (s.addressTable === null || (addressTable !== null && addressTable !== s.addressTable)) return null;
      addressTable = s.addressTable;
      addressMask |= s.addressBit;
    }
    if (s.domainLists.length > 0) {
      if (s.domainTable === null || (domainTable !== null && domainTable !== s.domainTable)) return null;
      domainTable = s.domainTable;
      domainMask |= s.domainMask;
    }
  }
  return { addressTable, addressMask, domainTable, domainMask };
}

/** True when the guard shows that none of its rules' remotes holds the connection's remote. */
export function listsRuleOut(g: ListsGuard, f: ConnectionFacts): boolean {
  if (g.addressMask !== 0) {
    const a = f.remoteAddressLists;
    if (a === undefined || a.table !== g.addressTable || (a.bits & g.addressMask) !== 0) return false;
  }
  if (g.domainMask !== 0) {
    // The bits first: they are 0 for no names, and the names themselves are most often not loaded yet.
    const h = f.remoteHostLists;
    if (h !== undefined && h.table === g.domainTable) {
      if ((h.bits & g.domainMask) !== 0) return false;
    } else if (f.remoteHosts.length > 0) return false;
  }
  return true;
}
