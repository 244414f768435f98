/**
 * A big log store for benchmarks, made in SQL (one INSERT ... SELECT over a
 * recursive CTE, the indexes built after the rows) in the layout of
 * src/admin/log-row.ts (schema version 4): far faster than appending item by
 * item. Items look like bench item(i). The indexes are built in one pass, so
 * the file is somewhat smaller than one the engine fills item by item (the
 * log-store bench measures that one's size).
 */
import Database from 'better-sqlite3';
import { FIELD } from '../src/admin/log-dict.js';
import { EPOCH_SHIFT, REBUILD_APPS, REBUILD_LOCAL, REBUILD_SPANS } from '../src/admin/log-schema.js';
import { SqliteLogStore } from '../src/admin/sqlite-log-store.js';
import type { NewLogItem } from '../src/protocol/log-item.js';

export const T0 = Date.parse('2026-01-01T00:00:00Z');

/** Item number i, as the SQL below makes it (the time is T0 + 10 ms * i). */
export function benchItem(i: number): NewLogItem {
  return {
    kind: 'connection',
    verdict: i % 4 === 0 ? 'deny' : 'allow',
    direction: 'outgoing',
    protocol: 'tcp',
    application: `/usr/bin/app${i % 100}`,
    local: `10.0.0.1:${30000 + (i % 30000)}`,
    remote: `93.184.${(i >> 8) % 256}.${i % 256}:443`,
    host: `host${i % 5000}.example.com`,
    rule: `rule-${i % 50}`,
    message: `Outgoing TCP connection ${i}`,
  };
}

/** Dictionary ids of the fixture's strings. */
const ID = { outgoing: 1, tcp: 2, local: 3, template: 4, app: 5, rule: 105, host: 155 } as const;

/** Creates the store at `path` holding items 0 .. rows-1 (seq i+1). */
export async function makeLogStore(path: string, rows: number): Promise<void> {
  await SqliteLogStore.open(path).close();
  const db = new Database(path);
  db.pragma('journal_mode = DELETE'); // one big transaction: no WAL copy of every page (OFF is refused after WAL)
  db.pragma('synchronous = OFF');
  db.pragma('cache_size = -262144');
  const other = FIELD.other;
  // Every entry is used by the newest rows: its last epoch is theirs.
  const last = rows >> EPOCH_SHIFT;
  db.exec(`
INSERT INTO dict (id, value, fields, last) VALUES (${ID.outgoing}, 'outgoing', ${other}, ${last}),
  (${ID.tcp}, 'tcp', ${other}, ${last}), (${ID.local}, '10.0.0.1', ${other}, ${last}),
  (${ID.template}, 'Outgoing TCP connection ' || char(1), ${FIELD.message}, ${last});
WITH RECURSIVE n(k) AS (SELECT 0 UNION ALL SELECT k + 1 FROM n WHERE k < 4999)
INSERT INTO dict (id, value, fields, last)
SELECT ${ID.app} + k, '/usr/bin/app' || k, ${FIELD.application}, ${last} FROM n WHERE k < 100
UNION ALL SELECT ${ID.rule} + k, 'rule-' || k, ${FIELD.rule}, ${last} FROM n WHERE k < 50
UNION ALL SELECT ${ID.host} + k, 'host' || k || '.example.com', ${FIELD.host}, ${last} FROM n;
`);
  // The rows first, the indexes after: one sort per index instead of 10M scattered inserts.
  const indexes = db
    .prepare(
      "SELECT name, sql FROM sqlite_schema WHERE type = 'index' AND tbl_name = 'log' AND sql IS NOT NULL",
    )
    .all() as { name: string; sql: string }[];
  for (const { name } of indexes) db.exec(`DROP INDEX ${name}`);
  db.exec(`
WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i < ${rows - 1})
INSERT INTO log (seq, time_ms, kind, verdict, direction, protocol, application, local_addr, local_port,
  remote_addr, remote_port, host, rule, message, args)
SELECT i + 1, ${T0} + i * 10, 0, CASE WHEN i % 4 = 0 THEN 1 ELSE 0 END, ${ID.outgoing}, ${ID.tcp},
  ${ID.app} + i % 100, ${ID.local}, 30000 + i % 30000, (93 << 24) | (184 << 16) | (((i >> 8) % 256) << 8) | (i % 256),
  443, ${ID.host} + i % 5000, ${ID.rule} + i % 50, ${ID.template}, i
FROM n;
${REBUILD_SPANS}
${REBUILD_LOCAL}
${REBUILD_APPS}
INSERT INTO state (key, value) VALUES ('lastSeq', ${rows}) ON CONFLICT (key) DO UPDATE SET value = excluded.value;
`);
  for (const { sql } of indexes) db.exec(sql);
  db.exec('ANALYZE');
  db.pragma('journal_mode = WAL');
  db.close();
}
