/** engine.status's decisions per minute: the last six 10-second slots of WardenMetrics. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { WardenMetrics } from './warden.js';

test('decisions per minute counts the last 60 s of decisions, and forgets older ones', () => {
  const m = new WardenMetrics();
  assert.equal(m.decisionsPerMinute(), 0);
  for (let i = 0; i < 5; i++) m.decided('allow', 0.001);
  m.decided('deny', 0.001);
  assert.equal(m.decisionsPerMinute(), 6);
  assert.equal(m.decisionsPerMinute(Date.now() + 30_000), 6, 'still within the minute');
  assert.equal(m.decisionsPerMinute(Date.now() + 70_000), 0, 'a minute later nothing is counted');
});

test("the verdict cache's hits are decisions too: in the rate and a counter of their own", () => {
  const m = new WardenMetrics();
  m.decided('allow', 0.001);
  m.decidedByCache(40);
  assert.equal(m.decisionsPerMinute(), 41);
  assert.match(m.render(), /^warden_verdict_cache_decisions_total 40$/m);
  assert.match(m.render(), /^warden_decisions_total\{verdict="allow"\} 1$/m);
});
