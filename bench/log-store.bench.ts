/**
 * Log store benchmark. Inserts per second through SqliteLogStore.append
 * (batched transactions) against a baseline of one transaction per item on the
 * same schema, measured in the same run; then filtered queries over a store of
 * BENCH_ROWS items (default 10 million, generated with one INSERT ... SELECT
 * over a recursive CTE), and the file size.
 * Run: npm run bench:log-store   (BENCH_ROWS=1000000 for a quicker run)
 */
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import Database from 'better-sqlite3';
import { SqliteLogStore } from '../src/admin/sqlite-log-store.js';
import { logQuerySchema, type NewLogItem } from '../src/protocol/log-item.js';

const dir = mkdtempSync(join(tmpdir(), 'warden-bench-log-'));
const fmt = (n: number, d = 0) =>
  n.toLocaleString('en-US', { maximumFractionDigits: d, minimumFractionDigits: d });
const T0 = Date.parse('2026-01-01T00:00:00Z');

function item(i: number): NewLogItem {
  return {
    time: new Date(T0 + i * 10).toISOString(),
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

function insertRate(path: string, count: number, perItemTransaction: boolean): number {
  const store = SqliteLogStore.open(path);
  const items = Array.from({ length: count }, (_, i) => item(i));
  const t0 = performance.now();
  for (const it of items) {
    store.append(it);
    if (perItemTransaction) store.flush();
  }
  store.flush();
  const seconds = (performance.now() - t0) / 1000;
  void store.close();
  return count / seconds;
}

const N = Number(process.env.BENCH_INSERTS ?? 200_000);
const batched = insertRate(join(dir, 'batched.db'), N, false);
const single = insertRate(join(dir, 'single.db'), Math.min(N, 20_000), true);
console.log(`inserts, batched transactions:        ${fmt(batched)} items/s`);
console.log(`inserts, one transaction per item:    ${fmt(single)} items/s (baseline)`);
console.log(`ratio batched / baseline:             ${fmt(batched / single, 1)}x`);

// A big store: created through SqliteLogStore (schema), filled in SQL, reopened.
const rows = Number(process.env.BENCH_ROWS ?? 10_000_000);
const big = join(dir, 'big.db');
await SqliteLogStore.open(big).close();
const t0 = performance.now();
const db = new Database(big);
db.pragma('journal_mode = WAL');
db.pragma('synchronous = OFF');
db.pragma('cache_size = -262144');
db.exec(`
WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i < ${rows - 1})
INSERT INTO log (seq, time, time_ms, kind, verdict, direction, protocol, application, local, remote,
  local_address, remote_address, host, rule, message, search)
SELECT i + 1, strftime('%Y-%m-%dT%H:%M:%fZ', (${T0} + i * 10) / 1000.0, 'unixepoch'), ${T0} + i * 10,
  'connection', CASE WHEN i % 4 = 0 THEN 'deny' ELSE 'allow' END, 'outgoing', 'tcp', '/usr/bin/app' || (i % 100),
  '10.0.0.1:' || (30000 + i % 30000), '93.184.' || ((i >> 8) % 256) || '.' || (i % 256) || ':443',
  '10.0.0.1', '93.184.' || ((i >> 8) % 256) || '.' || (i % 256),
  'host' || (i % 5000) || '.example.com', 'rule-' || (i % 50), 'Outgoing TCP connection ' || i,
  lower('Outgoing TCP connection ' || i || ' /usr/bin/app' || (i % 100) || ' host' || (i % 5000) ||
    '.example.com rule-' || (i % 50) || ' 93.184.' || ((i >> 8) % 256) || '.' || (i % 256) || ':443')
FROM n;
INSERT INTO state (key, value) VALUES ('lastSeq', ${rows}) ON CONFLICT (key) DO UPDATE SET value = excluded.value;
`);
db.pragma('wal_checkpoint(TRUNCATE)');
db.exec('ANALYZE');
db.close();
console.log(`\ngenerated ${fmt(rows)} items in ${fmt((performance.now() - t0) / 1000, 1)} s`);

const store = SqliteLogStore.open(big);
const since = new Date(T0 + rows * 5).toISOString(); // the newer half
const queries: [string, Record<string, unknown>][] = [
  [
    'verdict=deny + application + since, limit 1000',
    { verdict: 'deny', application: '/usr/bin/app8', since },
  ],
  ['address (remote end), limit 1000', { address: '93.184.7.9' }],
  ['text "host4999.example", limit 1000', { text: 'HOST4999.example' }],
  ['application + text "rule-7 ", limit 1000', { application: '/usr/bin/app7', text: 'rule-7 ' }],
  ['text matching nothing (full scan)', { text: 'no such text' }],
];
for (const [name, raw] of queries) {
  const q = logQuerySchema.parse(raw);
  store.query(q);
  const times: number[] = [];
  let count = 0;
  for (let k = 0; k < 3; k++) {
    const s = performance.now();
    count = store.query(q).items.length;
    times.push(performance.now() - s);
  }
  times.sort((a, b) => a - b);
  console.log(`query ${name}: ${fmt(times[1]!, 1)} ms (${count} items)`);
}
await store.close();
console.log(`file size for ${fmt(rows)} items: ${fmt(statSync(big).size / 2 ** 20)} MiB`);
rmSync(dir, { recursive: true, force: true });
