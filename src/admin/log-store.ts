/**
 * Where the administration server gets log items: numbered without gaps,
 * queried with filters, and followed live. MemoryLogStore keeps the newest
 * items in a bounded ring; the engine's SQLite store (issue 5) implements the
 * same interface.
 */
import { type LogItem, type LogQueryParsed, logItemMatches, type NewLogItem } from '../protocol/log-item.js';
import { redactText } from '../settings/secrets.js';

/** A source of log items. */
export interface LogStore {
  /** Stores an item, gives it the next sequence number and tells the subscribers. */
  append(item: NewLogItem): LogItem;
  /** Items matching the filters, oldest first, from `fromSeq` on, at most `limit`. */
  /**
   * Matching items, oldest first. `searchedTo`, when present: a text search stopped at its work
   * budget after the items up to that seq; ask again from the next seq for the rest.
   */
  query(q: LogQueryParsed): { items: LogItem[]; lastSeq: number; searchedTo?: number };
  /** The newest sequence number (0 when empty). */
  readonly lastSeq: number;
  /** Calls `listener` for every item appended from now on; returns the unsubscribe function. */
  subscribe(listener: (item: LogItem) => void): () => void;
}

/** An in-memory ring of the newest `capacity` items. */
export class MemoryLogStore implements LogStore {
  readonly #ring: (LogItem | undefined)[];
  #lastSeq = 0;
  readonly #listeners = new Set<(item: LogItem) => void>();
  readonly #now: () => number;
  /** The last clock reading and its ISO text: a burst of items in one millisecond formats it once. */
  #clock = { ms: Number.NaN, iso: '' };

  constructor(options: { capacity?: number; now?: () => number } = {}) {
    this.#ring = new Array(options.capacity ?? 100_000);
    this.#now = options.now ?? Date.now;
  }

  get lastSeq(): number {
    return this.#lastSeq;
  }

  append(item: NewLogItem): LogItem {
    const seq = ++this.#lastSeq;
    // Same keys in the same order as `{ ...item, seq, time }`, which V8 (Node 20) builds several times slower.
    const stored = Object.assign({}, item) as LogItem;
    // No secret travels in an item (consoles, syslog): admin, security and system messages are redacted.
    if (stored.kind !== 'connection') stored.message = redactText(stored.message);
    stored.seq = seq;
    stored.time = item.time ?? this.#isoNow();
    this.#ring[seq % this.#ring.length] = stored;
    for (const l of this.#listeners) l(stored);
    return stored;
  }

  #isoNow(): string {
    const ms = this.#now();
    if (ms !== this.#clock.ms) this.#clock = { ms, iso: new Date(ms).toISOString() };
    return this.#clock.iso;
  }

  query(q: LogQueryParsed): { items: LogItem[]; lastSeq: number } {
    const oldest = Math.max(1, this.#lastSeq - this.#ring.length + 1);
    const items: LogItem[] = [];
    for (
      let seq = Math.max(oldest, q.fromSeq ?? oldest);
      seq <= this.#lastSeq && items.length < q.limit;
      seq++
    ) {
      const item = this.#ring[seq % this.#ring.length];
      if (item !== undefined && item.seq === seq && logItemMatches(item, q)) items.push(item);
    }
    return { items, lastSeq: this.#lastSeq };
  }

  subscribe(listener: (item: LogItem) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }
}
