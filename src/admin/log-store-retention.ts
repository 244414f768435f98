/**
 * Retention of the SQLite log store (sqlite-log-store.ts): deletes the oldest
 * items by age, count and size, then the dictionary entries no row uses any
 * more, each in transactions of RETENTION_BATCH rows with a turn of the event
 * loop between two, so that the engine keeps deciding connections meanwhile.
 */
import type Database from 'better-sqlite3';
import type { LogDictionary } from './log-dict.js';
import { EPOCH_ITEMS, SPAN_ITEMS } from './log-schema.js';

/** How long items are kept. Without any field, items are kept for ever. */
export interface LogRetention {
  /** Delete items older than this many days (by their `time`). */
  maxAgeDays?: number;
  /** Keep at most this many of the newest items. */
  maxItems?: number;
  /** Keep the database's used pages under about this many bytes (oldest items go first). */
  maxBytes?: number;
}

/** Rows (items, or dictionary entries) deleted per retention transaction. */
export const RETENTION_BATCH = 5000;

/** What retention needs of the store. */
export interface RetentionTarget {
  readonly db: Database.Database;
  readonly dict: LogDictionary;
  readonly retention: LogRetention;
  now(): number;
  /** True once the store is closing: retention stops at the next step. */
  closed(): boolean;
  /** Writes the waiting batch (its rows then count, and its new dictionary entries are in the table). */
  flush(): void;
  lastSeq(): number;
}

const turn = () => new Promise((resolve) => setImmediate(resolve));

/** Applies the retention settings once; resolves to the number of items deleted. */
export async function retain(t: RetentionTarget): Promise<number> {
  const { maxAgeDays, maxItems, maxBytes } = t.retention;
  const db = t.db;
  let deleted = 0;
  if (maxAgeDays !== undefined) {
    const byAge = deleteOlderThan(db, t.now() - maxAgeDays * 86_400_000);
    for (;;) {
      await turn();
      if (t.closed()) break;
      t.flush();
      const { items, blocks } = byAge();
      deleted += items;
      if (blocks === 0) break;
    }
  }
  if (t.closed()) return deleted;
  const keep = Math.min(maxItems ?? Number.POSITIVE_INFINITY, itemsFittingIn(db, maxBytes));
  if (Number.isFinite(keep) && !t.closed()) {
    t.flush();
    const bySeq = db.prepare(
      'DELETE FROM log WHERE seq IN (SELECT seq FROM log WHERE seq < ? ORDER BY seq LIMIT ?)',
    );
    const below = t.lastSeq() - Math.max(0, Math.floor(keep)) + 1;
    for (;;) {
      await turn();
      if (t.closed()) break;
      const n = bySeq.run(below, RETENTION_BATCH).changes;
      deleted += n;
      if (n < RETENTION_BATCH) break;
    }
  }
  if (!t.closed()) {
    // The spans, local address and application blocks before the oldest row (every one when no row is left).
    const oldest = firstSeq(t);
    for (const table of ['log_span', 'log_local', 'log_app'])
      db.prepare(`DELETE FROM ${table} WHERE block < ?`).run(Math.floor(oldest / SPAN_ITEMS));
  }
  await pruneDictionary(t);
  return deleted;
}

/** The oldest stored seq, or the next one to be given when no row is stored (the batch is written first). */
function firstSeq(t: RetentionTarget): number {
  t.flush();
  const min = t.db.prepare('SELECT min(seq) FROM log').pluck().get() as number | null;
  return min ?? t.lastSeq() + 1;
}

/**
 * Deletes the dictionary entries whose newest use is in an epoch older than the oldest row's (no
 * row uses them), RETENTION_BATCH per transaction. Their ids may be given again afterwards.
 */
async function pruneDictionary(t: RetentionTarget): Promise<void> {
  const remove = t.db.prepare('DELETE FROM dict WHERE id = ?');
  const step = t.db.transaction((ids: number[]) => {
    for (const id of ids) remove.run(id);
  });
  // Ids below the cursor were looked at: an id freed and given again since is in use in a new epoch.
  for (let from = 1; ; ) {
    await turn();
    if (t.closed()) return;
    // Written first: the batch's entries are then in the table, and its rows count as uses.
    const epoch = Math.floor(firstSeq(t) / EPOCH_ITEMS);
    const { ids, next } = t.dict.unusedBefore(epoch, RETENTION_BATCH, from);
    from = next;
    if (ids.length === 0) return;
    step(ids);
    t.dict.remove(ids);
    if (ids.length < RETENTION_BATCH) return;
  }
}

/**
 * A transaction deleting the items older than `cutoff` (ms) in the next
 * blocks whose oldest time is older, RETENTION_BATCH items' worth, and
 * narrowing those blocks' spans to what is left.
 */
function deleteOlderThan(db: Database.Database, cutoff: number): () => { items: number; blocks: number } {
  const blocks = db.prepare('SELECT block FROM log_span WHERE min_ms < ? ORDER BY block LIMIT ?').pluck();
  const remove = db.prepare('DELETE FROM log WHERE seq >= ? AND seq < ? AND time_ms < ?');
  const left = db.prepare(
    'SELECT min(time_ms) AS lo, max(time_ms) AS hi, count(*) AS n FROM log WHERE seq >= ? AND seq < ?',
  );
  const narrow = db.prepare('UPDATE log_span SET min_ms = ?, max_ms = ? WHERE block = ?');
  const drop = db.prepare('DELETE FROM log_span WHERE block = ?');
  return db.transaction(() => {
    let items = 0;
    const found = blocks.all(cutoff, Math.ceil(RETENTION_BATCH / SPAN_ITEMS)) as number[];
    for (const block of found) {
      const lo = block * SPAN_ITEMS;
      items += remove.run(lo, lo + SPAN_ITEMS, cutoff).changes;
      const rest = left.get(lo, lo + SPAN_ITEMS) as { lo: number | null; hi: number | null; n: number };
      if (rest.n === 0) drop.run(block);
      else narrow.run(rest.lo, rest.hi, block);
    }
    return { items, blocks: found.length };
  });
}

/** How many items fit in `maxBytes` at the current average size per item (Infinity without a limit). */
function itemsFittingIn(db: Database.Database, maxBytes: number | undefined): number {
  if (maxBytes === undefined) return Number.POSITIVE_INFINITY;
  const pageSize = db.pragma('page_size', { simple: true }) as number;
  const pages = db.pragma('page_count', { simple: true }) as number;
  const free = db.pragma('freelist_count', { simple: true }) as number;
  const used = (pages - free) * pageSize;
  if (used <= maxBytes) return Number.POSITIVE_INFINITY;
  const span = db.prepare('SELECT min(seq) AS lo, max(seq) AS hi FROM log').get() as {
    lo: number | null;
    hi: number | null;
  };
  if (span.lo === null || span.hi === null) return Number.POSITIVE_INFINITY;
  return Math.floor((maxBytes / used) * (span.hi - span.lo + 1));
}
