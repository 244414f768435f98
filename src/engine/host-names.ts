/**
 * Host names for remote addresses, so rules written with names (`example.org`, `*.example.org`)
 * match connections that only carry addresses. Every exact name the policy mentions is resolved
 * (A and AAAA) and kept for its DNS TTL, then resolved again; an address maps back to the names
 * that resolved to it. Wildcard names cannot be resolved forwards: for them the remote address's
 * PTR name is looked up (once per address, cached) when the policy has any wildcard, and kept only
 * when it resolves forwards to the address again.
 * Each address has one entry, looked up once per connection: its LearnedHost (address-lists.ts)
 * carries its names and remembers what the policy's lists say of it, so with lists a connection
 * costs a bit test, not a search (the first connection to an address, or after a list changed,
 * computes the bits).
 */
import { Resolver } from 'node:dns/promises';
import { type IpAddress, parseIp } from '../ip/index.js';
import { LearnedHost } from '../policy/address-lists.js';
import { LearnedName } from '../policy/domain-lists.js';

/** Reverse lookups under way at most (each with up to MAX_PTR_NAMES forward checks). */
const MAX_PTR_LOOKUPS = 64;
/** How soon an address refused a lookup for that bound is asked about again (ms). */
const BUSY_RETRY_MS = 1000;
/** An entry used again is moved to the end of the map at most this often (ms). */
const TOUCH_MS = 5000;

/** PTR names of one address checked forwards (a reverse zone may list many). */
const MAX_PTR_NAMES = 4;

const sameAddress = (a: IpAddress | null, b: IpAddress): boolean =>
  a !== null && a.version === b.version && a.value === b.value;

export interface HostNameOptions {
  /** DNS servers ("ip" or "ip:port"); default: the system's. */
  readonly servers?: readonly string[];
  /** TTL bounds in seconds: a TTL below `minTtl` is raised (no hammering), above `maxTtl` lowered. */
  readonly minTtl?: number;
  readonly maxTtl?: number;
  /** Longest wait for a PTR answer while a connection is held (default 250 ms). */
  readonly reverseTimeoutMs?: number;
  /** Remote addresses remembered beyond those of the policy's names (default REMEMBERED_ADDRESSES). */
  readonly remembered?: number;
  readonly now?: () => number;
}

/**
 * Addresses remembered for their PTR names and list bits (the oldest forgotten first), beyond
 * those the policy's names resolved to: a flood of new addresses costs each a first computation
 * again, never unbounded memory (about 300 bytes an address, under 20 MB at the bound).
 */
export const REMEMBERED_ADDRESSES = 65_536;

/** The names of an address nobody learned anything of (shared: nothing allocated per connection). */
const NO_NAMES: readonly LearnedName[] = [];

/**
 * One remote address: its LearnedHost (the parsed address, its names, its lists' bits, looked up
 * once per connection) and where its names come from.
 */
class AddressEntry {
  /** Names that resolved to the address (the LearnedName their forward entry holds), and until when. */
  forward: Map<string, LearnedName> | null = null;
  forwardExpires = 0;
  /** Its PTR names when the policy needs them, until when, and the lookup under way. */
  ptr: readonly LearnedName[] | null = null;
  ptrExpires = 0;
  ptrLookup: Promise<void> | null = null;
  /** host.names are right for this generation of HostNames until this time. */
  generation = -1;
  namesUntil = 0;
  /** When the entry was last moved to the end of the map (the least recently used go first). */
  usedAt = 0;

  constructor(readonly host: LearnedHost) {}
}

/** Address -> names, kept fresh for the names the policy uses; and one LearnedHost per remote address. */
export class HostNames {
  readonly #resolver: Resolver;
  readonly #o: Required<Omit<HostNameOptions, 'servers'>>;
  /** name -> addresses it resolved to, and when to resolve it again */
  readonly #forward = new Map<string, { addresses: string[]; refreshAt: number; learned: LearnedName }>();
  /** address -> its entry, oldest first (the order in which addresses beyond the names' are forgotten) */
  readonly #hosts = new Map<string, AddressEntry>();
  #names: string[] = [];
  #wildcards = false;
  #ptrLookups = 0;
  /** Every remote address asked about is remembered (PTR names or list bits are wanted). */
  #remember = false;
  /** Changes when what names an address has changes for all of them (wildcards on or off). */
  #generation = 0;
  #timer: NodeJS.Timeout | undefined;

