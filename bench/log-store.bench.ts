/**
 * Log store benchmark. Inserts per second through SqliteLogStore.append
 * (batched transactions) against a baseline of one transaction per item on the
 * same schema, measured in the same run, and how fast the text index catches
 * up behind them; then logs.query filters over a store of N items (made in SQL
 * by bench/log-fixture.ts), and the file size.
 * Run: npm run bench:log-store [-- N]   (or BENCH_ROWS=N; default 1,000,000; BENCH_INSERTS=200000)
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { SqliteLogStore } from '../src/admin/sqlite-log-store.js';
import { logQuerySchema } from '../src/protocol/log-item.js';
import { benchItem, makeLogStore, T0 } from './log-fixture.js';

const dir = mkdtempSync(join(tmpdir(), 'warden-bench-log-'));
const fmt = (n: number, d = 0) =>
  n.toLocaleString('en-US', { maximumFractionDigits: d, minimumFractionDigits: d });
const cpuSeconds = (since: NodeJS.CpuUsage) => {
  const u = process.cpuUsage(since);
  return (u.user + u.system) / 1e6;
};

/** Items per second (wall clock and per CPU second) through append; the store stays open for the text index. */
function insertRate(path: string, count: number, perItemTransaction: boolean) {
  let i = 0;
  const store = SqliteLogStore.open(path, { now: () => T0 + i * 10 });
  const items = Array.from({ length: count }, (_, k) => benchItem(k));
  const cpu = process.cpuUsage();
  const t0 = performance.now();
  for (; i < count; i++) {
    store.append(items[i]!);
    if (perItemTransaction) store.flush();
  }
  store.flush();
  return { store, wall: count / ((performance.now() - t0) / 1000), cpu: count / cpuSeconds(cpu) };
}

const N = Number(process.env.BENCH_INSERTS ?? 200_000);
const batched = insertRate(join(dir, 'batched.db'), N, false);
const single = insertRate(join(dir, 'single.db'), Math.min(N, 20_000), true);
await single.store.close();
const cpu = process.cpuUsage();
const t1 = performance.now();
let indexed = 0;
for (let n = batched.store.indexText(5000); n > 0; n = batched.store.indexText(5000)) indexed += n;
const indexRate = indexed / ((performance.now() - t1) / 1000);
const indexCpuRate = indexed / cpuSeconds(cpu);
await batched.store.close();
const line = (label: string, r: { wall: number; cpu: number }, note = '') =>
  console.log(`${label.padEnd(38)}${fmt(r.wall).padStart(9)} items/s (${fmt(r.cpu)} per CPU second)${note}`);
line('inserts, batched transactions:', batched);
line('inserts, one transaction per item:', single, ' (baseline)');
console.log(`ratio batched / baseline:             ${fmt(batched.wall / single.wall, 1)}x`);
line('text index, catching up behind:', { wall: indexRate, cpu: indexCpuRate });
const sustained = 1 / (1 / batched.wall + 1 / indexRate);
console.log(`sustained (insert + text index):      ${fmt(sustained)} items/s`);

const rows = Number(process.argv[2] ?? process.env.BENCH_ROWS ?? 1_000_000);
const big = join(dir, 'big.db');
const t0 = performance.now();
await makeLogStore(big, rows);
console.log(
  `\ngenerated ${fmt(rows)} items (with text index) in SQL in ${fmt((performance.now() - t0) / 1000, 1)} s`,
);

const store = SqliteLogStore.open(big);
// The SQL-made rows read back as the items benchItem describes.
const first = store.query(logQuerySchema.parse({ fromSeq: 7, limit: 1 })).items[0];
assert.deepEqual(first, { ...benchItem(6), seq: 7, time: new Date(T0 + 60).toISOString() });
const since = new Date(T0 + rows * 5).toISOString(); // the newer half
const queries: [string, Record<string, unknown>][] = [
  ['verdict=deny + application + since', { verdict: 'deny', application: '/usr/bin/app8', since }],
  ['since (the newer half)', { since }],
  ['since + until (1 second)', { since, until: new Date(T0 + rows * 5 + 1000).toISOString() }],
  ['address (remote end)', { address: '93.184.7.9' }],
  ['kind=admin (none stored)', { kind: 'admin' }],
  ['text "host4999.example"', { text: 'HOST4999.example' }],
  ['text "connection 4242" (few)', { text: 'connection 4242' }],
  ['application + text "rule-7 "', { application: '/usr/bin/app7', text: 'rule-7 ' }],
  ['text matching nothing', { text: 'no such text' }],
  ['text "zq" (2 chars: a scan, nothing)', { text: 'zq' }],
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
  console.log(
    `query ${`${name}, limit 1000:`.padEnd(50)} ${fmt(times[1]!, 1).padStart(8)} ms (${count} items)`,
  );
}
await store.close();
console.log(`file size for ${fmt(rows)} items: ${fmt(statSync(big).size / 2 ** 20)} MiB`);
rmSync(dir, { recursive: true, force: true });
