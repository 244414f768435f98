/**
 * Failed-login throttling per key (the server counts each password attempt
 * under its source, an IPv4 address or an IPv6 /64, and under the user name).
 * The first two failures in a row cost nothing (typing mistakes); after the
 * second, the key must wait baseDelay, then twice that, and so on up to
 * maxDelay before its next attempt is accepted: the third attempt in a row is
 * the first that can be throttled. A success resets the count; a source quiet for
 * forgetAfter is forgotten. The table is bounded: past maxSources the source
 * whose last failure is oldest is dropped, so a flood of addresses cannot
 * exhaust memory.
 */

export interface LoginThrottleOptions {
  /** Milliseconds on a monotonic-enough clock (Date.now, performance.now, or a fake in tests). */
  readonly now: () => number;
  /** Delay after the second failure in a row; default 500 ms. */
  readonly baseDelayMs?: number;
  /** Longest delay; default 60 s. */
  readonly maxDelayMs?: number;
  /** A source with no failure for this long starts afresh; default 15 minutes. */
  readonly forgetAfterMs?: number;
  /** Most sources remembered; default 100,000. */
  readonly maxSources?: number;
}

export type ThrottleVerdict = { allowed: true } | { allowed: false; retryAfterMs: number };

/** Failures in a row that are free of delay (the attempt after them may be delayed). */
const FREE_FAILURES = 2;

interface Entry {
  failures: number;
  lastFailure: number;
}

export class LoginThrottle {
  readonly #now: () => number;
  readonly #base: number;
  readonly #max: number;
  readonly #forget: number;
  readonly #maxSources: number;
  /** Insertion order is last-failure order: every failure moves its source to the end. */
  readonly #entries = new Map<string, Entry>();

  constructor(options: LoginThrottleOptions) {
    this.#now = options.now;
    this.#base = nonNegative(options.baseDelayMs ?? 500, 'baseDelayMs');
    this.#max = nonNegative(options.maxDelayMs ?? 60_000, 'maxDelayMs');
    this.#forget = nonNegative(options.forgetAfterMs ?? 15 * 60_000, 'forgetAfterMs');
    this.#maxSources = Math.max(1, Math.floor(options.maxSources ?? 100_000));
  }

  /** The delay imposed after `failures` failures in a row. */
  delayAfter(failures: number): number {
    if (failures < FREE_FAILURES) return 0;
    return Math.min(this.#max, this.#base * 2 ** (failures - FREE_FAILURES));
  }

  /** May `source` try to log in now? If not, how long until it may. */
  check(source: string): ThrottleVerdict {
    const now = this.#now();
    this.#sweep(now);
    const entry = this.#entries.get(source);
    if (entry === undefined) return { allowed: true };
    const wait = entry.lastFailure + this.delayAfter(entry.failures) - now;
    return wait > 0 ? { allowed: false, retryAfterMs: wait } : { allowed: true };
  }

  /** Records a failed login from `source`. */
  failure(source: string): void {
    const now = this.#now();
    this.#sweep(now);
    const previous = this.#entries.get(source);
    const fresh = previous !== undefined && now - previous.lastFailure < this.#forget;
    this.#entries.delete(source);
    this.#entries.set(source, { failures: fresh ? previous.failures + 1 : 1, lastFailure: now });
    while (this.#entries.size > this.#maxSources) {
      const oldest = this.#entries.keys().next();
      if (oldest.done) break;
      this.#entries.delete(oldest.value);
    }
  }

  /** Records a successful login from `source`: its failures are forgotten. */
  success(source: string): void {
    this.#entries.delete(source);
  }

  /** How many sources are remembered (for tests and metrics). */
  get size(): number {
    return this.#entries.size;
  }

  /** Drops sources whose last failure is older than forgetAfter; they sit at the front of the map. */
  #sweep(now: number): void {
    for (const [source, entry] of this.#entries) {
      if (now - entry.lastFailure < this.#forget) break;
      this.#entries.delete(source);
    }
  }
}

function nonNegative(value: number, name: string): number {
  if (!Number.isFinite(value) || value < 0)
    throw new RangeError(`LoginThrottle: ${name} must be a finite number ≥ 0`);
  return value;
}
