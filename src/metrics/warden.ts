/**
 * The metrics the engine exposes (docs/metrics.md): decisions by verdict, queue latency, log items
 * pushed / lost / backfilled, consoles connected, failed logins, and the process basics. One object made
 * by the engine; the parts that count get the counters they need and only add to them.
 */
import { readdirSync } from 'node:fs';
import { Counter, type Histogram, MetricsRegistry } from './registry.js';

/** Verdicts a judged packet ends with (after an `ask` is answered or times out). */
export type DecisionVerdict = 'allow' | 'deny' | 'reject';

/** What the enforcer records per judged packet. */
export interface DecisionMetrics {
  /** One packet decided `verdict`, `seconds` after it reached the engine. */
  decided(verdict: DecisionVerdict, seconds: number): void;
  /** `count` connections the kernel's verdict cache allowed (read from its ring by the engine). */
  decidedByCache?(count: number): void;
}

/** What the administration server counts. */
export interface AdminMetrics {
  readonly loginsFailed: Counter;
  readonly logItemsPushed: Counter;
  readonly logItemsLost: Counter;
  readonly logItemsBackfilled: Counter;
}

/** Queue latency buckets, in seconds: from 50 us (a cached decision) to a minute (an unanswered ask). */
export const LATENCY_BUCKETS = [
  0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10,
  30, 60,
];

export class WardenMetrics implements DecisionMetrics, AdminMetrics {
  readonly registry = new MetricsRegistry();
  readonly decisions: Readonly<Record<DecisionVerdict, Counter>>;
  /** Connections allowed by the kernel's verdict cache (not queued: not in `decisions`). */
  readonly cacheDecisions: Counter;
  readonly queueLatency: Histogram;
  readonly loginsFailed: Counter;
  readonly logItemsPushed: Counter;
  readonly logItemsLost: Counter;
  readonly logItemsBackfilled: Counter;
  /** Decisions per 10-second slot, the last six slots (decisionsPerMinute). */
  readonly #perSlot = new Float64Array(6);
  readonly #slotOf = new Float64Array(6).fill(-10);

  /** `consoles`: the number of logged-in consoles, read when scraped. */
  constructor(consoles: () => number = () => 0) {
    const r = this.registry;
    const help = 'Queued packets decided by the engine, by final verdict';
    this.decisions = {
      allow: r.counter('warden_decisions_total', help, { verdict: 'allow' }),
      deny: r.counter('warden_decisions_total', help, { verdict: 'deny' }),
      reject: r.counter('warden_decisions_total', help, { verdict: 'reject' }),
    };
    this.cacheDecisions = r.counter(
      'warden_verdict_cache_decisions_total',
      "Connections allowed by the kernel's verdict cache (repeats of a decision the engine made), not queued",
    );
    this.queueLatency = r.histogram(
      'warden_queue_latency_seconds',
      'Time from a queued packet reaching the enforcer to its verdict (asks included)',
      LATENCY_BUCKETS,
    );
    this.logItemsPushed = r.counter(
      'warden_log_items_pushed_total',
      'Log items pushed to subscribed consoles (UDP or TCP)',
    );
    this.logItemsLost = r.counter(
      'warden_log_items_lost_total',
      'Log items not pushed to a subscribed console (no transport yet, too large for a datagram); consoles backfill them',
    );
    this.logItemsBackfilled = r.counter(
      'warden_log_items_backfilled_total',
      'Log items consoles fetched again after a gap (logs.query with fromSeq)',
    );
    r.gauge('warden_consoles_connected', 'Consoles logged in now', consoles);
    this.loginsFailed = r.counter('warden_logins_failed_total', 'Failed console logins');
    processMetrics(r);
  }

  decided(verdict: DecisionVerdict, seconds: number): void {
    this.decisions[verdict].inc();
    this.queueLatency.observe(seconds);
    this.#perMinute(1);
  }

  decidedByCache(count: number): void {
    this.cacheDecisions.inc(count);
    this.#perMinute(count);
  }

  #perMinute(count: number): void {
    const slot = Math.floor(Date.now() / 10_000);
    const i = slot % 6;
    if (this.#slotOf[i] !== slot) {
      this.#slotOf[i] = slot;
      this.#perSlot[i] = 0;
    }
    this.#perSlot[i]! += count;
  }

  /**
   * Decisions in the last minute (six 10-second slots, the current one partly), queued ones and the
   * verdict cache's: engine.status's rate.
   */
  decisionsPerMinute(now = Date.now()): number {
    const slot = Math.floor(now / 10_000);
    let sum = 0;
    for (let i = 0; i < 6; i++) if (slot - this.#slotOf[i]! < 6) sum += this.#perSlot[i]!;
    return sum;
  }

  /** The text exposition format 0.0.4. */
  render(): string {
    return this.registry.render();
  }
}

/** The usual process_* series (names as Prometheus client libraries use them). */
function processMetrics(r: MetricsRegistry): void {
  const startSeconds = Math.round(Date.now() / 1000 - process.uptime());
  r.counterFrom('process_cpu_user_seconds_total', 'User CPU time spent, in seconds', () => {
    return process.cpuUsage().user / 1e6;
  });
  r.counterFrom('process_cpu_system_seconds_total', 'System CPU time spent, in seconds', () => {
    return process.cpuUsage().system / 1e6;
  });
  r.counterFrom('process_cpu_seconds_total', 'Total user and system CPU time spent, in seconds', () => {
    const u = process.cpuUsage();
    return (u.user + u.system) / 1e6;
  });
  r.gauge('process_start_time_seconds', 'Start time of the process since the Unix epoch, in seconds', () => {
    return startSeconds;
  });
  r.gauge('process_resident_memory_bytes', 'Resident memory size, in bytes', () => process.memoryUsage.rss());
  r.gauge('process_open_fds', 'Open file descriptors', () => {
    try {
      return readdirSync('/proc/self/fd').length;
    } catch {
      return Number.NaN;
    }
  });
  r.gauge('nodejs_heap_used_bytes', 'V8 heap in use, in bytes', () => process.memoryUsage().heapUsed);
}

export { Counter };
