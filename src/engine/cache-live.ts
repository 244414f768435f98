/**
 * Keeps the verdict cache's liveness element in the kernel (src/kernel/ruleset-guards.ts LIVE_SET,
 * docs/attribution.md "Verdict cache"): the ruleset accepts a connection the cache marked only while
 * it is there. Renewed after every apply whose ruleset accepts the mark and every LIVE_RENEW_MS; it
 * expires LIVE_TIMEOUT_S after the last renewal, so the acceptance dies with a killed engine within
 * that bound. A stopping engine removes it (awaited) before its BPF programs are detached. A renewal
 * that fails costs only speed: the cache's connections are queued and decided as without it.
 */
import { LIVE_RENEW_MS, LIVE_TIMEOUT_S } from '../kernel/ruleset-guards.js';
import type { EngineLog } from './daemon.js';

export class CacheLiveness {
  readonly #renew: (on: boolean) => Promise<boolean>;
  readonly #log: EngineLog;
  #timer: NodeJS.Timeout | undefined;
  #failing = false;

  /** `renew(true)` renews the element, `renew(false)` removes it; both resolve whether the kernel took it. */
  constructor(renew: (on: boolean) => Promise<boolean>, log: EngineLog) {
    this.#renew = renew;
    this.#log = log;
  }

  /** Renews now and every LIVE_RENEW_MS until end(). */
  keep(): void {
    if (this.#timer === undefined) {
      this.#timer = setInterval(() => this.#renewOnce(), LIVE_RENEW_MS);
      this.#timer.unref();
    }
    this.#renewOnce();
  }

  #renewOnce(): void {
    this.#renew(true).then(
      (ok) => this.#result(ok, ''),
      (e: Error) => this.#result(false, `: ${e.message}`),
    );
  }

  /** Said once per change, not twice a second. */
  #result(ok: boolean, why: string): void {
    if (this.#timer === undefined || ok === !this.#failing) return;
    this.#failing = !ok;
    if (ok) this.#log('info', 'verdict cache liveness renewed again');
    else
      this.#log(
        'error',
        `renewing the verdict cache's liveness in the kernel failed${why}: its connections are queued meanwhile`,
      );
  }

  /** Stops renewing; with `remove`, takes the element out of the kernel (after any renewal under way). */
  async end(remove: boolean): Promise<void> {
    if (this.#timer !== undefined) clearInterval(this.#timer);
    this.#timer = undefined;
    if (!remove) return;
    const ok = await this.#renew(false).catch(() => false);
    if (!ok)
      this.#log(
        'error',
        `removing the verdict cache's liveness from the kernel failed: connections its mark decided are accepted until it expires (${LIVE_TIMEOUT_S} s)`,
      );
  }
}
