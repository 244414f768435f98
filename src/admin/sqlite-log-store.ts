/**
 * The engine's persistent log store: a LogStore in one SQLite file (WAL mode,
 * synchronous=NORMAL) that answers logs.query exactly as MemoryLogStore does
 * (`logItemMatches` is the reference; a property test compares the two).
 *
 * Writes are batched. append() numbers the item, tells the subscribers and
 * returns at once; the item waits in memory and is written with the others of
 * its batch in one transaction, on the next turn of the event loop
 * (setImmediate) or as soon as BATCH_SIZE items wait, whichever comes first.
 * query(), exportJsonLines() and close() write the waiting batch first.
 *
 * Durability, precisely:
 * - A process crash (kill -9, an uncaught exception) loses at most the items
 *   not yet flushed: those appended in the current event-loop turn, at most
 *   BATCH_SIZE. Every committed batch survives (it is in the WAL file).
 * - A power loss or kernel crash can also lose batches committed since the
 *   last WAL checkpoint (synchronous=NORMAL syncs the WAL at checkpoints only).
 * - Neither ever tears the database: a batch is one transaction, there whole or
 *   not at all, and sequence numbers stay gap-free after a restart (numbering
 *   continues after the highest number stored or recorded).
 *
 * Retention (by age, and by item count or file size) runs when the store opens
 * and then periodically, deleting the oldest items in transactions of
 * RETENTION_BATCH rows with a turn of the event loop between them, so it never
 * holds the database for long. Items whose time does not parse are never aged out.
 *
 * Text search: each row keeps its lower-cased search text (logItemSearchText,
 * the very function logItemMatches uses) and `text` is instr() over it: a scan
 * in seq order that stops at `limit`, narrowed first by the indexed filters.
 * (An FTS5 trigram index made it exact-and-indexed but cut inserts 2-3 fold.)
 */
import type { Writable } from 'node:stream';
import Database from 'better-sqlite3';
import { ErrorCode, WardenError } from '../errors.js';
import {
  addressOfEnd,
  type LogItem,
  type LogQueryParsed,
  logItemSearchText,
  type NewLogItem,
} from '../protocol/log-item.js';
import type { LogStore } from './log-store.js';

/** How long items are kept. Without any field, items are kept for ever. */
export interface LogRetention {
  /** Delete items older than this many days (by their `time`). */
  maxAgeDays?: number;
  /** Keep at most this many of the newest items. */
  maxItems?: number;
  /** Keep the database's used pages under about this many bytes (oldest items go first). */
  maxBytes?: number;
}

export interface SqliteLogStoreOptions {
  retention?: LogRetention;
  /** Clock for item times and retention by age (default Date.now). */
  now?: () => number;
  /** How often retention runs after the one at open, in ms (default 60,000; 0 = only at open and on demand). */
  retentionIntervalMs?: number;
  /** Called when a batch cannot be written (disk full, file damaged); the batch is dropped. Default: a process warning. */
  onError?: (error: WardenError) => void;
}

/** A query for exportJsonLines: the filters of logs.query, every item when `limit` is absent. */
export type LogExportQuery = Omit<LogQueryParsed, 'limit'> & { limit?: number };

/** Items waiting in memory before one transaction writes them. */
export const BATCH_SIZE = 10_000;
/** Rows deleted per retention transaction. */
export const RETENTION_BATCH = 5000;
const EXPORT_PAGE = 1000;

const SCHEMA = `
CREATE TABLE IF NOT EXISTS log (
  seq INTEGER PRIMARY KEY,
  time TEXT NOT NULL,
  time_ms INTEGER,
  kind TEXT NOT NULL,
  verdict TEXT,
  direction TEXT,
  protocol TEXT,
  application TEXT,
  local TEXT,
  remote TEXT,
  local_address TEXT,
  remote_address TEXT,
  host TEXT,
  rule TEXT,
  user TEXT,
  source TEXT,
  message TEXT NOT NULL,
  search TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS log_time ON log (time_ms);
CREATE INDEX IF NOT EXISTS log_application ON log (application, verdict, seq);
CREATE INDEX IF NOT EXISTS log_local_address ON log (local_address, seq);
CREATE INDEX IF NOT EXISTS log_remote_address ON log (remote_address, seq);
CREATE TABLE IF NOT EXISTS state (key TEXT PRIMARY KEY, value INTEGER NOT NULL);
`;

/** Optional item fields and their columns, in insert order after seq, time, time_ms, kind. */
const OPTIONAL_FIELDS = [
  'verdict',
  'direction',
  'protocol',
  'application',
  'local',
  'remote',
  'host',
  'rule',
  'user',
  'source',
] as const;

