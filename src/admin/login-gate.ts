/**
 * The login gate: who may try a password now, and whose attempt it is. Password attempts from one
 * source (an IPv4 address or an IPv6 /64) run one at a time, in the order they arrived, however many
 * connections or pipelined requests carry them; each is checked against the throttle of its source
 * and of its user name and counted as a failure under both BEFORE the password is verified (a
 * success then clears the counts), so pipelining cannot run many verifications on one check.
 * Local-token logins are outside the password throttle: the token is 256 random bits, accepted only
 * from loopback, and a local user's wrong passwords must not lock root (or the web console's local
 * login) out.
 */
import { ErrorCode, WardenError } from '../errors.js';
import { sourceKey } from '../ip/source-limits.js';
import type { Role } from '../protocol/methods.js';
import { tokensEqual } from './auth/local-token.js';
import type { UserStore } from './auth/users.js';
import { isLoopback } from './confirm.js';
import type { Throttle } from './server.js';

export type LoginParams = { user?: string; password?: string; localToken?: string };
export type LoginOutcome =
  | { readonly ok: true; readonly name: string; readonly role: Role }
  | { readonly ok: false; readonly throttled?: { readonly key: string; readonly retryAfterMs: number } };

/** The throttle keys of a password attempt: its source and its user name. */
export function throttleKeys(remote: string, user: string): string[] {
  return [`source ${sourceKey(remote)}`, `user ${user.toLowerCase()}`];
}

export class LoginGate {
  readonly #throttle: Throttle;
  readonly #users: UserStore;
  readonly #localToken: string | undefined;
  /** The tail of each source's queue of password attempts. */
  readonly #queues = new Map<string, Promise<unknown>>();

  constructor(throttle: Throttle, users: UserStore, localToken: string | undefined) {
    this.#throttle = throttle;
    this.#users = users;
    this.#localToken = localToken;
  }

  /** Decides one login attempt from `remote`. Throws WARDEN_E_PARAMS_INVALID for neither form of login. */
  attempt(p: LoginParams, remote: string): Promise<LoginOutcome> {
    if (p.localToken !== undefined) {
      const token = this.#localToken;
      const ok = isLoopback(remote) && token !== undefined && tokensEqual(token, p.localToken);
      return Promise.resolve(
        ok ? { ok: true, name: 'root (local token)', role: 'administrator' } : { ok: false },
      );
    }
    const { user, password } = p;
    if (user === undefined || password === undefined) {
      return Promise.reject(
        new WardenError(ErrorCode.PARAMS_INVALID, 'session.login needs {user, password} or {localToken}'),
      );
    }
    const source = sourceKey(remote);
    const previous = this.#queues.get(source) ?? Promise.resolve();
    const mine = previous.then(() => this.#password(user, password, remote));
    const tail = mine.catch(() => {});
    this.#queues.set(source, tail);
    void tail.then(() => {
      if (this.#queues.get(source) === tail) this.#queues.delete(source);
    });
    return mine;
  }

  /** Sources with attempts queued or running (for tests). */
  get busySources(): number {
    return this.#queues.size;
  }

  async #password(user: string, password: string, remote: string): Promise<LoginOutcome> {
    const keys = throttleKeys(remote, user);
    for (const key of keys) {
      const gate = this.#throttle.check(key);
      if (!gate.allowed) return { ok: false, throttled: { key, retryAfterMs: gate.retryAfterMs } };
    }
    // Counted before the (slow) verification; a success clears it below.
    for (const key of keys) this.#throttle.failure(key);
    const who = await this.#users.verify(user, password);
    if (who === null) return { ok: false };
    for (const key of keys) this.#throttle.success(key);
    return { ok: true, name: who.name, role: who.role };
  }
}

/**
 * Bounds how often one kind of security item is written per key (a source, a user): an attacker who
 * sends throttled logins or refused connections as fast as it can must not fill the log store. At
 * most one item per key per interval; the next one says how many were left out meanwhile.
 */
export class RepeatLimiter {
  readonly #intervalMs: number;
  readonly #now: () => number;
  readonly #last = new Map<string, { at: number; suppressed: number }>();

  constructor(intervalMs = 1000, now: () => number = Date.now) {
    this.#intervalMs = intervalMs;
    this.#now = now;
  }

  /** Undefined: leave this item out. A number: write it, noting that many left out since the last. */
  admit(key: string): number | undefined {
    const now = this.#now();
    const entry = this.#last.get(key);
    if (entry !== undefined && now - entry.at < this.#intervalMs) {
      entry.suppressed++;
      return undefined;
    }
    if (this.#last.size >= 10_000) {
      for (const [k, e] of this.#last) if (now - e.at >= this.#intervalMs) this.#last.delete(k);
      if (this.#last.size >= 10_000) this.#last.clear();
    }
    this.#last.set(key, { at: now, suppressed: 0 });
    return entry?.suppressed ?? 0;
  }
}
