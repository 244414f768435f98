import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { CompiledRule } from './compile.js';
import { compilePolicy } from './compile.js';
import { LeafPoolBuilder, leafSearch, scanLeaf } from './leaf-pool.js';
import { parsePolicyText } from './parse.js';
import type { ConnectionFacts } from './rule.js';
import { outgoingTcp } from './testing/arbitraries.js';

const facts: ConnectionFacts = outgoingTcp({ application: null });

describe('leaf records', () => {
  test('a rule field the records do not know sends the rule to matches(), which has the last word', () => {
    const cp = compilePolicy(
      parsePolicyText(
        'version: 1\nrules:\n  - { name: web, direction: outgoing, protocol: tcp, remotePorts: 443, action: allow }',
      ),
    );
    const rule = cp.rules[0]!;
    // matches() refuses an inactive rule; a record alone does not look at `active`, so only a rule
    // finished by matches() is refused here.
    const known: CompiledRule = { ...rule, active: false };
    const withNewField = { ...rule, active: false, lists: ['trackers'] } as CompiledRule;
    for (const [r, expected] of [
      [known, 0],
      [withNewField, -1],
    ] as const) {
      const b = new LeafPoolBuilder();
      const leaf = b.addLeaf([r]);
      const found = scanLeaf(leafSearch(b.finish(), [r], -1, facts), leaf, 0x7fffffff);
      assert.equal(found === 0x7fffffff ? -1 : found, expected);
    }
  });
});
