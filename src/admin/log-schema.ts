/**
 * The log store's tables and their versions (SQLite `user_version`).
 *
 * Version 5 (this one): `log` with compact integer rows (log-row.ts), the
 * strings that repeat in `dict` (log-dict.ts; each entry with the newest epoch
 * of EPOCH_ITEMS seqs a row used it in, so that retention can delete the
 * entries no row uses any more); `log_span`, the oldest and newest time (ms)
 * in each block of SPAN_ITEMS seqs, which turns since/until into a seq range
 * and drives retention by age without an index on time; `log_local` and
 * `log_app`, the blocks each local address and each application occurs in;
 * and `state`. The indexes of the keys
 * with many values (host, remote address) lead with the epoch, so that an
 * insert touches only the current epoch's part of them, whatever the size of
 * the store. There is no per-row text index: a text search finds the
 * dictionary entries holding the needle's words, then the rows using them.
 * Version 4 (an index of the application over every row, which cost an
 * append a sixth of its rate) is migrated in place: the index dropped, `log_app` filled.
 * Version 3 (indexes of host, remote and local address over the whole store,
 * a dictionary without epochs) is migrated in place: its indexes rebuilt.
 * Version 2 (one text column of packed fields and an FTS5 trigram index over
 * every row) and version 1 (user_version 0 with a `search` column in `log`)
 * are migrated in place, in one transaction, when the store opens.
 * A newer version is refused (LOG_STORE_VERSION) rather than misread.
 */
import type Database from 'better-sqlite3';
import { ErrorCode, WardenError } from '../errors.js';
import { LOG_KINDS } from '../protocol/log-item.js';
import { LogDictionary } from './log-dict.js';
import { LOG_COLUMNS, ODD_REMOTE, pushRowValues, VERDICTS } from './log-row.js';
import { itemOfV2Row, type V2Row } from './log-row-v2.js';

export const SCHEMA_VERSION = 5;

/** Items per block of `log_span` (block = floor(seq / SPAN_ITEMS)). */
export const SPAN_ITEMS = 1024;
/** log2 of EPOCH_ITEMS. */
export const EPOCH_SHIFT = 16;
/**
 * Seqs per epoch (epoch = seq >> EPOCH_SHIFT): the leading key of the host and remote address
 * indexes (a query seeks them epoch by epoch), and the unit of a dictionary entry's `last` use.
 */
export const EPOCH_ITEMS = 2 ** EPOCH_SHIFT;

/** Fills `log_local` from `log` (after a migration, or a bulk load in SQL). */
export const REBUILD_LOCAL = `
DELETE FROM log_local;
INSERT INTO log_local (addr, block) SELECT DISTINCT local_addr, seq >> 10 FROM log WHERE local_addr IS NOT NULL;
`;
if (SPAN_ITEMS !== 1 << 10)
  throw new Error('log-schema: REBUILD_LOCAL and REBUILD_APPS assume blocks of 1024 seqs');

/** Fills `log_app` from `log` (after a migration, or a bulk load in SQL). */
export const REBUILD_APPS = `
DELETE FROM log_app;
INSERT INTO log_app (app, block) SELECT DISTINCT application, seq >> 10 FROM log WHERE application IS NOT NULL;
`;

/**
 * The blocks of SPAN_ITEMS seqs each application occurs in, written by the store with the rows: an
 * index of the application over every row took a page per application per batch, anywhere in the
 * index, and its page splits in the middle of the tree: an append cost a sixth more with it
 * (bench:log-store, 150k against 180k appends per CPU second). A query by application reads the
 * rows of the blocks listed for it (log-query-sql.ts).
 */
const APP_BLOCKS = `
CREATE TABLE log_app (app INTEGER NOT NULL, block INTEGER NOT NULL, PRIMARY KEY (app, block)) WITHOUT ROWID;
`;

/** Fills `log_span` from `log` (after a migration, or a bulk load in SQL). */
export const REBUILD_SPANS = `
DELETE FROM log_span;
INSERT INTO log_span (block, min_ms, max_ms, untimed)
SELECT seq / ${SPAN_ITEMS}, min(time_ms), max(time_ms), max(time_ms IS NULL) FROM log GROUP BY seq / ${SPAN_ITEMS};
`;

/**
 * Keys with many values, led by the epoch: an insert lands in the current epoch's part of the index
 * (a few hundred pages, in the cache), where an index of the key alone took a page anywhere in the
 * whole store per value: a batch of 10,000 items then wrote a page per host to the WAL, ever more
 * as the store grew (117k appends per CPU second at 1M items, falling to 72k at its end).
 * A query seeks them with `(seq >> 16) = @epoch` (EPOCH_SHIFT), a window of seqs never spanning two epochs.
 */
