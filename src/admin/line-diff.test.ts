import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { unifiedDiff } from './line-diff.js';

test('a changed line shows as - and + with context and a hunk header', () => {
  const a = 'one\ntwo\nthree\nfour\nfive\nsix\nseven\n';
  const b = 'one\ntwo\nthree\nFOUR\nfive\nsix\nseven\n';
  assert.equal(
    unifiedDiff(a, b, ['a', 'b']),
    '--- a\n+++ b\n@@ -1,7 +1,7 @@\n one\n two\n three\n-four\n+FOUR\n five\n six\n seven\n',
  );
  assert.equal(unifiedDiff(a, a, ['a', 'b']), '');
});

test('distant changes make separate hunks; additions and removals count right', () => {
  const a = Array.from({ length: 20 }, (_, i) => `l${i}`).join('\n');
  const lines = a.split('\n');
  lines.splice(2, 1);
  lines.splice(15, 0, 'new');
  const d = unifiedDiff(a, lines.join('\n'), ['a', 'b']);
  assert.match(d, /@@ -1,6 \+1,5 @@\n l0\n l1\n-l2\n l3\n l4\n l5\n/);
  assert.match(d, /@@ -14,6 \+13,7 @@\n l13\n l14\n l15\n\+new\n l16\n l17\n l18\n/);
});

test('property: with whole context, the diff rebuilds both texts', () => {
  const text = fc.array(fc.constantFrom('a', 'b', 'c', 'd'), { maxLength: 30 }).map((l) => l.join('\n'));
  fc.assert(
    fc.property(text, text, (a, b) => {
      const d = unifiedDiff(a, b, ['x', 'y'], 1000);
      const body = d === '' ? [] : d.trimEnd().split('\n').slice(3);
      const lines = (t: string) => (t === '' ? [] : t.split('\n'));
      if (d === '') return assert.deepEqual(lines(a), lines(b));
      assert.deepEqual(
        body.filter((l) => l[0] !== '+').map((l) => l.slice(1)),
        lines(a),
      );
      assert.deepEqual(
        body.filter((l) => l[0] !== '-').map((l) => l.slice(1)),
        lines(b),
      );
    }),
  );
});
