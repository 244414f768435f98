/**
 * Confirmed apply, against locking oneself out: whether a configuration would
 * cut a remote administrator off (lockoutRisk), and the changes applied on
 * probation that are rolled back unless confirmed in time (Confirmations).
 */
import { parseIp } from '../ip/index.js';
import { compilePolicy, decide, type HostEnvironment, internalRules, type Policy } from '../policy/index.js';
import type { Settings } from '../settings/index.js';

/** Whether an address is the engine's own host (loopback). */
export function isLoopback(address: string): boolean {
  const a = address.startsWith('::ffff:') ? address.slice(7) : address;
  return a === '::1' || a.startsWith('127.');
}

/**
 * Why this configuration would cut off an administrator calling from `source`, or null when it would not:
 * remote administration off, or an incoming TCP connection from `source` to the engine's application port
 * not allowed. A caller on the engine's host is never at risk.
 */
export function lockoutRisk(
  config: { policy: Policy; settings: Settings },
  source: string,
  host: HostEnvironment,
  now: number,
): string | null {
  if (isLoopback(source)) return null;
  const { settings } = config;
  if (!settings.remoteAdministration.enabled) return 'remote administration would be disabled';
  const remote = parseIp(source.startsWith('::ffff:') ? source.slice(7) : source);
  const compiled = compilePolicy(config.policy, { settings, internalRules: internalRules(settings, host) });
  const d = decide(compiled, {
    direction: 'incoming',
    protocol: 'tcp',
    application: host.executables.engine,
    uid: 0,
    user: 'root',
    localAddress: null,
    localPort: settings.applicationPort,
    remoteAddress: remote,
    remotePort: null,
    remoteHosts: [],
    now,
  });
  if (d.verdict === 'allow') return null;
  return `a connection from ${source} to the application port ${settings.applicationPort} would be ${d.verdict === 'ask' ? 'held (ask)' : 'blocked'} by ${d.ruleName}`;
}

/** A change applied on probation. */
export interface PendingChange {
  readonly version: number;
  /** The version it is rolled back to. */
  readonly previous: number;
  /** ISO 8601. */
  readonly deadline: string;
}

/** Changes waiting for config.confirm; each rolls back by itself at its deadline. */
export class Confirmations {
  readonly #timers = new Map<number, { change: PendingChange; timer: NodeJS.Timeout }>();

  /** Starts the clock: `rollback` runs after `seconds` unless `confirm(version)` comes first. */
  add(
    version: number,
    previous: number,
    seconds: number,
    rollback: (c: PendingChange) => Promise<void>,
  ): PendingChange {
    const change = { version, previous, deadline: new Date(Date.now() + seconds * 1000).toISOString() };
    const timer = setTimeout(() => {
      this.#timers.delete(version);
      void rollback(change).catch(() => {});
    }, seconds * 1000);
    timer.unref();
    this.#timers.set(version, { change, timer });
    return change;
  }

  /** Keeps a pending change; false when no change of that version is pending. */
  confirm(version: number): boolean {
    const t = this.#timers.get(version);
    if (!t) return false;
    clearTimeout(t.timer);
    this.#timers.delete(version);
    return true;
  }

  pending(): PendingChange[] {
    return [...this.#timers.values()].map((t) => t.change);
  }

  /** Stops every clock (the server closes); nothing is rolled back. */
  close(): void {
    for (const t of this.#timers.values()) clearTimeout(t.timer);
    this.#timers.clear();
  }
}
