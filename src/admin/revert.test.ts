import assert from 'node:assert/strict';
import { test } from 'node:test';
import { RevertConflict, revertChange } from './revert.js';

const rule = (name: string, action = 'allow') => ({ name, action, direction: 'outgoing' });

test('revertChange: a setting the change made is set back; later changes elsewhere stay', () => {
  const before = { remote: { enabled: true }, port: 1 };
  const changed = { remote: { enabled: false }, port: 1 };
  const current = { remote: { enabled: false }, port: 2 };
  assert.deepEqual(revertChange(before, changed, current), { remote: { enabled: true }, port: 2 });
});

test('revertChange: rules by name; added ones go, removed ones come back in place, later rules stay', () => {
  const before = { rules: [rule('a'), rule('gone'), rule('b')] };
  const changed = { rules: [rule('a'), rule('b'), rule('new')] };
  const current = { rules: [rule('later'), rule('a'), rule('b'), rule('new')] };
  assert.deepEqual(revertChange(before, changed, current), {
    rules: [rule('later'), rule('a'), rule('gone'), rule('b')],
  });
  // A rule the change modified gets its old fields back.
  assert.deepEqual(
    revertChange(
      { rules: [rule('a')] },
      { rules: [rule('a', 'deny')] },
      { rules: [rule('a', 'deny'), rule('x')] },
    ),
    { rules: [rule('a'), rule('x')] },
  );
});

test('revertChange: a move is undone unless the order changed since', () => {
  const before = { rules: [rule('a'), rule('b'), rule('c')] };
  const changed = { rules: [rule('c'), rule('a'), rule('b')] };
  assert.deepEqual(revertChange(before, changed, { rules: [...changed.rules, rule('d')] }), {
    rules: [...before.rules, rule('d')],
  });
  assert.throws(
    () => revertChange(before, changed, { rules: [rule('a'), rule('c'), rule('b')] }),
    (e: RevertConflict) => e.paths.includes('rules (order)'),
  );
});

test('revertChange: what a later change touched again is a conflict, named, and nothing is returned', () => {
  assert.throws(
    () => revertChange({ rules: [rule('a')] }, { rules: [rule('a', 'deny')] }, { rules: [rule('a', 'ask')] }),
    (e: RevertConflict) => e instanceof RevertConflict && e.paths.join() === 'rules.a.action',
  );
  assert.throws(() => revertChange({ p: 1 }, { p: 2 }, { p: 3 }), /changed again since: p/);
  // Undone already by hand: nothing to do, no conflict.
  assert.deepEqual(revertChange({ p: 1 }, { p: 2 }, { p: 1 }), { p: 1 });
});
