import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { compilePolicy, validatePolicy } from '../policy/index.js';
import { RuleCounters } from './rule-counters.js';

const policy = (names: string[]) =>
  compilePolicy(
    validatePolicy({ rules: names.map((name) => ({ name, direction: 'outgoing', action: 'allow' })) }),
  );

test('engine decisions count by slot and follow the rule by name when it moves', () => {
  const c = new RuleCounters();
  c.bind(policy(['a', 'b']));
  c.hit(0, 1000);
  c.hit(1, 2000);
  c.hit(1, 3000);
  c.hit(-1, 4000); // a default: no rule
  c.hit(7, 4000); // out of range: ignored
  c.bind(policy(['b', 'a'])); // moved
  c.hit(0, 5000); // b again
  const s = c.snapshot();
  assert.deepEqual(s.get('user a'), { matches: 1, lastMatch: 1000 });
  assert.deepEqual(s.get('user b'), { matches: 3, lastMatch: 5000 });
});

test('a removed rule is forgotten; a rule added again under its name starts from zero', () => {
  const c = new RuleCounters();
  c.bind(policy(['a', 'b']));
  c.hit(0, 1000);
  c.bind(policy(['b']));
  c.bind(policy(['a', 'b']));
  assert.equal(c.snapshot().get('user a'), undefined);
});

test('kernel counters add their growth; a counter that started again adds its new value', () => {
  const c = new RuleCounters();
  c.bind(policy(['a', 'b']));
  c.bindKernel(async () => new Map());
  c.absorbKernel(new Map([['user a', 5]]), 100);
  c.absorbKernel(new Map([['user a', 7]]), 200);
  c.absorbKernel(new Map([['user a', 7]]), 300); // no growth: the last match stays
  c.absorbKernel(new Map([['user a', 2]]), 400); // recreated behind our back: 2 new
  c.rebaseKernel(new Map([['user a', 40]])); // after a change: the starting point, not counted
  c.absorbKernel(new Map([['user a', 43]]), 500);
  c.absorbKernel(new Map([['user z', 50]]), 600); // no rule of this ruleset: ignored
  assert.deepEqual(c.snapshot().get('user a'), { matches: 12, lastMatch: 500 });
  assert.equal(c.snapshot().get('user b'), undefined);
  assert.equal(c.snapshot().get('user z'), undefined);
});

test('a rule missing from a read (its counters at 0: the dump leaves them out) counts again from 0', () => {
  const c = new RuleCounters();
  c.bind(policy(['a']));
  c.bindKernel(async () => new Map());
  c.absorbKernel(new Map([['user a', 5]]), 100);
  c.absorbKernel(new Map(), 200); // re-created behind our back, nothing yet
  c.absorbKernel(new Map([['user a', 7]]), 300);
  assert.deepEqual(c.snapshot().get('user a'), { matches: 12, lastMatch: 300 });
});

test('a read begun under the previous ruleset is not absorbed after a change', async () => {
  const c = new RuleCounters();
  c.bind(policy(['a']));
  let finish: (v: Map<string, number>) => void = () => {};
  c.bindKernel(() => new Promise((resolve) => (finish = resolve)));
  const reading = c.refresh();
  c.detachKernel(); // the change begins
  c.bindKernel(async () => new Map([['user a', 1]]));
  c.rebaseKernel(new Map([['user a', 1]]));
  finish(new Map([['user a', 100]]));
  await reading;
  assert.equal(c.snapshot().get('user a'), undefined);
  await c.refresh();
  assert.equal(c.snapshot().get('user a'), undefined, 'no growth since the rebase');
});

test('refresh reads the kernel at most once per interval and survives a failing read', async () => {
  let now = 10_000;
  let reads = 0;
  const errors: string[] = [];
  const c = new RuleCounters({ now: () => now, onError: (m) => errors.push(m) });
  c.bind(policy(['a']));
  c.bindKernel(async () => {
    reads++;
    if (reads === 2) throw new Error('session died');
    return new Map([['user a', reads]]);
  });
  await c.refresh(1000);
  await c.refresh(1000);
  assert.equal(reads, 1);
  now += 1000;
  await c.refresh(1000);
  assert.equal(reads, 2);
  assert.match(errors[0]!, /session died/);
  await c.refresh();
  assert.deepEqual(c.snapshot().get('user a'), { matches: 3, lastMatch: 11_000 });
});

test('totals survive a restart (atomic state file); the kernel is counted from the rebase on', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'warden-counters-'));
  try {
    const path = join(dir, 'rule-counters.json');
    const a = await RuleCounters.open({ path });
    a.bind(policy(['a']));
    a.bindKernel(async () => new Map([['user a', 4]]));
    a.hit(0, 1000);
    await a.close();
    const b = await RuleCounters.open({ path });
    b.bind(policy(['a']));
    // The kernel still holds 4 after the first load: the starting point, not counted; 2 more are.
    b.bindKernel(async () => new Map([['user a', 6]]));
    b.rebaseKernel(new Map([['user a', 4]]));
    await b.refresh();
    assert.equal(b.snapshot().get('user a')?.matches, 7);
    await b.close();
    writeFileSync(path, '{ damaged');
    const errors: string[] = [];
    const d = await RuleCounters.open({ path, onError: (m) => errors.push(m) });
    assert.match(errors[0]!, /rule-counters\.json: not JSON/);
    assert.equal(d.snapshot().size, 0);
    await d.close();
    assert.match(readFileSync(path, 'utf8'), /\{ damaged/, 'nothing counted: the file is left as it was');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
