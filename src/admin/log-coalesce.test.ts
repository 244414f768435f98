import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import type { LogItem, NewLogItem } from '../protocol/log-item.js';
import { RepeatCoalescer, repeatKey } from './log-coalesce.js';

const attempt: NewLogItem = {
  kind: 'connection',
  verdict: 'deny',
  direction: 'outgoing',
  protocol: 'tcp',
  application: '/usr/bin/curl',
  local: '10.0.0.1:40000',
  remote: '93.184.216.34:443',
  rule: 'no-web',
  message: 'deny by rule "no-web" (pid 42)',
};
const stored = (seq: number): LogItem => ({ ...attempt, seq, time: '2026-01-01T00:00:00.000Z' });

test('repeats within the window raise the first item count; the window slides with each repeat', () => {
  const c = new RepeatCoalescer(5000);
  const key = repeatKey(attempt);
  assert.equal(c.repeat(key, 0), undefined, 'the first attempt is new');
  c.remember(key, stored(1), 0);
  const first = c.repeat(key, 1000);
  assert.deepEqual(first && { seq: first.seq, time: first.time, count: first.count }, {
    seq: 1,
    time: '2026-01-01T00:00:00.000Z',
    count: 2,
  });
  assert.equal(c.repeat(key, 3000)?.count, 3);
  assert.equal(c.repeat(key, 7900)?.count, 4, '4.9 s after the previous repeat');
  assert.equal(c.repeat(key, 13_000), undefined, 'more than 5 s after the last one: a new attempt');
  assert.equal(c.size, 0);
});

test('another port, verdict, rule, application or message is another attempt', () => {
  const c = new RepeatCoalescer(5000);
  c.remember(repeatKey(attempt), stored(1), 0);
  for (const change of [
    { local: '10.0.0.1:40001' },
    { remote: '93.184.216.34:80' },
    { verdict: 'allow' as const },
    { rule: 'other' },
    { application: '/usr/bin/wget' },
    { protocol: 'udp' },
    { message: 'deny by rule "no-web" (pid 43)' },
  ])
    assert.equal(c.repeat(repeatKey({ ...attempt, ...change }), 100), undefined, JSON.stringify(change));
  // Field values cannot run into each other, nor an absent field pass for a value.
  assert.notEqual(
    repeatKey({ ...attempt, host: 'a","b', rule: 'c' }),
    repeatKey({ ...attempt, host: 'a', rule: 'b","c' }),
  );
  assert.notEqual(repeatKey({ ...attempt, user: 'null' }), repeatKey(attempt));
});

test('property: two items have one repeat key exactly when every field it covers is equal', () => {
  // Values drawn from a small alphabet with the separators in it, so collisions would be found.
  const value = fc.option(
    fc.string({ unit: fc.constantFrom('a', '\u0000', '\u0001', '\u0002', '"', ','), maxLength: 3 }),
    {
      nil: undefined,
    },
  );
  const fields = ['application', 'local', 'remote', 'host', 'rule', 'user', 'source', 'message'] as const;
  const itemOf = (vs: (string | undefined)[]): NewLogItem => {
    const item: Record<string, unknown> = {
      kind: 'connection',
      verdict: 'deny',
      direction: 'outgoing',
      protocol: 'tcp',
    };
    fields.forEach((f, i) => {
      if (vs[i] !== undefined) item[f] = vs[i];
    });
    return item as unknown as NewLogItem;
  };
  fc.assert(
    fc.property(
      fc.array(value, { minLength: 8, maxLength: 8 }),
      fc.array(value, { minLength: 8, maxLength: 8 }),
      (a, b) => {
        const same = a.every((v, i) => v === b[i]);
        assert.equal(repeatKey(itemOf(a)) === repeatKey(itemOf(b)), same, JSON.stringify([a, b]));
      },
    ),
    { numRuns: 5000 },
  );
});

test('memory stays bounded: the oldest attempts are forgotten first', () => {
  const c = new RepeatCoalescer(5000, 100);
  for (let port = 0; port < 1000; port++) {
    const item = { ...attempt, local: `10.0.0.1:${port}` };
    c.remember(repeatKey(item), stored(port + 1), 0);
  }
  assert.equal(c.size, 100);
  assert.equal(c.repeat(repeatKey({ ...attempt, local: '10.0.0.1:0' }), 1), undefined, 'forgotten');
  assert.equal(c.repeat(repeatKey({ ...attempt, local: '10.0.0.1:999' }), 1)?.seq, 1000);
});