interface Row {
  seq: number;
  time: string;
  kind: LogItem['kind'];
  message: string;
  [column: string]: unknown;
}

/** True for the SQLite errors that mean "this file is not (any more) a sound database". */
function isCorruption(e: unknown): boolean {
  const code = (e as { code?: unknown } | null)?.code;
  return code === 'SQLITE_NOTADB' || code === 'SQLITE_CORRUPT' || code === 'SQLITE_CORRUPT_VTAB';
}

function corruptError(path: string, e: unknown): WardenError {
  const what = e instanceof Error ? e.message : String(e);
  return new WardenError(
    ErrorCode.LOG_STORE_CORRUPT,
    `log store ${path} is not a usable SQLite database (${what})`,
    {
      suggestion: `stop the engine, move the file aside (mv ${path} ${path}.corrupt) and start it again: a new, empty log store is created`,
      cause: e,
    },
  );
}

/** A LogStore in a SQLite file. */
export class SqliteLogStore implements LogStore {
  readonly path: string;
  readonly #db: Database.Database;
  readonly #now: () => number;
  readonly #retention: LogRetention;
  readonly #onError: (error: WardenError) => void;
  readonly #listeners = new Set<(item: LogItem) => void>();
  readonly #insert: Database.Statement;
  readonly #saveLastSeq: Database.Statement;
  readonly #selects = new Map<string, Database.Statement>();
  #pending: LogItem[] = [];
  #flushScheduled = false;
  #lastSeq: number;
  #retentionTimer: NodeJS.Timeout | undefined;
  #retentionRun: Promise<number> | undefined;
  #closed = false;

