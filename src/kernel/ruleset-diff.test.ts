/**
 * ruleset-diff.ts: a one-rule change is a few set elements; chains, sets and elements that differ
 * are all in the batch, in an order the kernel accepts; what a change cannot express is refused
 * (null) so the caller loads the whole table; applying the batch to the model gives the new model.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { compilePolicy, validatePolicy } from '../policy/index.js';
import { NOW } from '../policy/testing/arbitraries.js';
import { validateSettings } from '../settings/index.js';
import { compileRuleset, type TableModel } from './ruleset.js';
import { changeBatch } from './ruleset-diff.js';

type Rule = Record<string, unknown>;
const rule = (i: number, extra: Rule = {}): Rule => ({
  name: `r${i}`,
  direction: 'outgoing',
  protocol: 'tcp',
  remote: `10.1.${i >> 8}.${i & 255}`,
  remotePorts: 1000 + i,
  action: 'deny',
  ...extra,
});
const many = (n: number) => Array.from({ length: n }, (_, i) => rule(i));

function compile(rules: Rule[], settings: unknown = {}) {
  const s = validateSettings(settings);
  return compileRuleset({
    policy: compilePolicy(validatePolicy({ rules }), { settings: s }),
    settings: s,
    now: NOW,
  });
}

/** What the kernel would hold after the batch, computed from the batch text on the `from` model. */
function replay(
  from: TableModel,
  text: string,
): { sets: Map<string, Set<string>>; chains: Map<string, string[]> } {
  const sets = new Map(from.sets.map((s) => [s.name, new Set(s.elements)]));
  const chains = new Map(from.chains.map((c) => [c.name, [...c.rules]]));
  for (const line of text.split('\n').filter((l) => l !== '')) {
    if (/^(add|delete) counter inet warden c_[0-9a-f]{16}$/.test(line)) continue;
    let m =
      /^add (?:set|map) inet warden (\S+) \{ .*?; (?:flags interval; )?(?:elements = \{ (.*) \}; )?\}$/.exec(
        line,
      );
    if (m) {
      sets.set(m[1]!, new Set(m[2] ? m[2].split(', ') : []));
      continue;
    }
    m = /^(add|delete) element inet warden (\S+) \{ (.*) \}$/.exec(line);
    if (m) {
      const set = sets.get(m[2]!);
      assert.ok(set, `${line}: no such set`);
      for (const e of m[3]!.split(', ')) {
        if (m[1] === 'add') {
          assert.ok(!set.has(e), `${line}: ${e} is there already`);
          set.add(e);
        } else assert.ok(set.delete(e), `${line}: ${e} is not there`);
      }
      continue;
    }
    m = /^delete (?:set|map) inet warden (\S+)$/.exec(line);
    if (m) {
      assert.ok(sets.delete(m[1]!), line);
      continue;
    }
    m = /^add chain inet warden (\S+)/.exec(line);
    if (m) {
      chains.set(m[1]!, []);
      continue;
    }
    m = /^flush chain inet warden (\S+)$/.exec(line);
    if (m) {
      chains.set(m[1]!, []);
      continue;
    }
    m = /^delete chain inet warden (\S+)$/.exec(line);
    if (m) {
      assert.deepEqual(chains.get(m[1]!), [], `${line}: not empty`);
      chains.delete(m[1]!);
      continue;
    }
    m = /^add rule inet warden (\S+) (.*)$/.exec(line);
    if (m) {
      for (const ref of m[2]!.matchAll(/@(\w+)/g))
        assert.ok(
          sets.has(ref[1]!) || from.dynamicSets.some((d) => d.name === ref[1]),
          `${line}: @${ref[1]} missing`,
        );
      chains.get(m[1]!)!.push(m[2]!);
      continue;
    }
    assert.fail(`unexpected line: ${line}`);
  }
  return { sets, chains };
}

