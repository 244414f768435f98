import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { LoginThrottle } from './throttle.js';

function clock(start = 1_000_000) {
  let t = start;
  return {
    now: () => t,
    advance: (ms: number) => {
      t += ms;
    },
  };
}

describe('LoginThrottle', () => {
  test('the first failure costs nothing; after the second, 500 ms, 1 s, 2 s, … up to 60 s', () => {
    const c = clock();
    const th = new LoginThrottle({ now: c.now });
    const delays: number[] = [];
    for (let i = 0; i < 12; i++) {
      th.failure('10.0.0.1');
      const v = th.check('10.0.0.1');
      delays.push(v.allowed ? 0 : v.retryAfterMs);
      c.advance(120_000); // well past any delay, but within 15 minutes of the last failure
    }
    assert.deepEqual(delays, [0, 500, 1000, 2000, 4000, 8000, 16000, 32000, 60000, 60000, 60000, 60000]);
  });

  test('delayAfter follows baseDelay * 2^(n-2), capped', () => {
    const th = new LoginThrottle({ now: () => 0, baseDelayMs: 100, maxDelayMs: 1000 });
    assert.deepEqual(
      [0, 1, 2, 3, 4, 5, 6, 7, 1000].map((n) => th.delayAfter(n)),
      [0, 0, 100, 200, 400, 800, 1000, 1000, 1000],
    );
  });

  test('a throttled source is refused until its delay has passed, with the time left', () => {
    const c = clock();
    const th = new LoginThrottle({ now: c.now });
    for (let i = 0; i < 3; i++) th.failure('a'); // 3 failures: 1000 ms
    assert.deepEqual(th.check('a'), { allowed: false, retryAfterMs: 1000 });
    c.advance(400);
    assert.deepEqual(th.check('a'), { allowed: false, retryAfterMs: 600 });
    c.advance(600);
    assert.deepEqual(th.check('a'), { allowed: true });
  });

  test('sources are throttled separately', () => {
    const c = clock();
    const th = new LoginThrottle({ now: c.now });
    for (let i = 0; i < 5; i++) th.failure('a');
    assert.equal(th.check('a').allowed, false);
    assert.deepEqual(th.check('b'), { allowed: true });
  });

  test('a success resets the count', () => {
    const c = clock();
    const th = new LoginThrottle({ now: c.now });
    for (let i = 0; i < 5; i++) th.failure('a');
    th.success('a');
    assert.deepEqual(th.check('a'), { allowed: true });
    th.failure('a');
    assert.deepEqual(th.check('a'), { allowed: true }, 'one failure after a reset is free again');
    assert.equal(th.size, 1);
  });

  test('a source quiet for forgetAfter starts afresh, and is dropped from the table', () => {
    const c = clock();
    const th = new LoginThrottle({ now: c.now, forgetAfterMs: 10_000, maxDelayMs: 5_000 });
    for (let i = 0; i < 6; i++) th.failure('a');
    assert.equal(th.check('a').allowed, false);
    c.advance(9_999);
    th.failure('b');
    assert.equal(th.size, 2);
    c.advance(1);
    assert.deepEqual(th.check('a'), { allowed: true });
    assert.equal(th.size, 1, 'a was forgotten, b is kept');
    th.failure('a');
    assert.deepEqual(th.check('a'), { allowed: true }, 'a counts from one again');
  });

  test('the table is bounded: the source with the oldest failure is evicted', () => {
    const c = clock();
    const th = new LoginThrottle({ now: c.now, maxSources: 3 });
    for (const s of ['a', 'b', 'c']) {
      for (let i = 0; i < 5; i++) th.failure(s);
      c.advance(1);
    }
    th.failure('a'); // a is now the most recent
    th.failure('d');
    assert.equal(th.size, 3);
    assert.deepEqual(th.check('b'), { allowed: true }, 'b had the oldest failure and was evicted');
    assert.equal(th.check('a').allowed, false);
    assert.equal(th.check('c').allowed, false);
  });

  test('the default bound is 100,000 sources', () => {
    const th = new LoginThrottle({ now: () => 0 });
    for (let i = 0; i < 100_050; i++) th.failure(`s${i}`);
    assert.equal(th.size, 100_000);
  });

  test('bad options are refused', () => {
    assert.throws(() => new LoginThrottle({ now: () => 0, baseDelayMs: -1 }), RangeError);
    assert.throws(() => new LoginThrottle({ now: () => 0, maxDelayMs: Number.NaN }), RangeError);
  });
});
