import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { type LogQueryParsed, logItemMatches } from '../protocol/log-item.js';
import { newestFirst } from './log-newest.js';
import { type LogStore, MemoryLogStore } from './log-store.js';
import { SqliteLogStore } from './sqlite-log-store.js';

/** 20,000 items: every 997th a deny from curl (a rare match), the rest allows. */
function fill(store: LogStore): void {
  for (let i = 1; i <= 20_000; i++)
    store.append({
      kind: 'connection',
      verdict: i % 997 === 0 ? 'deny' : 'allow',
      application: i % 997 === 0 ? '/usr/bin/curl' : '/usr/bin/firefox',
      message: `connection ${i}`,
    });
}

/** What newestFirst must answer, computed the slow way. */
function expected(store: LogStore, q: LogQueryParsed): number[] {
  const every: number[] = [];
  for (let from = 1; from <= store.lastSeq; ) {
    const r = store.query({ limit: 10_000, fromSeq: from });
    for (const i of r.items)
      if (
        logItemMatches(i, q) &&
        i.seq < (q.beforeSeq ?? Number.POSITIVE_INFINITY) &&
        i.seq >= (q.fromSeq ?? 1)
      )
        every.push(i.seq);
    from = (r.searchedTo ?? r.items.at(-1)?.seq ?? store.lastSeq) + 1;
  }
  return every.reverse().slice(0, q.limit);
}

/** Pages newestFirst downwards until it says it is done. */
function pageAll(store: LogStore, q: LogQueryParsed, budgetMs?: number): { seqs: number[]; calls: number } {
  const seqs: number[] = [];
  let calls = 0;
  let before = q.beforeSeq;
  for (;;) {
    calls++;
    const r = newestFirst(store, { ...q, ...(before !== undefined ? { beforeSeq: before } : {}) }, budgetMs);
    seqs.push(...r.items.map((i) => i.seq));
    if (seqs.length >= q.limit) return { seqs: seqs.slice(0, q.limit), calls };
    if (r.searchedTo === undefined) return { seqs, calls };
    before = r.searchedTo;
  }
}

for (const [name, open] of [
  ['memory', () => ({ store: new MemoryLogStore() as LogStore, done: () => {} })],
  [
    'sqlite',
    () => {
      const dir = mkdtempSync(join(tmpdir(), 'warden-newest-'));
      const store = SqliteLogStore.open(join(dir, 'logs.db'), { retention: {} });
      return {
        store: store as LogStore,
        done: () => {
          void store.close().then(() => rmSync(dir, { recursive: true, force: true }));
        },
      };
    },
  ],
] as const) {
  test(`newest first (${name} store): the newest N, with filters, beforeSeq and fromSeq`, () => {
    const { store, done } = open();
    try {
      fill(store);
      const cases: LogQueryParsed[] = [
        { limit: 3 },
        { limit: 1000 },
        { limit: 5, verdict: 'deny' },
        { limit: 100, verdict: 'deny' },
        { limit: 4, application: '/usr/bin/curl', beforeSeq: 15_000 },
        { limit: 10, beforeSeq: 100 },
        { limit: 50, fromSeq: 19_990 },
        { limit: 10, text: 'connection 1999' },
        { limit: 10, verdict: 'deny', beforeSeq: 1 },
      ];
      for (const q of cases) {
        const r = newestFirst(store, q, 10_000);
        assert.deepEqual(
          r.items.map((i) => i.seq),
          expected(store, q),
          JSON.stringify(q),
        );
        assert.equal(r.lastSeq, 20_000);
      }
      // A budget of nothing still makes progress, one window per call, and pages to the same answer.
      const q: LogQueryParsed = { limit: 20, verdict: 'deny' };
      const paged = pageAll(store, q, 0);
      assert.deepEqual(paged.seqs, expected(store, q));
      assert.ok(paged.calls > 1, `${paged.calls} calls`);
    } finally {
      done();
    }
  });
}