  private constructor(path: string, db: Database.Database, options: SqliteLogStoreOptions) {
    this.path = path;
    this.#db = db;
    this.#now = options.now ?? Date.now;
    this.#retention = options.retention ?? {};
    this.#onError =
      options.onError ?? ((e) => process.emitWarning(`${e.message}`, { code: e.code, detail: e.suggestion }));
    db.pragma('journal_mode = WAL');
    db.pragma('synchronous = NORMAL');
    db.pragma('cache_size = -65536');
    db.exec(SCHEMA);
    const columns = ['seq', 'time', 'time_ms', 'kind', ...OPTIONAL_FIELDS, 'local_address', 'remote_address'];
    this.#insert = db.prepare(
      `INSERT INTO log (${columns.join(', ')}, message, search) VALUES (${columns.map(() => '?').join(', ')}, ?, ?)`,
    );
    this.#saveLastSeq = db.prepare(
      "INSERT INTO state (key, value) VALUES ('lastSeq', ?) ON CONFLICT (key) DO UPDATE SET value = max(value, excluded.value)",
    );
    const stored = db.prepare('SELECT max(seq) AS seq FROM log').get() as { seq: number | null };
    const recorded = db.prepare("SELECT value FROM state WHERE key = 'lastSeq'").get() as
      | { value: number }
      | undefined;
    this.#lastSeq = Math.max(stored.seq ?? 0, recorded?.value ?? 0);
    // The newest row is read whole so that a file cut short is found now, not at the first query.
    db.prepare('SELECT * FROM log ORDER BY seq DESC LIMIT 1').get();
  }

  /**
   * Opens (creating when missing) the log store at `path`. Throws WardenError
   * LOG_STORE_CORRUPT when the file is not a sound SQLite database, FILE_IO when
   * it cannot be opened at all.
   */
  static open(path: string, options: SqliteLogStoreOptions = {}): SqliteLogStore {
    let db: Database.Database | undefined;
    try {
      db = new Database(path);
      const store = new SqliteLogStore(path, db, options);
      store.#startRetention(options.retentionIntervalMs ?? 60_000);
      return store;
    } catch (e) {
      db?.close();
      if (isCorruption(e)) throw corruptError(path, e);
      if (e instanceof WardenError) throw e;
      throw new WardenError(
        ErrorCode.FILE_IO,
        `cannot open log store ${path}: ${e instanceof Error ? e.message : String(e)}`,
        {
          suggestion: 'check that the directory exists and the engine may write there',
          cause: e,
        },
      );
    }
  }

  get lastSeq(): number {
    return this.#lastSeq;
  }

  append(item: NewLogItem): LogItem {
    if (this.#closed) throw new WardenError(ErrorCode.INTERNAL, `log store ${this.path} is closed`);
    const stored: LogItem = {
      ...item,
      seq: ++this.#lastSeq,
      time: item.time ?? new Date(this.#now()).toISOString(),
    };
    this.#pending.push(stored);
    if (this.#pending.length >= BATCH_SIZE) this.flush();
    else if (!this.#flushScheduled) {
      this.#flushScheduled = true;
      setImmediate(() => {
        this.#flushScheduled = false;
        this.flush();
      });
    }
    for (const l of this.#listeners) l(stored);
    return stored;
  }

  /** Writes the waiting items in one transaction now. A failure goes to `onError` and drops the batch. */
  flush(): void {
    if (this.#pending.length === 0 || !this.#db.open) return;
    const batch = this.#pending;
    this.#pending = [];
    try {
      this.#writeBatch(batch);
    } catch (e) {
      this.#onError(this.#wrap(e, `cannot write ${batch.length} log items to ${this.path}`));
    }
  }

  /** One transaction: the rows, their search texts and the highest number (kept even when retention empties the table). */
  #writeBatch(batch: LogItem[]): void {
    this.#transaction ??= this.#db.transaction((batch: LogItem[]) => {
      for (const item of batch) {
        const time = Date.parse(item.time);
        const values: unknown[] = [item.seq, item.time, Number.isNaN(time) ? null : time, item.kind];
        for (const f of OPTIONAL_FIELDS) values.push(item[f] ?? null);
        values.push(addressOfEnd(item.local) ?? null, addressOfEnd(item.remote) ?? null, item.message);
        values.push(logItemSearchText(item));
        this.#insert.run(values);
      }
      this.#saveLastSeq.run(batch[batch.length - 1]!.seq);
    });
    this.#transaction(batch);
  }
  #transaction: ((batch: LogItem[]) => void) | undefined;

  query(q: LogQueryParsed): { items: LogItem[]; lastSeq: number } {
    this.flush();
    try {
      return { items: this.#select(q, q.limit), lastSeq: this.#lastSeq };
    } catch (e) {
      throw this.#wrap(e, `cannot query log store ${this.path}`);
    }
  }

  subscribe(listener: (item: LogItem) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  /**
   * Writes the matching items to `out` as JSON lines (one LogItem per line),
   * oldest first, page by page, waiting for `out` to drain. Resolves to the
   * number of items written. Items appended meanwhile are included up to the limit.
   */
  async exportJsonLines(q: LogExportQuery, out: Writable): Promise<number> {
    let written = 0;
    let from = q.fromSeq ?? 1;
    const limit = q.limit ?? Number.POSITIVE_INFINITY;
    while (written < limit) {
      this.flush();
      let items: LogItem[];
      try {
        items = this.#select({ ...q, fromSeq: from }, Math.min(EXPORT_PAGE, limit - written));
      } catch (e) {
        throw this.#wrap(e, `cannot export from log store ${this.path}`);
      }
      if (items.length === 0) break;
      const chunk = `${items.map((i) => JSON.stringify(i)).join('\n')}\n`;
      written += items.length;
      from = items[items.length - 1]!.seq + 1;
      if (!out.write(chunk)) {
        await new Promise<void>((resolve, reject) => {
          const done = (e?: Error) => {
            out.off('drain', done);
            out.off('error', done);
            out.off('close', done);
            if (e) reject(e);
            else resolve();
          };
          out.on('drain', done).on('error', done).on('close', done);
        });
        if (out.destroyed) break;
      }
    }
    return written;
  }

  /**
   * Deletes what the retention settings say to, oldest first, in transactions
   * of RETENTION_BATCH rows with a turn of the event loop between them.
   * Resolves to the number of items deleted. Runs once at a time.
   */
  applyRetention(): Promise<number> {
    this.#retentionRun ??= this.#retain().finally(() => {
      this.#retentionRun = undefined;
    });
    return this.#retentionRun;
  }

  /** Flushes the waiting items, stops retention and closes the file. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.flush();
    this.#closed = true;
    clearInterval(this.#retentionTimer);
    await this.#retentionRun?.catch(() => {});
    this.#db.close();
  }

  #startRetention(intervalMs: number): void {
    const { maxAgeDays, maxItems, maxBytes } = this.#retention;
    if (maxAgeDays === undefined && maxItems === undefined && maxBytes === undefined) return;
    const run = () => {
      this.applyRetention().catch((e) => this.#onError(this.#wrap(e, `retention failed on ${this.path}`)));
    };
    setImmediate(run);
    if (intervalMs > 0) this.#retentionTimer = setInterval(run, intervalMs).unref();
  }

  async #retain(): Promise<number> {
    const { maxAgeDays, maxItems, maxBytes } = this.#retention;
    let deleted = 0;
    const step = async (statement: Database.Statement, arg: number) => {
      for (;;) {
        await new Promise((resolve) => setImmediate(resolve));
        if (this.#closed) return;
        const n = statement.run(arg, RETENTION_BATCH).changes;
        deleted += n;
        if (n < RETENTION_BATCH) return;
      }
    };
    if (maxAgeDays !== undefined) {
      const byTime = this.#db.prepare(
        'DELETE FROM log WHERE seq IN (SELECT seq FROM log WHERE time_ms < ? ORDER BY time_ms LIMIT ?)',
      );
      await step(byTime, this.#now() - maxAgeDays * 86_400_000);
    }
    const keep = Math.min(maxItems ?? Number.POSITIVE_INFINITY, this.#itemsFittingIn(maxBytes));
    if (Number.isFinite(keep) && !this.#closed) {
      this.flush();
      const bySeq = this.#db.prepare(
        'DELETE FROM log WHERE seq IN (SELECT seq FROM log WHERE seq < ? ORDER BY seq LIMIT ?)',
      );
      await step(bySeq, this.#lastSeq - Math.max(0, Math.floor(keep)) + 1);
    }
    return deleted;
  }

  /** How many items fit in `maxBytes` at the current average size per item (Infinity without a limit). */
  #itemsFittingIn(maxBytes: number | undefined): number {
    if (maxBytes === undefined || this.#closed) return Number.POSITIVE_INFINITY;
    const pageSize = this.#db.pragma('page_size', { simple: true }) as number;
    const pages = this.#db.pragma('page_count', { simple: true }) as number;
    const free = this.#db.pragma('freelist_count', { simple: true }) as number;
    const used = (pages - free) * pageSize;
    if (used <= maxBytes) return Number.POSITIVE_INFINITY;
    const span = this.#db.prepare('SELECT min(seq) AS lo, max(seq) AS hi FROM log').get() as {
      lo: number | null;
      hi: number | null;
    };
    if (span.lo === null || span.hi === null) return Number.POSITIVE_INFINITY;
    return Math.floor((maxBytes / used) * (span.hi - span.lo + 1));
  }

  /** The SQL for a query's filters; `limit` rows at most, oldest first. */
  #select(q: Omit<LogQueryParsed, 'limit'>, limit: number): LogItem[] {
    const where: string[] = ['log.seq >= ?'];
    const args: unknown[] = [q.fromSeq ?? 1];
    if (q.kind !== undefined) {
      where.push('log.kind = ?');
      args.push(q.kind);
    }
    if (q.verdict !== undefined) {
      where.push('log.verdict = ?');
      args.push(q.verdict);
    }
    if (q.application !== undefined) {
      where.push('log.application = ?');
      args.push(q.application);
    }
    if (q.address !== undefined) {
      where.push('(log.local_address = ? OR log.remote_address = ?)');
      args.push(q.address, q.address);
    }
    // An item whose time does not parse passes time bounds, as in logItemMatches (NaN compares false).
    if (q.since !== undefined) {
      where.push('(log.time_ms >= ? OR log.time_ms IS NULL)');
      args.push(Date.parse(q.since));
    }
    if (q.until !== undefined) {
      where.push('(log.time_ms <= ? OR log.time_ms IS NULL)');
      args.push(Date.parse(q.until));
    }
    if (q.text !== undefined) {
      where.push('instr(log.search, ?) > 0');
      args.push(q.text.toLowerCase());
    }
    args.push(limit);
    const sql = `SELECT * FROM log WHERE ${where.join(' AND ')} ORDER BY log.seq LIMIT ?`;
    let statement = this.#selects.get(sql);
    if (statement === undefined) {
      statement = this.#db.prepare(sql);
      this.#selects.set(sql, statement);
    }
    return (statement.all(args) as Row[]).map(toItem);
  }

  #wrap(e: unknown, what: string): WardenError {
    if (e instanceof WardenError) return e;
    if (isCorruption(e)) return corruptError(this.path, e);
    return new WardenError(ErrorCode.INTERNAL, `${what}: ${e instanceof Error ? e.message : String(e)}`, {
      cause: e,
    });
  }
}

function toItem(row: Row): LogItem {
  const item: LogItem = { seq: row.seq, time: row.time, kind: row.kind, message: row.message };
  for (const f of OPTIONAL_FIELDS) {
    const v = row[f];
    if (v !== null && v !== undefined) (item as Record<string, unknown>)[f] = v;
  }
  return item;
}
