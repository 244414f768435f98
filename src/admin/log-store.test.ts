import assert from 'node:assert/strict';
import { test } from 'node:test';
import { MemoryLogStore } from './log-store.js';

test('append numbers items without gaps, keeps the keys in the order of { ...item, seq, time }', () => {
  let clock = Date.parse('2025-01-02T03:04:05.678Z');
  const logs = new MemoryLogStore({ now: () => clock });
  const seen: number[] = [];
  logs.subscribe((i) => seen.push(i.seq));
  const item = { kind: 'connection', verdict: 'allow', remote: '10.0.0.1:443', message: 'm' } as const;
  const a = logs.append(item);
  const b = logs.append(item);
  clock += 1;
  const c = logs.append(item);
  const d = logs.append({ kind: 'system', time: 'given', message: 'n' });
  assert.equal(JSON.stringify(a), JSON.stringify({ ...item, seq: 1, time: '2025-01-02T03:04:05.678Z' }));
  assert.equal(b.time, '2025-01-02T03:04:05.678Z');
  assert.equal(c.time, '2025-01-02T03:04:05.679Z');
  assert.equal(JSON.stringify(d), JSON.stringify({ kind: 'system', time: 'given', message: 'n', seq: 4 }));
  assert.deepEqual(seen, [1, 2, 3, 4]);
  assert.equal(logs.lastSeq, 4);
  assert.deepEqual(
    logs.query({ limit: 10 }).items.map((i) => i.seq),
    [1, 2, 3, 4],
  );
});
