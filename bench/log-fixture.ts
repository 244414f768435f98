/**
 * A big log store for benchmarks, made in SQL (one INSERT ... SELECT over a
 * recursive CTE) in the layout of src/admin/log-row.ts, with its text index:
 * far faster than appending item by item. Items look like bench item(i).
 */
import Database from 'better-sqlite3';
import { REBUILD_SPANS } from '../src/admin/log-schema.js';
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

/** Creates the store at `path` holding items 0 .. rows-1 (seq i+1), text index complete. */
export async function makeLogStore(path: string, rows: number): Promise<void> {
  await SqliteLogStore.open(path).close();
  const db = new Database(path);
  db.pragma('journal_mode = DELETE'); // one big transaction: no WAL copy of every page (OFF is refused after WAL)
  db.pragma('synchronous = OFF');
  db.pragma('cache_size = -262144');
  const remote = `'93.184.' || ((i >> 8) % 256) || '.' || (i % 256)`;
  const fields = [
    "'outgoing'",
    "'tcp'",
    "'10.0.0.1:' || (30000 + i % 30000)",
    `${remote} || ':443'`,
    "'host' || (i % 5000) || '.example.com'",
    "'rule-' || (i % 50)",
    'char(0)',
    'char(0)',
    "'Outgoing TCP connection ' || i",
  ].join(' || char(31) || ');
  db.exec(`
WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i < ${rows - 1})
INSERT INTO log (seq, time_ms, time, kind, verdict, application, local_address, remote_address, fields)
SELECT i + 1, ${T0} + i * 10, NULL, 0, CASE WHEN i % 4 = 0 THEN 1 ELSE 0 END, '/usr/bin/app' || (i % 100),
  '10.0.0.1', ${remote}, ${fields}
FROM n;
WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i < ${rows - 1})
INSERT INTO log_text (rowid, search)
SELECT i + 1, lower('Outgoing TCP connection ' || i || ' /usr/bin/app' || (i % 100) || ' host' || (i % 5000) ||
  '.example.com rule-' || (i % 50) || ' ' || ${remote} || ':443')
FROM n;
${REBUILD_SPANS}
INSERT INTO state (key, value) VALUES ('lastSeq', ${rows}), ('textSeq', ${rows})
  ON CONFLICT (key) DO UPDATE SET value = excluded.value;
`);
  db.exec('ANALYZE');
  db.pragma('journal_mode = WAL');
  db.close();
}
