/**
 * Turns the kernel's flood counts (ruleset-guards.ts: packets dropped over the per-uid / per-source
 * limit, counted per key in the flood_* sets) into `security` log items, so no flood is silent.
 * The kernel pokes the engine through NFLOG (at most once a second); the reporter then reads the
 * counters, at most once per interval, and logs one item per uid or source whose count grew.
 */
import { FLOOD_COUNT_SETS } from '../kernel/ruleset-guards.js';
import type { NewLogItem } from '../protocol/log-item.js';

export const FLOOD_REPORT_INTERVAL_MS = 10_000;

export interface FloodReporterOptions {
  /** Reads one counter set: key → packets dropped since the element was made. */
  readonly read: (set: string) => Promise<Map<string, number>>;
  readonly log: (item: NewLogItem) => void;
  /** Reports a failure to read the counters (the engine's own log). */
  readonly fail: (message: string) => void;
  readonly intervalMs?: number;
}

export class FloodReporter {
  private readonly seen = new Map<string, number>();
  private lastRead = 0;
  private timer: NodeJS.Timeout | undefined;
  private reading = false;
  private closed = false;

  constructor(private readonly options: FloodReporterOptions) {}

  /** The kernel dropped packets over a limit: report soon (not more often than once per interval). */
  notify(): void {
    if (this.timer !== undefined || this.reading || this.closed) return;
    const interval = this.options.intervalMs ?? FLOOD_REPORT_INTERVAL_MS;
    const wait = Math.max(0, this.lastRead + interval - Date.now());
    this.timer = setTimeout(() => {
      this.timer = undefined;
      void this.report();
    }, wait);
    this.timer.unref();
  }

  /** The table was replaced as a whole: its counter sets start from zero. */
  reset(): void {
    this.seen.clear();
  }

  close(): void {
    this.closed = true;
    if (this.timer !== undefined) clearTimeout(this.timer);
  }

  private async report(): Promise<void> {
    this.reading = true;
    this.lastRead = Date.now();
    const interval = this.options.intervalMs ?? FLOOD_REPORT_INTERVAL_MS;
    try {
      for (const [direction, sets] of Object.entries(FLOOD_COUNT_SETS)) {
        for (const set of sets) {
          const counts = await this.options.read(set);
          for (const [key, packets] of counts) {
            const id = `${set}/${key}`;
            const before = this.seen.get(id) ?? 0;
            // A smaller count is a new element (the old one expired): all of it is new.
            const grown = packets >= before ? packets - before : packets;
            this.seen.set(id, packets);
            if (grown === 0) continue;
            const who = direction === 'output' ? `uid ${key}` : `source ${key}`;
            this.options.log({
              kind: 'security',
              direction: direction === 'output' ? 'outgoing' : 'incoming',
              ...(direction === 'output' ? { user: key } : { remote: key }),
              message: `flood: ${grown} new ${direction === 'output' ? 'outgoing' : 'incoming'} connection packets of ${who} dropped over the limit in the last ${Math.round(interval / 1000)} s or less (enforcement.flood* settings)`,
            });
          }
        }
      }
    } catch (e) {
      this.options.fail(`reading the flood counters failed: ${(e as Error).message}`);
    } finally {
      this.reading = false;
    }
  }
}
