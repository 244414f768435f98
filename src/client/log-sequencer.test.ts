import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import type { LogItem } from '../protocol/log-item.js';
import { LogSequencer } from './log-sequencer.js';

const item = (seq: number): LogItem => ({
  seq,
  time: '2026-11-23T00:00:00.000Z',
  kind: 'system',
  message: `m${seq}`,
});

test('delivers in order, backfills gaps, drops duplicates (property: any loss, duplication and reordering)', async () => {
  await fc.assert(
    fc.asyncProperty(
      fc.integer({ min: 1, max: 200 }),
      fc.array(fc.tuple(fc.nat(), fc.boolean(), fc.boolean()), { maxLength: 400 }),
      async (n, noise) => {
        const all = Array.from({ length: n }, (_, i) => item(i + 1));
        // A lossy, duplicating, reordering transport.
        const sent: LogItem[] = [];
        all.forEach((it, i) => {
          const [r, drop, dup] = noise[i] ?? [0, false, false];
          if (!drop) sent.push(it);
          if (dup) sent.splice(r % (sent.length + 1), 0, it);
        });
        for (let i = sent.length - 1; i > 0; i--) {
          const j = (noise[i]?.[0] ?? 0) % (i + 1);
          [sent[i], sent[j]] = [sent[j]!, sent[i]!];
        }
        const got: number[] = [];
        const seqr = new LogSequencer({
          startAfterSeq: 0,
          deliver: (items) => got.push(...items.map((x) => x.seq)),
          backfill: async (from, to) => all.slice(from - 1, to),
        });
        for (const it of sent) seqr.accept([it]);
        seqr.noteLatest(n); // the acknowledgement reveals a tail loss
        for (let i = 0; i < 100 && seqr.waiting; i++) await new Promise((r) => setImmediate(r));
        assert.deepEqual(
          got,
          all.map((x) => x.seq),
        );
        assert.equal(seqr.counters.lost, 0);
      },
    ),
    { numRuns: 200 },
  );
});

test('items the engine no longer stores are counted lost, and delivery goes on', async () => {
  const got: number[] = [];
  const seqr = new LogSequencer({
    startAfterSeq: 0,
    deliver: (items) => got.push(...items.map((x) => x.seq)),
    backfill: async (from, to) => [item(4), item(5)].filter((x) => x.seq >= from && x.seq <= to),
  });
  seqr.accept([item(6)]);
  for (let i = 0; i < 20 && seqr.waiting; i++) await new Promise((r) => setImmediate(r));
  assert.deepEqual(got, [4, 5, 6]);
  assert.equal(seqr.counters.lost, 3);
});
