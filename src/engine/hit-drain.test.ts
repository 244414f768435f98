import assert from 'node:assert/strict';
import { test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { HitDrain, type RingWatch } from './hit-drain.js';

/** A ring of `waiting` hits and a watch over it, recording what the drain did. */
function fakeRing() {
  const ring = {
    waiting: 0,
    reads: [] as number[],
    arms: 0,
    closed: false,
    onEvents: undefined as (() => void) | undefined,
    drain: (budget: number) => {
      const n = Math.min(budget, ring.waiting);
      ring.waiting -= n;
      ring.reads.push(n);
      return n;
    },
    watch: (onEvents: () => void): RingWatch => {
      ring.onEvents = onEvents;
      return {
        arm: () => {
          ring.arms++;
        },
        close: () => {
          ring.closed = true;
        },
      };
    },
  };
  return ring;
}

const logs: string[] = [];
const log = (level: string, message: string) => logs.push(`${level}: ${message}`);

test('with the watch, an idle ring is never read; hits are read a delay after the watch fires, in slices, then it is armed again', async () => {
  const ring = fakeRing();
  const drain = new HitDrain({ drain: ring.drain, slice: 10, delayMs: 5, watch: ring.watch, log });
  assert.equal(drain.watched, true);
  await sleep(30);
  assert.deepEqual(ring.reads, [], 'no hits: no read');
  ring.waiting = 25;
  ring.onEvents!();
  ring.onEvents!(); // a second call before the read: one read
  assert.deepEqual(ring.reads, [], 'not at once: the hits of the next moments are read with it');
  await sleep(30);
  assert.deepEqual(ring.reads, [10, 10, 5], 'full slices go on on the next turns, the last one is short');
  assert.equal(ring.arms, 1, 'armed again once, after the last slice');
  drain.stop();
  assert.equal(ring.closed, true);
  ring.waiting = 5;
  ring.onEvents!();
  await sleep(20);
  assert.deepEqual(ring.reads, [10, 10, 5], 'stopped: no more reads');
});

test('without a watch (it could not be opened), the ring is read on a timer', async () => {
  const ring = fakeRing();
  logs.length = 0;
  const drain = new HitDrain({
    drain: ring.drain,
    slice: 10,
    delayMs: 5,
    watch: () => {
      throw new Error('no poll');
    },
    log,
  });
  assert.equal(drain.watched, false);
  assert.match(logs.join('\n'), /read every 5 ms: no poll/);
  await sleep(40);
  assert.ok(ring.reads.length >= 3, `read on the timer: ${ring.reads.length} reads`);
  drain.stop();
});

test('a watch that cannot be armed again gives way to the timer, said once', async () => {
  const ring = fakeRing();
  logs.length = 0;
  const watch = (onEvents: () => void): RingWatch => {
    ring.onEvents = onEvents;
    return {
      arm: () => {
        throw new Error('poll failed');
      },
      close: () => {
        ring.closed = true;
      },
    };
  };
  const drain = new HitDrain({ drain: ring.drain, slice: 10, delayMs: 5, watch, log });
  ring.waiting = 3;
  ring.onEvents!();
  await sleep(20);
  assert.equal(ring.closed, true);
  assert.equal(drain.watched, false);
  assert.equal(logs.filter((l) => l.includes('poll failed')).length, 1);
  const before = ring.reads.length;
  await sleep(30);
  assert.ok(ring.reads.length > before, 'read on the timer since');
  drain.stop();
});
