/**
 * Puts log items from the engine back in order and fills the gaps: items may
 * arrive over UDP (lost, duplicated, reordered) or TCP; a missing sequence
 * number is fetched over TCP with logs.query, so the console never silently
 * misses an item. Items the engine no longer stores are counted as lost.
 */
import type { LogItem } from '../protocol/log-item.js';

/** Fetches stored items with seq in [fromSeq, toSeq] (the console's logs.query over TCP). */
export type Backfill = (fromSeq: number, toSeq: number) => Promise<readonly LogItem[]>;

export interface SequencerCounters {
  delivered: number;
  duplicates: number;
  backfilled: number;
  backfills: number;
  /** Items the engine no longer had when asked (older than its retention). */
  lost: number;
}

export class LogSequencer {
  readonly counters: SequencerCounters = {
    delivered: 0,
    duplicates: 0,
    backfilled: 0,
    backfills: 0,
    lost: 0,
  };
  #lastSeq: number;
  readonly #buffer = new Map<number, LogItem>();
  #backfilling = false;
  #knownLatest = 0;
  readonly #deliver: (items: LogItem[]) => void;
  readonly #backfill: Backfill;
  readonly #onError: (e: Error) => void;

  /** Delivers items after `startAfterSeq`, in order, without gaps. */
  constructor(options: {
    startAfterSeq: number;
    deliver: (items: LogItem[]) => void;
    backfill: Backfill;
    onError?: (e: Error) => void;
  }) {
    this.#lastSeq = options.startAfterSeq;
    this.#deliver = options.deliver;
    this.#backfill = options.backfill;
    this.#onError = options.onError ?? (() => {});
  }

  /** The newest sequence number delivered. */
  get lastSeq(): number {
    return this.#lastSeq;
  }

  /** True while items are held back waiting for a backfill. */
  get waiting(): boolean {
    return this.#buffer.size > 0 || this.#backfilling;
  }

  /** Accepts items from any transport. */
  accept(items: readonly LogItem[]): void {
    const inOrder: LogItem[] = [];
    for (const item of items) {
      if (item.seq > this.#knownLatest) this.#knownLatest = item.seq;
      if (item.seq === this.#lastSeq + 1 && this.#buffer.size === 0) {
        // The common case, nothing held back: deliver without going through the buffer.
        this.#lastSeq = item.seq;
        inOrder.push(item);
        continue;
      }
      if (item.seq <= this.#lastSeq || this.#buffer.has(item.seq)) this.counters.duplicates++;
      else this.#buffer.set(item.seq, item);
    }
    if (inOrder.length > 0) {
      this.counters.delivered += inOrder.length;
      this.#deliver(inOrder);
    }
    this.#drain();
  }

  /** The engine says its newest item is `seq` (from a UDP acknowledgement): fetch anything missing up to it. */
  noteLatest(seq: number): void {
    if (seq > this.#knownLatest) this.#knownLatest = seq;
    this.#drain();
  }

  #drain(): void {
    this.#deliverReady();
    if (!this.#backfilling && this.#knownLatest > this.#lastSeq) void this.#fill();
  }

  #deliverReady(): void {
    const out: LogItem[] = [];
    for (
      let next = this.#buffer.get(this.#lastSeq + 1);
      next !== undefined;
      next = this.#buffer.get(this.#lastSeq + 1)
    ) {
      this.#buffer.delete(next.seq);
      this.#lastSeq = next.seq;
      out.push(next);
    }
    if (out.length > 0) {
      this.counters.delivered += out.length;
      this.#deliver(out);
    }
  }

  async #fill(): Promise<void> {
    this.#backfilling = true;
    try {
      while (this.#knownLatest > this.#lastSeq) {
        const from = this.#lastSeq + 1;
        // Fetch up to just before the first item already held, or up to the newest known.
        let to = this.#knownLatest;
        for (const seq of this.#buffer.keys()) if (seq >= from && seq - 1 < to) to = seq - 1;
        if (to >= from) {
          this.counters.backfills++;
          const items = await this.#backfill(from, to);
          for (const item of items) {
            if (item.seq < from || item.seq > to || item.seq <= this.#lastSeq || this.#buffer.has(item.seq))
              continue;
            this.#buffer.set(item.seq, item);
            this.counters.backfilled++;
          }
          if (this.#lastSeq < from && !this.#buffer.has(from)) {
            // The engine no longer stores these: count them lost and go on after them.
            let resume = to + 1;
            for (const seq of this.#buffer.keys()) if (seq > this.#lastSeq && seq < resume) resume = seq;
            this.counters.lost += resume - from;
            this.#lastSeq = resume - 1;
          }
        }
        this.#deliverReady();
      }
    } catch (e) {
      this.#onError(e as Error);
    } finally {
      this.#backfilling = false;
    }
  }
}