const EPOCH_INDEXES = `
CREATE INDEX log_host ON log (seq >> ${EPOCH_SHIFT}, host);
CREATE INDEX log_remote_addr ON log (seq >> ${EPOCH_SHIFT}, remote_addr);
-- The blocks of SPAN_ITEMS seqs each local address occurs in (few values, in nearly every item:
-- an index of every row cost 11 bytes an item), written by the store with the rows.
CREATE TABLE log_local (addr INTEGER NOT NULL, block INTEGER NOT NULL, PRIMARY KEY (addr, block)) WITHOUT ROWID;
`;

/** The `log` table and its indexes (log-row.ts says what each column holds). */
export const LOG_TABLE = `
CREATE TABLE log (
  seq INTEGER PRIMARY KEY,
  time_ms INTEGER,
  kind INTEGER NOT NULL,
  verdict INTEGER,
  direction INTEGER,
  protocol INTEGER,
  application INTEGER,
  local_addr INTEGER,
  local_port INTEGER,
  remote_addr INTEGER,
  remote_port INTEGER,
  host INTEGER,
  rule INTEGER,
  user INTEGER,
  message INTEGER NOT NULL,
  args INTEGER,
  extra TEXT
);
-- Only the rare items (not connections; verdict reject or ask): the bulk is written without touching them.
CREATE INDEX log_rare_kind ON log (kind) WHERE kind > 0;
CREATE INDEX log_rare_verdict ON log (verdict) WHERE verdict > 1;
${APP_BLOCKS}
${EPOCH_INDEXES}
-- The seqs of the items whose remote end is kept as text (ODD_REMOTE; a text search reads them all),
-- written by the store with their rows: a partial index on the type made every insert ~15% dearer.
CREATE TABLE log_odd (seq INTEGER PRIMARY KEY);
CREATE TRIGGER log_odd_delete AFTER DELETE ON log WHEN ${ODD_REMOTE.replace('remote_port', 'old.remote_port')}
BEGIN DELETE FROM log_odd WHERE seq = old.seq; END;
`;

/** `last`: the newest epoch a row used the entry in (an upper bound: written when it grows). */
const DICT_TABLE =
  'CREATE TABLE dict (id INTEGER PRIMARY KEY, value TEXT NOT NULL, fields INTEGER NOT NULL, last INTEGER NOT NULL)';

const SCHEMA = `${LOG_TABLE}
${DICT_TABLE};
CREATE TABLE log_span (block INTEGER PRIMARY KEY, min_ms INTEGER, max_ms INTEGER, untimed INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS state (key TEXT PRIMARY KEY, value INTEGER NOT NULL);
`;

/** Creates, migrates or checks the tables of the log store in `db`. */
export function prepareSchema(db: Database.Database, path: string): void {
  const version = db.pragma('user_version', { simple: true }) as number;
  if (version === SCHEMA_VERSION) return;
  if (version > SCHEMA_VERSION) {
    throw new WardenError(
      ErrorCode.LOG_STORE_VERSION,
      `log store ${path} has schema version ${version}; this Warden reads version ${SCHEMA_VERSION}`,
      {
        suggestion: `run the newer Warden, or move the file aside (mv ${path} ${path}.new) to start an empty store`,
      },
    );
  }
  const hasLog = db.prepare("SELECT 1 FROM sqlite_schema WHERE type = 'table' AND name = 'log'").get();
  db.transaction(() => {
    if (hasLog && version >= 3) {
      if (version === 3) migrateFromVersion3(db);
      migrateFromVersion4(db);
    } else if (hasLog) {
      if (version < 2) migrateFromVersion1(db);
      migrateFromVersion2(db);
    } else db.exec(SCHEMA);
    db.pragma(`user_version = ${SCHEMA_VERSION}`);
  })();
}

const V1_PACKED = ['direction', 'protocol', 'local', 'remote', 'host', 'rule', 'user', 'source', 'message'];

/**
 * Version 1 kept one column per field and a lower-cased search text; every row
 * is rewritten by one INSERT ... SELECT into the version 2 layout (log-row-v2.ts;
 * the JSON form when a value holds U+001F, U+001E or NUL), which version 2's migration then reads.
 */
function migrateFromVersion1(db: Database.Database): void {
  db.exec('ALTER TABLE log RENAME TO log_v1');
  for (const index of ['log_time', 'log_application', 'log_local_address', 'log_remote_address'])
    db.exec(`DROP INDEX IF EXISTS ${index}`);
  db.exec(`CREATE TABLE log (seq INTEGER PRIMARY KEY, time_ms INTEGER, time TEXT, kind INTEGER NOT NULL,
    verdict INTEGER, application TEXT, local_address TEXT, remote_address TEXT, fields TEXT NOT NULL)`);
  const odd = V1_PACKED.map((f) => `instr(${f}, char(31)) OR instr(${f}, char(30)) OR instr(${f}, char(0))`);
  const joined = V1_PACKED.map((f) => `coalesce(${f}, char(0))`).join(' || char(31) || ');
  const json = `char(30) || json_patch('{}', json_object(${V1_PACKED.map((f) => `'${f}', ${f}`).join(', ')}))`;
  const code = (column: string, names: readonly string[]) =>
    `CASE ${column} ${names.map((n, i) => `WHEN '${n}' THEN ${i}`).join(' ')} END`;
  db.exec(`
INSERT INTO log (seq, time_ms, time, kind, verdict, application, local_address, remote_address, fields)
SELECT seq, time_ms, time, ${code('kind', LOG_KINDS)}, ${code('verdict', VERDICTS)}, application, local_address,
  remote_address, CASE WHEN ${odd.join(' OR ')} THEN ${json} ELSE ${joined} END
FROM log_v1;
DROP TABLE log_v1;
CREATE TABLE IF NOT EXISTS log_span (block INTEGER PRIMARY KEY, min_ms INTEGER, max_ms INTEGER, untimed INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS state (key TEXT PRIMARY KEY, value INTEGER NOT NULL);
${REBUILD_SPANS}`);
}

