/**
 * Who a connection or a login attempt counts against. An IPv4 address is one source; an IPv6
 * address counts with its /64 (a host gets a whole /64 and can rotate addresses inside it for
 * free). ConnectionCounter caps the connections open at once per source and in total, so a flood
 * from one address (or many) cannot take every socket of a listener.
 */
import { formatIpv4, formatIpv6, parseIp } from './address.js';

/** The key a source address is counted under: the IPv4 address, or the IPv6 /64 ("2001:db8::/64"). */
export function sourceKey(address: string | undefined): string {
  if (address === undefined || address === '') return 'unknown';
  const ip = parseIp(address);
  if (ip === null) return address;
  if (ip.version === 4) return formatIpv4(ip.value);
  return `${formatIpv6((ip.value >> 64n) << 64n)}/64`;
}

export interface ConnectionLimits {
  /** Connections open at once from one source (an IPv4 address or an IPv6 /64). */
  readonly perSource: number;
  /** Connections open at once in total. */
  readonly total: number;
}

/** Counts open connections per source and in total; admit() says whether one more may stay. */
export class ConnectionCounter {
  readonly #limits: ConnectionLimits;
  readonly #bySource = new Map<string, number>();
  #total = 0;

  constructor(limits: ConnectionLimits) {
    for (const [name, v] of Object.entries(limits)) {
      if (!Number.isInteger(v) || v < 1)
        throw new RangeError(`ConnectionCounter: ${name} must be an integer ≥ 1, not ${v}`);
    }
    this.#limits = limits;
  }

  /**
   * Counts a new connection from `address` and returns its release function, or returns why it is
   * refused (nothing is counted then). The release function may be called any number of times.
   */
  admit(address: string | undefined): { release: () => void } | { refused: string } {
    const key = sourceKey(address);
    const n = this.#bySource.get(key) ?? 0;
    if (this.#total >= this.#limits.total)
      return { refused: `${this.#total} connections are open, the most allowed` };
    if (n >= this.#limits.perSource)
      return { refused: `${n} connections from ${key} are open, the most allowed per source` };
    this.#bySource.set(key, n + 1);
    this.#total++;
    let released = false;
    return {
      release: () => {
        if (released) return;
        released = true;
        this.#total--;
        const left = (this.#bySource.get(key) ?? 1) - 1;
        if (left <= 0) this.#bySource.delete(key);
        else this.#bySource.set(key, left);
      },
    };
  }

  /** Connections open now. */
  get total(): number {
    return this.#total;
  }
}
