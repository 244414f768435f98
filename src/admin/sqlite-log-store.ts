/**
 * The engine's persistent log store: a LogStore in one SQLite file (WAL mode,
 * synchronous=NORMAL) that answers logs.query exactly as MemoryLogStore does
 * (`logItemMatches` is the reference; a property test compares the two).
 * docs/log-store.md explains the design; in short:
 * - append() numbers the item, encodes its row (the waiting batch holds rows,
 *   not items), tells the subscribers and returns; its batch is written in one
 *   transaction FLUSH_DELAY_MS later or at BATCH_SIZE items.
 *   query(), exportJsonLines() and close() write the waiting batch first.
 * - Retention (age, count, size) deletes the oldest in steps, then the dictionary
 *   entries no row uses any more (log-store-retention.ts).
 * - Layout: log-schema.ts, log-row.ts, log-dict.ts; time bounds become seq ranges (spans).
 * - Text: the needle's words are looked up in the dictionary of strings; the
 *   rows using the entries found are read (by index when it can) and compared
 *   in JS; a search reads at most TEXT_SCAN_BUDGET rows per call.
 * - Repeats of a connection attempt raise the first item's `count` (log-coalesce.ts) when asked to.
 * - Every query works for QUERY_TIME_BUDGET_MS at most (then it answers with
 *   what it found and `searchedTo`), so no caller holds the event loop long.
 */
import type { Writable } from 'node:stream';
import Database from 'better-sqlite3';
import { ErrorCode, WardenError } from '../errors.js';
import {
  type LogItem,
  type LogQueryParsed,
  logItemSearchText,
  type NewLogItem,
} from '../protocol/log-item.js';
import { redactText } from '../settings/secrets.js';
import { RepeatCoalescer, repeatKey } from './log-coalesce.js';
import { LogDictionary } from './log-dict.js';
import {
  filters,
  ITEM_COLUMNS,
  QUERY_TIME_BUDGET_MS,
  SCAN_WINDOW,
  type Selection,
  TEXT_SCAN_BUDGET,
  TIME_CHECK_ROWS,
  textPlan,
  writeJsonLines,
} from './log-query-sql.js';
import { itemOfRow, LOG_COLUMNS, type LogRow, pushRowValues } from './log-row.js';
import { corruptError, EPOCH_ITEMS, isCorruption, prepareSchema, SPAN_ITEMS } from './log-schema.js';
import type { LogStore } from './log-store.js';
import { type LogRetention, retain } from './log-store-retention.js';
import { tightenFiles } from './private-file.js';

export interface SqliteLogStoreOptions {
  retention?: LogRetention;
  /** Clock for item times and retention by age (default Date.now). */
  now?: () => number;
  /** How often retention runs after the one at open, in ms (default 60,000; 0 = only at open and on demand). */
  retentionIntervalMs?: number;
  /** Called when a batch cannot be written (disk full, file damaged); the batch is dropped. Default: a process warning. */
  onError?: (error: WardenError) => void;
  /** Rows a text search reads per query at most (default TEXT_SCAN_BUDGET). */
  textScanBudget?: number;
  /** Milliseconds a query works at most before it answers with `searchedTo` (default QUERY_TIME_BUDGET_MS). */
  queryTimeBudgetMs?: number;
  /**
   * Repeats of a connection item (the same attempt retried) within this many ms of the previous one
   * raise its `count` instead of adding an item (default 0: every append is an item).
   */
  repeatWindowMs?: number;
}

/** A query for exportJsonLines: the filters of logs.query, every item when `limit` is absent. */
export type LogExportQuery = Omit<LogQueryParsed, 'limit'> & { limit?: number };

/** Items waiting in memory before one transaction writes them. */
export const BATCH_SIZE = 10_000;
/** How long appended items may wait in memory before their batch is written (ms). */
export const FLUSH_DELAY_MS = 25;

/** Seqs the first window of a query spans (SCAN_WINDOW at most). */
const MIN_WINDOW = 2048;
/** Rows per multi-row INSERT statement. */
const ROWS_PER_INSERT = 32;
/** The positions of local_addr and application in a row's values. */
const LOCAL_ADDR = LOG_COLUMNS.indexOf('local_addr');
const APPLICATION = LOG_COLUMNS.indexOf('application');
/** The rows waiting for a transaction (see #chunks), and the counts raised meanwhile. */
interface Batch {
  chunks: unknown[][];
  tail: unknown[];
  odd: number[];
  counts: Map<number, number>;
}