function assertReaches(from: TableModel, to: TableModel): void {
  const batch = changeBatch(from, to);
  assert.ok(batch !== null);
  const got = replay(from, batch.text);
  assert.deepEqual(got.sets, new Map(to.sets.map((s) => [s.name, new Set(s.elements)])));
  assert.deepEqual(got.chains, new Map(to.chains.map((c) => [c.name, [...c.rules]])));
}

test('the same ruleset is no change at all', () => {
  const a = compile(many(50));
  assert.deepEqual(changeBatch(a.model, compile(many(50)).model)?.text, '');
});

test('one rule added, changed or removed among 1,000 is a few set elements, no chain rewritten', () => {
  const base = many(1000);
  const from = compile(base).model;
  const cases: [string, Rule[]][] = [
    ['added at the end', [...base, rule(5000)]],
    ['added in the middle', [...base.slice(0, 500), rule(5000), ...base.slice(500)]],
    ['changed', base.map((r, i) => (i === 300 ? { ...r, remotePorts: 9 } : r))],
    ['removed', base.filter((_, i) => i !== 700)],
  ];
  for (const [what, rules] of cases) {
    const to = compile(rules).model;
    const batch = changeBatch(from, to);
    assert.ok(batch !== null, what);
    assert.equal(batch.stats.chainsRewritten + batch.stats.chainsAdded + batch.stats.chainsDeleted, 0, what);
    assert.ok(
      batch.stats.elementsAdded + batch.stats.elementsDeleted <= 2,
      `${what}: ${JSON.stringify(batch.stats)}`,
    );
    assertReaches(from, to);
  }
  // The run's first rule names its sets: removing it renames them (the known cost: a new set).
  assertReaches(from, compile(base.slice(1)).model);
});

test('a new run adds its set and rewrites the chain in the same batch; sets go after the rules using them', () => {
  const base = many(20);
  const from = compile(base).model;
  const to = compile([...base, ...[1, 2, 3].map((i) => rule(100 + i, { action: 'allow' }))]).model;
  const batch = changeBatch(from, to);
  assert.ok(batch !== null);
  assert.equal(batch.stats.setsAdded, 1);
  assert.equal(batch.stats.chainsRewritten, 1);
  assert.ok(batch.text.search(/add (set|map)/) < batch.text.indexOf('flush chain'));
  assertReaches(from, to);
  assertReaches(to, from);
  const back = changeBatch(to, from)!.text;
  assert.ok(
    back.indexOf('flush chain') < back.search(/delete (set|map)/),
    'a set is deleted before the rule using it',
  );
});

test('flood limits switched off (dynamic sets differ) are no change but a whole load; another log group is a change', () => {
  const rules = [...many(5), rule(50, { application: '/usr/bin/curl' })];
  const on = compile(rules).model;
  const off = compile(rules, { enforcement: { floodOutgoingPerUid: 0, floodIncomingPerSource: 0 } }).model;
  assert.equal(changeBatch(on, off), null, 'the dynamic flood sets differ: the whole table must be loaded');
  const other = compile(rules, { enforcement: { logGroup: 77 } }).model;
  assertReaches(on, other);
});

test('any two random rule lists: the batch turns the first table into the second', () => {
  const arbRule = fc.record({
    i: fc.integer({ min: 0, max: 40 }),
    action: fc.constantFrom('allow', 'deny', 'reject'),
    range: fc.boolean(),
  });
  fc.assert(
    fc.property(fc.array(arbRule, { maxLength: 25 }), fc.array(arbRule, { maxLength: 25 }), (xs, ys) => {
      const toRules = (list: typeof xs) =>
        list.map((x, k) =>
          rule(x.i, {
            name: `n${k}-${x.i}`,
            action: x.action,
            ...(x.range ? { remote: `10.${x.i}.0.0/16`, remotePorts: `${x.i + 1}-${x.i + 11}` } : {}),
          }),
        );
      assertReaches(compile(toRules(xs)).model, compile(toRules(ys)).model);
    }),
    { numRuns: 60 },
  );
});
