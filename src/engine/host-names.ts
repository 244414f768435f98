/**
 * Host names for remote addresses, so rules written with names (`example.org`, `*.example.org`)
 * match connections that only carry addresses. Every exact name the policy mentions is resolved
 * (A and AAAA) and kept for its DNS TTL, then resolved again; an address maps back to the names
 * that resolved to it. Wildcard names cannot be resolved forwards: for them the remote address's
 * PTR name is looked up (once per address, cached) when the policy has any wildcard, and kept only
 * when it resolves forwards to the address again.
 */
import { Resolver } from 'node:dns/promises';
import { type IpAddress, parseIp } from '../ip/index.js';
import { LearnedName } from '../policy/domain-lists.js';

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
  readonly now?: () => number;
}

interface Entry {
  /** One LearnedName per name (the one its forward entry holds): it remembers its domain lists. */
  readonly names: Map<string, LearnedName>;
  expires: number;
}

/** Address -> names, kept fresh for the names the policy uses. */
export class HostNames {
  readonly #resolver: Resolver;
  readonly #o: Required<Omit<HostNameOptions, 'servers'>>;
  /** name -> addresses it resolved to, and when to resolve it again */
  readonly #forward = new Map<string, { addresses: string[]; refreshAt: number; learned: LearnedName }>();
  readonly #byAddress = new Map<string, Entry>();
  readonly #reverse = new Map<string, { names: LearnedName[]; expires: number }>();
  #names: string[] = [];
  #wildcards = false;
  #timer: NodeJS.Timeout | undefined;

  constructor(options: HostNameOptions = {}) {
    this.#resolver = new Resolver({ timeout: 2000, tries: 2 });
    if (options.servers && options.servers.length > 0) this.#resolver.setServers([...options.servers]);
    this.#o = {
      minTtl: options.minTtl ?? 30,
      maxTtl: options.maxTtl ?? 3600,
      reverseTimeoutMs: options.reverseTimeoutMs ?? 250,
      now: options.now ?? Date.now,
    };
  }

  /**
   * Sets the names the policy uses (exact and `*.` wildcards) and resolves the exact ones that are
   * new or due now; names already known keep their addresses until their TTL runs out. With
   * `reverse` (the policy has domain lists) remote addresses are looked up by PTR as for wildcards.
   */
  async watch(names: Iterable<string>, options: { reverse?: boolean } = {}): Promise<void> {
    const all = [...new Set([...names].map((n) => n.toLowerCase()))];
    // Domain lists, like wildcards, cannot be resolved forwards: `reverse` asks for PTR names too.
    this.#wildcards = options.reverse === true || all.some((n) => n.startsWith('*.'));
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
    const now = this.#o.now();
    const forward = this.#byAddress.get(address);
    const names = forward && forward.expires > now ? [...forward.names.values()] : [];
    if (this.#wildcards)
      for (const n of await this.#ptr(address)) if (!names.some((m) => m.name === n.name)) names.push(n);
    return names;
  }

  /** Stops refreshing. */
  close(): void {
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = undefined;
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
      const e = this.#byAddress.get(a);
      if (e) {
        e.names.set(name, learned);
        e.expires = Math.max(e.expires, expires);
      } else this.#byAddress.set(a, { names: new Map([[name, learned]]), expires });
    }
  }

  #forget(name: string): void {
    const old = this.#forward.get(name);
    if (!old) return;
    this.#forward.delete(name);
    for (const a of old.addresses) {
      const e = this.#byAddress.get(a);
      e?.names.delete(name);
      if (e && e.names.size === 0) this.#byAddress.delete(a);
    }
  }

  /**
   * The address's PTR names that resolve forwards to it again (forward-confirmed): whoever runs an
   * address's reverse zone can give it any name, e.g. one under a domain the policy allows, but
   * cannot make that domain's own DNS answer with the address. At most MAX_PTR_NAMES names are
   * checked; the whole lookup waits at most reverseTimeoutMs.
   */
  async #ptr(address: string): Promise<LearnedName[]> {
    const now = this.#o.now();
    const cached = this.#reverse.get(address);
    if (cached && cached.expires > now) return cached.names;
    const lookup = this.#confirmedPtr(address).catch(() => [] as string[]);
    const timeout = new Promise<string[]>((r) => setTimeout(() => r([]), this.#o.reverseTimeoutMs).unref());
    const names = (await Promise.race([lookup, timeout])).map((n) => new LearnedName(n));
    this.#reverse.set(address, { names, expires: now + this.#o.minTtl * 1000 });
    if (this.#reverse.size > 10_000) this.#reverse.delete(this.#reverse.keys().next().value!);
    return names;
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