/** A LogStore in a SQLite file. */
export class SqliteLogStore implements LogStore {
  readonly path: string;
  readonly #db: Database.Database;
  readonly #now: () => number;
  readonly #retention: LogRetention;
  readonly #onError: (error: WardenError) => void;
  readonly #listeners = new Set<(item: LogItem) => void>();
  readonly #insertOne: Database.Statement;
  readonly #insertMany: Database.Statement;
  readonly #saveLastSeq: Database.Statement;
  readonly #saveSpan: Database.Statement;
  readonly #selects = new Map<string, Database.Statement>();
  readonly #addEntry: Database.Statement;
  readonly #widenEntry: Database.Statement;
  readonly #addOdd: Database.Statement;
  readonly #setCount: Database.Statement;
  readonly #addLocal: Database.Statement;
  readonly #addApp: Database.Statement;
  readonly #dict: LogDictionary;
  readonly #repeats: RepeatCoalescer | undefined;
  /** Counts raised since the last batch: seq -> its count, written after the rows of the next batch. */
  #counts = new Map<number, number>();
  /** The waiting rows' values (LOG_COLUMNS order): full chunks of ROWS_PER_INSERT rows, and the chunk being filled. */
  #chunks: unknown[][] = [];
  #chunk: unknown[] = [];
  /** The waiting rows' seqs whose remote end is kept as text (log_odd). */
  #odd: number[] = [];
  /** How many rows wait. */
  #waiting = 0;
  /** The last clock reading and its ISO text: a burst of items in one millisecond formats it once. */
  #clock = { ms: Number.NaN, iso: '' };
  #flushScheduled = false;
  #lastSeq: number;
  #retentionTimer: NodeJS.Timeout | undefined;
  #retentionRun: Promise<number> | undefined;
  #closed = false;
  readonly #scanBudget: number;
  readonly #timeBudgetMs: number;