/** Rows a migration from version 2 reads and writes per statement. */
const MIGRATE_STEP = 10_000;

/**
 * Version 2 packed the unfiltered fields into one text column and indexed
 * every row's text (FTS5): each row is read, decoded and written again in the
 * current layout with the same seq and time, so nothing stored is lost; the
 * text index is dropped (its pages are reused by the new rows).
 */
function migrateFromVersion2(db: Database.Database): void {
  db.exec('ALTER TABLE log RENAME TO log_v2');
  for (const index of [
    'log_rare_kind',
    'log_rare_verdict',
    'log_application',
    'log_local_address',
    'log_remote_address',
  ])
    db.exec(`DROP INDEX IF EXISTS ${index}`);
  db.exec('DROP TRIGGER IF EXISTS log_text_delete; DROP TABLE IF EXISTS log_text');
  db.exec(LOG_TABLE);
  db.exec(DICT_TABLE);
  const dict = new LogDictionary();
  const read = db.prepare(
    'SELECT seq, time_ms, time, kind, verdict, application, fields FROM log_v2 WHERE seq > ? ORDER BY seq LIMIT ?',
  );
  const insert = db.prepare(
    `INSERT INTO log (${LOG_COLUMNS.join(', ')}) VALUES (${LOG_COLUMNS.map(() => '?').join(', ')})`,
  );
  const odd = db.prepare('INSERT INTO log_odd (seq) VALUES (?)');
  const add = db.prepare('INSERT INTO dict (id, value, fields, last) VALUES (?, ?, ?, ?)');
  const widen = db.prepare('UPDATE dict SET fields = ?, last = ? WHERE id = ?');
  const values: unknown[] = [];
  for (let from = 0; ; ) {
    const rows = read.all(from, MIGRATE_STEP) as V2Row[];
    for (const row of rows) {
      const item = itemOfV2Row(row);
      dict.useEpoch(row.seq >> EPOCH_SHIFT);
      const oddRemote = pushRowValues(values, item, row.time_ms ?? Number.NaN, row.time === null, dict);
      insert.run(values);
      if (oddRemote) odd.run(row.seq);
      values.length = 0;
    }
    const { added, changed } = dict.pending();
    for (const e of added) add.run(e.id, e.value, e.fields, e.last);
    for (const e of changed) widen.run(e.fields, e.last, e.id);
    dict.written();
    if (rows.length < MIGRATE_STEP) break;
    from = rows[rows.length - 1]!.seq;
  }
  db.exec(`DROP TABLE log_v2; DELETE FROM state WHERE key = 'textSeq'; ${REBUILD_LOCAL} ${REBUILD_APPS}`);
}

/**
 * Version 3 indexed host, remote and local address over the whole store and kept no epochs in
 * `dict`: the indexes are built again (one sort each), `log_local` filled, and every entry marked
 * as used in the newest epoch (retention deletes it once the rows of that epoch are gone, unless
 * a newer row uses it).
 */
function migrateFromVersion3(db: Database.Database): void {
  db.exec(`DROP INDEX IF EXISTS log_host; DROP INDEX IF EXISTS log_remote_addr; DROP INDEX IF EXISTS log_local_addr;
${EPOCH_INDEXES}
${REBUILD_LOCAL}
ALTER TABLE dict ADD COLUMN last INTEGER NOT NULL DEFAULT 0;
UPDATE dict SET last = coalesce((SELECT max(seq) FROM log), 0) >> ${EPOCH_SHIFT};`);
}

/** Version 4 indexed the application of every row: the index is dropped, `log_app` filled. */
function migrateFromVersion4(db: Database.Database): void {
  db.exec(`DROP INDEX IF EXISTS log_application;
${APP_BLOCKS}
${REBUILD_APPS}`);
}

/** True for the SQLite errors that mean "this file is not (any more) a sound database". */
export function isCorruption(e: unknown): boolean {
  const code = (e as { code?: unknown } | null)?.code;
  return code === 'SQLITE_NOTADB' || code === 'SQLITE_CORRUPT' || code === 'SQLITE_CORRUPT_VTAB';
}

/** LOG_STORE_CORRUPT naming the file and what SQLite said. */
export function corruptError(path: string, e: unknown): WardenError {
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