  constructor(options: HostNameOptions = {}) {
    this.#resolver = new Resolver({ timeout: 2000, tries: 2 });
    if (options.servers && options.servers.length > 0) this.#resolver.setServers([...options.servers]);
    this.#o = {
      minTtl: options.minTtl ?? 30,
      maxTtl: options.maxTtl ?? 3600,
      reverseTimeoutMs: options.reverseTimeoutMs ?? 250,
      remembered: options.remembered ?? REMEMBERED_ADDRESSES,
      now: options.now ?? Date.now,
    };
  }

  /**
   * Sets the names the policy uses (exact and `*.` wildcards) and resolves the exact ones that are
   * new or due now; names already known keep their addresses until their TTL runs out. With
   * `reverse` (the policy has domain lists) remote addresses are looked up by PTR as for wildcards;
   * with `addresses` (the policy has large address sets, address-lists.ts) every remote address is
   * remembered with its sets' bits, so a connection tests bits rather than searching the sets.
   */
  async watch(
    names: Iterable<string>,
    options: { reverse?: boolean; addresses?: boolean } = {},
  ): Promise<void> {
    const all = [...new Set([...names].map((n) => n.toLowerCase()))];
    // Domain lists, like wildcards, cannot be resolved forwards: `reverse` asks for PTR names too.
    const wildcards = options.reverse === true || all.some((n) => n.startsWith('*.'));
    if (wildcards !== this.#wildcards) this.#generation++;
    this.#wildcards = wildcards;
    this.#remember = wildcards || options.addresses === true;
    if (!this.#remember) for (const [a, e] of [...this.#hosts]) if (e.forward === null) this.#hosts.delete(a);
    this.#names = all.filter((n) => !n.startsWith('*.'));
    const wanted = new Set(this.#names);
    for (const n of [...this.#forward.keys()]) if (!wanted.has(n)) this.#forget(n);
    const now = this.#o.now();
    const due = this.#names.filter((n) => (this.#forward.get(n)?.refreshAt ?? 0) <= now);
    await Promise.all(due.map((n) => this.#resolve(n)));
    this.#schedule();
  }

  /** Names known for an address: forward-resolved ones, and its PTR name when the policy has wildcards. */
  async namesOf(address: string): Promise<string[]> {
    return (await this.learnedNamesOf(address)).map((n) => n.name);
  }

  /**
   * The same names as the engine keeps them: one LearnedName per name, which remembers which of
   * the policy's domain lists it is in (domain-lists.ts), so a connection does not look it up.
   */
  async learnedNamesOf(address: string): Promise<LearnedName[]> {
    const answer = await this.hostOf(address);
    return [...(answer instanceof LearnedHost ? answer.names : answer)];
  }

  /**
   * What the engine knows of a remote address, looked up once per connection: its LearnedHost
   * (its names, and the bits of the policy's lists remembered for the address and its names), or
   * no names when nothing is learned or remembered of it. A promise only while its PTR name is
   * looked up (bounded by reverseTimeoutMs).
   */
  hostOf(address: string): LearnedHost | readonly LearnedName[] | Promise<LearnedHost> {
    let e = this.#hosts.get(address);
    const now = this.#o.now();
    if (e === undefined) {
      if (!this.#remember) return NO_NAMES;
      e = this.#add(address);
      e.usedAt = now;
    } else if (now - e.usedAt > TOUCH_MS) {
      // Used again: to the end of the map, so a flood of new addresses forgets the idle ones first.
      e.usedAt = now;
      this.#hosts.delete(address);
      this.#hosts.set(address, e);
    }
    if (this.#wildcards && (e.ptr === null || e.ptrExpires <= now)) return this.#withPtr(e, address);
    return this.#current(e, now);
  }

  /**
   * The names known for the address now, as strings, without looking anything up or counting the
   * address as used: for a verdict-cache hit's log item. The kernel decided that connection from the
   * address alone, and the decision its entry came from saw the names of its own time; an address
   * (a CDN's, say) may since be known by more.
   */
  namesNow(address: string): readonly string[] {
    const e = this.#hosts.get(address);
    return e === undefined ? [] : this.#current(e, this.#o.now()).hostNames;
  }

  /** Stops refreshing. */
  close(): void {
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  /** The entry of an address seen for the first time; the oldest addresses beyond the bound are forgotten. */
  #add(address: string): AddressEntry {
    const e = new AddressEntry(new LearnedHost(parseIp(address), address));
    this.#hosts.set(address, e);
    // Addresses of the policy's names stay (moved to the end); a few steps at most per new address.
    for (let step = 0; step < 16 && this.#hosts.size > this.#o.remembered; step++) {
      const [oldest, entry] = this.#hosts.entries().next().value!;
      this.#hosts.delete(oldest);
      if (entry.forward !== null) this.#hosts.set(oldest, entry);
    }
    return e;
  }

  /** The host with its names as they are now (built again only when they changed or expired). */
  #current(e: AddressEntry, now: number): LearnedHost {
    if (e.generation === this.#generation && now < e.namesUntil) return e.host;
    const live = e.forward !== null && e.forwardExpires > now;
    const names = live ? [...e.forward!.values()] : [];
    let until = live ? e.forwardExpires : Number.POSITIVE_INFINITY;
    if (this.#wildcards && e.ptr !== null) {
      for (const n of e.ptr) if (!names.some((m) => m.name === n.name)) names.push(n);
      until = Math.min(until, e.ptrExpires);
    }
    e.host.setNames(names);
    e.generation = this.#generation;
    e.namesUntil = until;
    return e.host;
  }

  /** Looks the PTR name of the address up (one lookup at a time per address), then answers. */
  async #withPtr(e: AddressEntry, address: string): Promise<LearnedHost> {
    if (e.ptrLookup === null) {
      e.ptrLookup = this.#ptr(e, address).finally(() => {
        e.ptrLookup = null;
      });
    }
    await e.ptrLookup;
    return this.#current(e, this.#o.now());
  }

  async #resolve(name: string): Promise<void> {
    const now = this.#o.now();
    const answers = await Promise.all([
      this.#resolver.resolve4(name, { ttl: true }).catch(() => []),
      this.#resolver.resolve6(name, { ttl: true }).catch(() => []),
    ]);
    const records = answers.flat();
    const ttl = records.length === 0 ? this.#o.minTtl : Math.min(...records.map((r) => r.ttl));
    const clamped = Math.min(this.#o.maxTtl, Math.max(this.#o.minTtl, ttl));
    const expires = now + clamped * 1000;
    // The same LearnedName across refreshes: what it remembers stays valid while the lists do.
    const learned = this.#forward.get(name)?.learned ?? new LearnedName(name);
    this.#forget(name);
    const addresses = records.map((r) => r.address);
    this.#forward.set(name, { addresses, refreshAt: expires, learned });
    for (const a of addresses) {
      const e = this.#hosts.get(a) ?? this.#add(a);
      e.forward ??= new Map();
      e.forward.set(name, learned);
      e.forwardExpires = Math.max(e.forwardExpires, expires);
      e.generation = -1;
    }
  }

  #forget(name: string): void {
    const old = this.#forward.get(name);
    if (!old) return;
    this.#forward.delete(name);
    for (const a of old.addresses) {
      const e = this.#hosts.get(a);
      if (e === undefined) continue;
      e.forward?.delete(name);
      e.generation = -1;
      if (e.forward?.size === 0) e.forward = null;
      if (e.forward === null && !this.#remember) this.#hosts.delete(a);
    }
  }

  /**
   * The address's PTR names that resolve forwards to it again (forward-confirmed): whoever runs an
   * address's reverse zone can give it any name, e.g. one under a domain the policy allows, but
   * cannot make that domain's own DNS answer with the address. At most MAX_PTR_NAMES names are
   * checked; the whole lookup waits at most reverseTimeoutMs.
   */
  async #ptr(e: AddressEntry, address: string): Promise<void> {
    const keep = (names: readonly string[], forMs: number) => {
      // The same LearnedName for a name seen before: what it remembers stays valid while the lists do.
      e.ptr = names.map((n) => e.ptr?.find((m) => m.name === n) ?? new LearnedName(n));
      e.ptrExpires = this.#o.now() + forMs;
      e.generation = -1;
    };
    // No answer now: names known before stay until DNS answers (a flood of new addresses holding
    // every lookup must not take the names of the addresses known before); none known: none yet.
    const askAgain = (forMs: number) => {
      if (e.ptr === null) keep([], forMs);
      else e.ptrExpires = this.#o.now() + forMs;
    };
    if (this.#ptrLookups >= MAX_PTR_LOOKUPS) {
      // A flood of new addresses: DNS is not asked for more at once; this one is asked again soon.
      askAgain(BUSY_RETRY_MS);
      return;
    }
    this.#ptrLookups++;
    const lookup = this.#confirmedPtr(address)
      .catch(() => [] as string[])
      .finally(() => this.#ptrLookups--);
    const timeout = new Promise<null>((r) => setTimeout(() => r(null), this.#o.reverseTimeoutMs).unref());
    const answer = await Promise.race([lookup, timeout]);
    if (answer !== null) {
      keep(answer, this.#o.minTtl * 1000);
      return;
    }
    // Too slow for this connection; the answer is kept for the next when it comes.
    askAgain(this.#o.minTtl * 1000);
    void lookup.then((late) => keep(late, this.#o.minTtl * 1000));
  }

  async #confirmedPtr(address: string): Promise<string[]> {
    const wanted = parseIp(address);
    if (wanted === null) return [];
    const claimed = [
      ...new Set((await this.#resolver.reverse(address)).map((n) => n.toLowerCase().replace(/\.$/, ''))),
    ];
    const checked = await Promise.all(
      claimed.slice(0, MAX_PTR_NAMES).map(async (name) => {
        const forward = await (wanted.version === 4
          ? this.#resolver.resolve4(name)
          : this.#resolver.resolve6(name)
        ).catch(() => [] as string[]);
        return forward.some((a) => sameAddress(parseIp(a), wanted)) ? name : null;
      }),
    );
    return checked.filter((n): n is string => n !== null);
  }

  #schedule(): void {
    if (this.#timer) clearTimeout(this.#timer);
    if (this.#forward.size === 0) return;
    const next = Math.min(...[...this.#forward.values()].map((f) => f.refreshAt));
    this.#timer = setTimeout(
      () => {
        const now = this.#o.now();
        const due = [...this.#forward.entries()].filter(([, f]) => f.refreshAt <= now).map(([n]) => n);
        void Promise.all(due.map((n) => this.#resolve(n))).then(() => this.#schedule());
      },
      Math.max(1000, next - this.#o.now()),
    );
    this.#timer.unref();
  }
}
