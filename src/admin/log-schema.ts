/**
 * The log store's tables and their versions (SQLite `user_version`).
 *
 * Version 2 (this one): `log` with integer-coded kind and verdict and the
 * unfiltered fields packed (see log-row.ts); `log_span`, the oldest and newest
 * time (ms) in each block of SPAN_ITEMS seqs, which turns since/until into a
 * seq range and drives retention by age without an index on time; an FTS5 trigram index `log_text`
 * over each item's search text that is filled behind the writes (state key
 * `textSeq` = the highest seq indexed), and `state`.
 * Version 1 (user_version 0 with a `search` column in `log`, Warden before the
 * change) is migrated in place, in one transaction, when the store opens.
 * A newer version is refused (LOG_STORE_VERSION) rather than misread.
 */
import type Database from 'better-sqlite3';
import { ErrorCode, WardenError } from '../errors.js';
import { LOG_KINDS } from '../protocol/log-item.js';
import { VERDICTS } from './log-row.js';

export const SCHEMA_VERSION = 2;

/** Items per block of `log_span` (block = floor(seq / SPAN_ITEMS)). */
export const SPAN_ITEMS = 1024;

/** Fills `log_span` from `log` (after a migration, or a bulk load in SQL). */
export const REBUILD_SPANS = `
DELETE FROM log_span;
INSERT INTO log_span (block, min_ms, max_ms, untimed)
SELECT seq / ${SPAN_ITEMS}, min(time_ms), max(time_ms), max(time_ms IS NULL) FROM log GROUP BY seq / ${SPAN_ITEMS};
`;

const SCHEMA = `
CREATE TABLE log (
  seq INTEGER PRIMARY KEY,
  time_ms INTEGER,
  time TEXT,
  kind INTEGER NOT NULL,
  verdict INTEGER,
  application TEXT,
  local_address TEXT,
  remote_address TEXT,
  fields TEXT NOT NULL
);
-- Only the rare items (not connections; verdict reject or ask): the bulk is written without touching them.
CREATE INDEX log_rare_kind ON log (kind, seq) WHERE kind > 0;
CREATE INDEX log_rare_verdict ON log (verdict, seq) WHERE verdict > 1;
CREATE INDEX log_application ON log (application, verdict, seq);
CREATE INDEX log_local_address ON log (local_address, seq);
CREATE INDEX log_remote_address ON log (remote_address, seq);
CREATE VIRTUAL TABLE log_text USING fts5 (
  search, content = '', contentless_delete = 1, tokenize = 'trigram case_sensitive 1', detail = 'none'
);
CREATE TRIGGER log_text_delete AFTER DELETE ON log BEGIN DELETE FROM log_text WHERE rowid = old.seq; END;
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
    if (hasLog) migrateFromVersion1(db);
    else db.exec(SCHEMA);
    db.pragma(`user_version = ${SCHEMA_VERSION}`);
  })();
}

const V1_PACKED = ['direction', 'protocol', 'local', 'remote', 'host', 'rule', 'user', 'source', 'message'];

/**
 * Version 1 kept one column per field and a lower-cased search text; every row
 * is rewritten by one INSERT ... SELECT that packs as log-row.ts does (the JSON
 * form when a value holds U+001F, U+001E or NUL).
 */
function migrateFromVersion1(db: Database.Database): void {
  db.exec('ALTER TABLE log RENAME TO log_v1');
  for (const index of ['log_time', 'log_application', 'log_local_address', 'log_remote_address'])
    db.exec(`DROP INDEX IF EXISTS ${index}`);
  db.exec(SCHEMA);
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
${REBUILD_SPANS}`);
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
