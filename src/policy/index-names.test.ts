import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { compilePolicy } from './compile.js';
import { findFirstMatchLinear } from './evaluate.js';
import { parsePolicyText } from './parse.js';
import { findFirstMatchIndexed } from './rule-index.js';
import { outgoingTcp } from './testing/arbitraries.js';

// Few labels: names and suffixes of rules and connections overlap often, at every dot.
const name = fc
  .array(fc.constantFrom('a', 'b', 'ab', 'ba', 'c'), { minLength: 1, maxLength: 4 })
  .map((labels) => labels.join('.'));
const remote = fc.oneof(
  name,
  name.map((n) => `*.${n}`),
);

describe('host names in the rule index', () => {
  test('the index finds the rule a scan finds for names and *. suffixes (property)', () => {
    fc.assert(
      fc.property(
        fc.array(fc.array(remote, { minLength: 1, maxLength: 3 }), { minLength: 7, maxLength: 120 }),
        fc.array(fc.array(name, { maxLength: 3 }), { minLength: 1, maxLength: 30 }),
        (rules, connections) => {
          const text = [
            'version: 1',
            'rules:',
            ...rules.map(
              (r, i) =>
                `  - { name: r${i}, direction: outgoing, protocol: tcp, remotePorts: 443, remote: [${r.map((x) => JSON.stringify(x)).join(', ')}], action: ${i % 2 === 0 ? 'allow' : 'deny'} }`,
            ),
          ].join('\n');
          const cp = compilePolicy(parsePolicyText(text));
          for (const remoteHosts of connections) {
            const f = outgoingTcp({ application: null, remoteHosts });
            assert.equal(
              findFirstMatchIndexed(cp.index, f),
              findFirstMatchLinear(cp, f),
              remoteHosts.join(' '),
            );
          }
        },
      ),
      { numRuns: 200 },
    );
  });
});