  private constructor(path: string, db: Database.Database, options: SqliteLogStoreOptions) {
    this.path = path;
    this.#scanBudget = options.textScanBudget ?? TEXT_SCAN_BUDGET;
    this.#timeBudgetMs = options.queryTimeBudgetMs ?? QUERY_TIME_BUDGET_MS;
    this.#db = db;
    this.#now = options.now ?? Date.now;
    this.#retention = options.retention ?? {};
    this.#onError =
      options.onError ?? ((e) => process.emitWarning(`${e.message}`, { code: e.code, detail: e.suggestion }));
    // 8 KiB pages (a new file only): about 5% more inserts per CPU second than 4 KiB, the same bytes per item.
    db.pragma('page_size = 8192');
    db.pragma('journal_mode = WAL');
    db.pragma('synchronous = NORMAL');
    // 16 MiB of page cache: the engine's memory budget (issue 5) is 200 MB; the OS caches the file as well.
    db.pragma('cache_size = -16384');
    prepareSchema(db, path);
    const row = `(${LOG_COLUMNS.map(() => '?').join(', ')})`;
    const insert = `INSERT OR FAIL INTO log (${LOG_COLUMNS.join(', ')}) VALUES `;
    this.#insertOne = db.prepare(insert + row);
    this.#insertMany = db.prepare(insert + Array(ROWS_PER_INSERT).fill(row).join(', '));
    this.#saveSpan = db.prepare(
      `INSERT INTO log_span (block, min_ms, max_ms, untimed) VALUES (?, ?, ?, ?) ON CONFLICT (block) DO UPDATE SET
        min_ms = coalesce(min(min_ms, excluded.min_ms), min_ms, excluded.min_ms),
        max_ms = coalesce(max(max_ms, excluded.max_ms), max_ms, excluded.max_ms),
        untimed = max(untimed, excluded.untimed)`,
    );
    this.#saveLastSeq = db.prepare(
      "INSERT INTO state (key, value) VALUES ('lastSeq', ?) ON CONFLICT (key) DO UPDATE SET value = max(value, excluded.value)",
    );
    const stored = db.prepare('SELECT max(seq) AS seq FROM log').get() as { seq: number | null };
    const recorded = db.prepare("SELECT value FROM state WHERE key = 'lastSeq'").get() as
      | { value: number }
      | undefined;
    this.#lastSeq = Math.max(stored.seq ?? 0, recorded?.value ?? 0);
    this.#dict = new LogDictionary(
      db.prepare('SELECT id, value, fields, last FROM dict').all() as {
        id: number;
        value: string;
        fields: number;
        last: number;
      }[],
    );
    this.#addEntry = db.prepare('INSERT INTO dict (id, value, fields, last) VALUES (?, ?, ?, ?)');
    this.#widenEntry = db.prepare('UPDATE dict SET fields = ?, last = ? WHERE id = ?');
    this.#addLocal = db.prepare('INSERT OR IGNORE INTO log_local (addr, block) VALUES (?, ?)');
    this.#addApp = db.prepare('INSERT OR IGNORE INTO log_app (app, block) VALUES (?, ?)');
    this.#addOdd = db.prepare('INSERT INTO log_odd (seq) VALUES (?)');
    this.#setCount = db.prepare(
      "UPDATE log SET extra = json_set(coalesce(extra, '{}'), '$.count', ?) WHERE seq = ?",
    );
    const window = options.repeatWindowMs ?? 0;
    this.#repeats = window > 0 ? new RepeatCoalescer(window) : undefined;
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
      // Log items name users, addresses and programs: owner only, an older looser file included
      // (SQLite gives -wal and -shm the mode of the database file).
      tightenFiles([path, `${path}-wal`, `${path}-shm`], { create: path });
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
    let key: string | undefined;
    if (this.#repeats !== undefined && item.kind === 'connection') {
      key = repeatKey(item);
      const ms = this.#now();
      const first = this.#repeats.repeat(key, ms);
      if (first !== undefined) {
        // Its raised count is written with the next batch (after its row when that batch holds it).
        this.#counts.set(first.seq, first.count);
        this.#scheduleFlush();
        // The first attempt's item as stored now: the repeat has every field of it but these.
        const stored = Object.assign({}, item) as LogItem;
        stored.seq = first.seq;
        stored.time = first.time;
        stored.count = first.count;
        return stored;
      }
    }
    // Same keys in the same order as `{ ...item, seq, time }`, which V8 (Node 20) builds several times slower.
    const stored = Object.assign({}, item) as LogItem;
    // No secret travels in an item (consoles, syslog): admin, security and system messages are redacted.
    if (stored.kind !== 'connection') stored.message = redactText(stored.message);
    const seq = ++this.#lastSeq;
    stored.seq = seq;
    let ms: number;
    let iso = true;
    if (item.time === undefined) {
      ms = this.#now();
      if (ms !== this.#clock.ms) this.#clock = { ms, iso: new Date(ms).toISOString() };
      stored.time = this.#clock.iso;
    } else {
      stored.time = item.time;
      ms = Date.parse(item.time);
      iso = !Number.isNaN(ms) && new Date(ms).toISOString() === item.time;
    }
    this.#encode(stored, ms, iso);
    if (key !== undefined) this.#repeats!.remember(key, stored, this.#clock.ms);
    if (this.#waiting >= BATCH_SIZE) this.flush();
    else this.#scheduleFlush();
    for (const l of this.#listeners) l(stored);
    return stored;
  }

  /**
   * Encodes the item's row into the waiting batch now: the batch holds integers and a few strings,
   * not the items (which die young), so that collecting garbage copies less while it waits.
   */
  #encode(item: LogItem, ms: number, iso: boolean): void {
    this.#dict.useEpoch(Math.floor(item.seq / EPOCH_ITEMS));
    try {
      // pushRowValues pushes the whole row in one call, after everything that can throw.
      if (pushRowValues(this.#chunk, item, ms, iso, this.#dict)) this.#odd.push(item.seq);
    } catch (e) {
      this.#onError(this.#wrap(e, `cannot encode log item ${item.seq} for ${this.path}`));
      return;
    }
    this.#waiting++;
    if (this.#chunk.length === ROWS_PER_INSERT * LOG_COLUMNS.length) {
      this.#chunks.push(this.#chunk);
      this.#chunk = [];
    }
  }

  #scheduleFlush(): void {
    if (this.#flushScheduled) return;
    this.#flushScheduled = true;
    setTimeout(() => {
      this.#flushScheduled = false;
      this.flush();
    }, FLUSH_DELAY_MS);
  }

  /** Writes the waiting items in one transaction now. A failure goes to `onError` and drops the batch. */
  flush(): void {
    if ((this.#waiting === 0 && this.#counts.size === 0) || !this.#db.open) return;
    const batch: Batch = { chunks: this.#chunks, tail: this.#chunk, odd: this.#odd, counts: this.#counts };
    const count = this.#waiting;
    this.#chunks = [];
    this.#chunk = [];
    this.#odd = [];
    this.#counts = new Map();
    this.#waiting = 0;
    try {
      this.#transaction ??= this.#db.transaction((batch: Batch) => this.#writeBatch(batch));
      this.#transaction(batch);
      this.#dict.written();
    } catch (e) {
      this.#dict.forgetPending();
      this.#onError(this.#wrap(e, `cannot write ${count} log items to ${this.path}`));
    }
  }

  /**
   * In one transaction: the rows (ROWS_PER_INSERT to a statement), their new dictionary entries (and
   * the newer epoch of old ones), the spans and local address blocks of their seqs, the counts
   * raised, and the highest number (kept even when retention empties the table).
   */
  #writeBatch({ chunks, tail, odd, counts }: Batch): void {
    const width = LOG_COLUMNS.length;
    for (const chunk of chunks) this.#insertMany.run(chunk);
    for (let at = 0; at < tail.length; at += width) this.#insertOne.run(tail.slice(at, at + width));
    /** Local address (application) id -> the block of SPAN_ITEMS seqs log_local (log_app) last got for it in this batch. */
    const locals = new Map<number, number>();
    const apps = new Map<number, number>();
    const span = { block: -1, min: Number.POSITIVE_INFINITY, max: Number.NEGATIVE_INFINITY, untimed: 0 };
    const saveSpan = () => {
      if (span.block < 0) return;
      const finite = span.min !== Number.POSITIVE_INFINITY;
      this.#saveSpan.run(span.block, finite ? span.min : null, finite ? span.max : null, span.untimed);
    };
    for (const rows of [...chunks, tail]) {
      for (let at = 0; at < rows.length; at += width) {
        const seq = rows[at] as number;
        const ms = rows[at + 1] as number | null;
        const local = rows[at + LOCAL_ADDR] as number | null;
        const block = Math.floor(seq / SPAN_ITEMS);
        if (local !== null && locals.get(local) !== block) {
          locals.set(local, block);
          this.#addLocal.run(local, block);
        }
        const app = rows[at + APPLICATION] as number | null;
        if (app !== null && apps.get(app) !== block) {
          apps.set(app, block);
          this.#addApp.run(app, block);
        }
        if (block !== span.block) {
          saveSpan();
          span.block = block;
          span.min = Number.POSITIVE_INFINITY;
          span.max = Number.NEGATIVE_INFINITY;
          span.untimed = 0;
        }
        if (ms === null) span.untimed = 1;
        else {
          if (ms < span.min) span.min = ms;
          if (ms > span.max) span.max = ms;
        }
      }
    }
    saveSpan();
    for (const seq of odd) this.#addOdd.run(seq);
    const { added, changed } = this.#dict.pending();
    for (const e of added) this.#addEntry.run(e.id, e.value, e.fields, e.last);
    for (const e of changed) this.#widenEntry.run(e.fields, e.last, e.id);
    for (const [seq, count] of counts) this.#setCount.run(count, seq);
    this.#saveLastSeq.run(this.#lastSeq);
  }
  #transaction: ((batch: Batch) => void) | undefined;

  query(q: LogQueryParsed): { items: LogItem[]; lastSeq: number; searchedTo?: number } {
    this.flush();
    try {
      return { ...this.#select(q, q.limit), lastSeq: this.#lastSeq };
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
  exportJsonLines(q: LogExportQuery, out: Writable): Promise<number> {
    return writeJsonLines(q, out, (from, max) => {
      this.flush();
      try {
        return this.#select({ ...q, fromSeq: from }, max);
      } catch (e) {
        throw this.#wrap(e, `cannot export from log store ${this.path}`);
      }
    });
  }

  /**
   * Deletes what the retention settings say to, oldest first, in transactions
   * of RETENTION_BATCH rows with a turn of the event loop between them.
   * Resolves to the number of items deleted. Runs once at a time.
   */
  applyRetention(): Promise<number> {
    this.#retentionRun ??= retain({
      db: this.#db,
      dict: this.#dict,
      retention: this.#retention,
      now: this.#now,
      closed: () => this.#closed,
      flush: () => this.flush(),
      lastSeq: () => this.#lastSeq,
    }).finally(() => {
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

  /**
   * The matching items, `limit` at most, oldest first, read in windows of seqs by SELECTs that
   * apply the filters (and for a `text`, the dictionary's narrowing: textPlan); a `text` is then
   * compared in JS, exactly as logItemMatches. Stops after TEXT_SCAN_BUDGET rows compared or the
   * time budget, with `searchedTo`.
   */
  #select(q: Omit<LogQueryParsed, 'limit'>, limit: number): Selection {
    const range = this.#seqRange(q);
    if (range === undefined) return { items: [] };
    const { from } = range;
    // Nothing is stored after lastSeq (the batch was flushed): the windows below end there.
    const to = Math.min(range.to, this.#lastSeq);
    const deadline = performance.now() + this.#timeBudgetMs;
    const needle = q.text?.toLowerCase();
    const filter = filters(q, this.#dict);
    if (filter === undefined) return { items: [] };
    const plan = needle === undefined ? {} : textPlan(needle, this.#dict);
    const where = plan.where === undefined ? filter.where : [...filter.where, plan.where];
    // The indexed selection of seqs: the filter's (an address) before the text's (hosts, applications).
    const seqs = filter.seqs ?? plan.seqs;
    const sql = `SELECT ${ITEM_COLUMNS} FROM log WHERE ${
      seqs === undefined ? 'log.seq BETWEEN @lo AND @hi' : `log.seq IN (${seqs})`
    }${where.map((w) => ` AND ${w}`).join('')} ORDER BY log.seq`;
    // A text plan's SQL names dictionary ids: prepared for this query only, not kept.
    const select = plan.where === undefined ? this.#statement(sql) : this.#db.prepare(sql);
    const items: LogItem[] = [];
    // Rows are read in seq order (a text compared in JS); the read stops after TEXT_SCAN_BUDGET rows or
    // the time budget so that no query holds the engine (and the connections waiting for verdicts) long.
    let examined = 0;
    let searchedTo: number | undefined;
    // SQLite may read a whole window without handing a row back (its conditions reject them): windows
    // start small and grow while they are fast, so that the time budget is checked often enough.
    let window = MIN_WINDOW;
    for (let lo = from, hi = 0; lo <= to && items.length < limit && searchedTo === undefined; lo = hi + 1) {
      // A window lies within one epoch: the host and remote address indexes are sought by epoch.
      const epoch = Math.floor(lo / EPOCH_ITEMS);
      hi = Math.min(to, lo + window - 1, (epoch + 1) * EPOCH_ITEMS - 1);
      const started = performance.now();
      for (const row of select.iterate({ ...filter.args, lo, hi, epoch }) as Iterable<LogRow>) {
        const item = itemOfRow(row, this.#dict);
        if (needle === undefined || logItemSearchText(item).includes(needle)) items.push(item);
        if (items.length >= limit) break;
        if (
          ++examined >= this.#scanBudget ||
          (examined % TIME_CHECK_ROWS === 0 && performance.now() > deadline)
        ) {
          searchedTo = row.seq;
          break;
        }
      }
      const now = performance.now();
      if (searchedTo === undefined && items.length < limit && hi < to && now > deadline) searchedTo = hi;
      const took = now - started;
      if (took < this.#timeBudgetMs / 8) window = Math.min(SCAN_WINDOW, window * 2);
      else if (took > this.#timeBudgetMs / 4) window = Math.max(MIN_WINDOW, window / 2);
    }
    return searchedTo === undefined || items.length >= limit ? { items } : { items, searchedTo };
  }

  /** The seqs that can hold items of the query's time bounds, from the blocks' spans; undefined when none can. */
  #seqRange(q: Omit<LogQueryParsed, 'limit'>): { from: number; to: number } | undefined {
    let from = q.fromSeq ?? 1;
    let to = Number.MAX_SAFE_INTEGER;
    if (q.since !== undefined) {
      const first = this.#statement('SELECT min(block) FROM log_span WHERE max_ms >= ? OR untimed')
        .pluck()
        .get(Date.parse(q.since)) as number | null;
      if (first === null) return undefined;
      from = Math.max(from, first * SPAN_ITEMS);
    }
    if (q.until !== undefined) {
      const last = this.#statement('SELECT max(block) FROM log_span WHERE min_ms <= ? OR untimed')
        .pluck()
        .get(Date.parse(q.until)) as number | null;
      if (last === null) return undefined;
      to = (last + 1) * SPAN_ITEMS - 1;
    }
    return from <= to ? { from, to } : undefined;
  }

  #statement(sql: string): Database.Statement {
    let statement = this.#selects.get(sql);
    if (statement === undefined) {
      statement = this.#db.prepare(sql);
      this.#selects.set(sql, statement);
    }
    return statement;
  }

  #wrap(e: unknown, what: string): WardenError {
    if (e instanceof WardenError) return e;
    if (isCorruption(e)) return corruptError(this.path, e);
    return new WardenError(ErrorCode.INTERNAL, `${what}: ${e instanceof Error ? e.message : String(e)}`, {
      cause: e,
    });
  }
}
