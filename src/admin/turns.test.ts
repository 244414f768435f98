import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Turns } from './turns.js';

test('work queued at once runs one piece per turn of the event loop, in order; errors reach their caller', async () => {
  const turns = new Turns();
  const order: string[] = [];
  const busy = (ms: number) => {
    const end = performance.now() + ms;
    while (performance.now() < end);
  };
  const done = Promise.allSettled([
    turns.run(() => {
      busy(20);
      order.push('a');
      return 1;
    }),
    turns.run(() => {
      busy(20);
      order.push('b');
      throw new Error('b failed');
    }),
    turns.run(() => {
      order.push('c');
      return 3;
    }),
  ]);
  // Something else that wants the loop gets it between two pieces of work, not after all three.
  setImmediate(() => setImmediate(() => order.push('other')));
  const [a, b, c] = await done;
  assert.deepEqual(a, { status: 'fulfilled', value: 1 });
  assert.equal(b.status === 'rejected' && (b.reason as Error).message, 'b failed');
  assert.deepEqual(c, { status: 'fulfilled', value: 3 });
  assert.ok(order.indexOf('other') > 0 && order.indexOf('other') < 3, order.join());
});
