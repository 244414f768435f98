import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { NewLogItem } from '../protocol/log-item.js';
import { FloodReporter } from './flood-report.js';

const tick = (ms: number) => new Promise((r) => setTimeout(r, ms));

function reporter(counts: Record<string, Record<string, number>>, intervalMs = 50) {
  const items: NewLogItem[] = [];
  const failures: string[] = [];
  let reads = 0;
  const r = new FloodReporter({
    read: async (set) => {
      reads++;
      return new Map(Object.entries(counts[set] ?? {}));
    },
    log: (item) => items.push(item),
    fail: (m) => failures.push(m),
    intervalMs,
  });
  return { r, items, failures, reads: () => reads };
}

test('one security item per uid or source whose count grew, naming it and the count', async () => {
  const counts = { flood_out: { '65534': 120, '1000': 5 }, flood_in6: { 'fd00::': 7 } };
  const { r, items } = reporter(counts);
  r.notify();
  await tick(20);
  assert.deepEqual(
    items.map((i) => [i.kind, i.user ?? i.remote, /^flood: (\d+) /.exec(i.message)?.[1]]),
    [
      ['security', '1000', '5'],
      ['security', '65534', '120'],
      ['security', 'fd00::', '7'],
    ],
  );
  // Later: only what grew since, as the difference.
  counts.flood_out['65534'] = 150;
  r.notify();
  await tick(120);
  assert.equal(items.length, 4);
  assert.match(items[3]!.message, /^flood: 30 new outgoing .* uid 65534/);
  r.close();
});

test('notices in a burst read the counters at most once per interval', async () => {
  const { r, reads } = reporter({ flood_out: { '65534': 1 } }, 200);
  r.notify();
  await tick(20);
  const first = reads();
  for (let i = 0; i < 50; i++) r.notify();
  await tick(50);
  assert.equal(reads(), first, 'no second read inside the interval');
  await tick(250);
  assert.equal(reads(), first * 2, 'one more read after it');
  r.close();
});

test('a failed read is reported, not thrown; a reset table counts from zero again', async () => {
  const failures: string[] = [];
  const items: NewLogItem[] = [];
  let fail = true;
  const r = new FloodReporter({
    read: async () => {
      if (fail) throw new Error('nft went away');
      return new Map([['65534', 3]]);
    },
    log: (item) => items.push(item),
    fail: (m) => failures.push(m),
    intervalMs: 10,
  });
  r.notify();
  await tick(20);
  assert.match(failures[0] ?? '', /nft went away/);
  fail = false;
  r.notify();
  await tick(30);
  r.reset();
  r.notify();
  await tick(30);
  assert.deepEqual(
    items.filter((i) => i.user === '65534').map((i) => /^flood: (\d+)/.exec(i.message)?.[1]),
    ['3', '3'],
  );
  r.close();
});
