/** Garbled input never makes an importer throw: every failure is a located problem, and the result is a valid policy. */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { fixtures } from '../../../test/support/import-fixtures.js';
import { validatePolicy } from '../parse.js';
import { policyToPlain } from '../serialize.js';
import { importPolicy, type SourceFile, type Tool } from './index.js';

/** Cuts, repeats and inserts pieces of a real file: text that is almost right is where parsers break. */
const mutated = (text: string): fc.Arbitrary<string> =>
  fc
    .array(
      fc.record({
        at: fc.nat(text.length),
        cut: fc.nat(40),
        insert: fc.oneof(
          fc.string({ maxLength: 12 }),
          fc.constantFrom(
            '"',
            '<',
            '>',
            '/>',
            '{',
            '}',
            '[',
            ']',
            ',',
            ':',
            '\n',
            ' any ',
            '-',
            '0.0.0.0/0',
            '::/0',
            '^',
            '$',
            '\\',
            '<rule>',
            '"list":[',
          ),
        ),
      }),
      { minLength: 1, maxLength: 6 },
    )
    .map((edits) => {
      let t = text;
      for (const e of edits) {
        const at = Math.min(e.at, t.length);
        t = t.slice(0, at) + e.insert + t.slice(at + e.cut);
      }
      return t;
    });

function check(tool: Tool, files: SourceFile[]): void {
  const r = importPolicy(tool, files);
  for (const p of [...r.problems, ...r.notes]) {
    assert.equal(typeof p.message, 'string');
    assert.ok(p.message.length > 0);
  }
  for (const p of r.problems)
    assert.ok(p.file !== undefined || p.rule !== undefined, `unlocated: ${JSON.stringify(p)}`);
  validatePolicy(policyToPlain(r.policy));
}

describe('importers on garbled input (fuzz)', () => {
  for (const [tool, dir] of [
    ['opensnitch', 'opensnitch'],
    ['ufw', 'ufw'],
    ['firewalld', 'firewalld/zones'],
  ] as const) {
    const real = fixtures(dir);
    test(`${tool}: mutated real files and random text give problems, never exceptions`, () => {
      fc.assert(
        fc.property(
          fc.constantFrom(...real),
          fc.nat(),
          fc.oneof(fc.string({ maxLength: 200 }), fc.string({ unit: 'binary', maxLength: 80 })),
          (file, seed, junk) => {
            const text = fc.sample(mutated(file.text), { numRuns: 1, seed })[0]!;
            check(tool, [{ name: file.name, text }]);
            check(tool, [{ name: file.name, text: junk }]);
          },
        ),
        { numRuns: 200 },
      );
    });
  }

  test('opensnitch: structurally random rule objects', () => {
    const operand = fc.constantFrom(
      'process.path',
      'dest.host',
      'dest.ip',
      'dest.network',
      'dest.port',
      'protocol',
      'user.id',
      'true',
      'list',
      'iface.out',
      'x',
    );
    const operator: fc.Arbitrary<unknown> = fc.letrec((tie) => ({
      op: fc.record(
        {
          type: fc.constantFrom('simple', 'regexp', 'network', 'list', 'lists', 'range', 7),
          operand,
          data: fc.oneof(
            fc.string(),
            fc.constantFrom('^(.*\\.)?a\\.com$', '/usr/bin/x', '10.0.0.0/8', '80', 'tcp6', '1-9'),
            fc.integer(),
          ),
          sensitive: fc.anything(),
          list: fc.oneof(fc.constant(null), fc.array(tie('op'), { maxLength: 3 })),
        },
        { requiredKeys: [] },
      ),
    })).op;
    fc.assert(
      fc.property(
        fc.record(
          {
            name: fc.oneof(fc.string(), fc.integer()),
            enabled: fc.anything(),
            precedence: fc.anything(),
            action: fc.constantFrom('allow', 'deny', 'reject', 'ask', 'ALLOW', 3),
            duration: fc.constantFrom('always', 'once', '30s', 'until restart', '1h', null),
            created: fc.constantFrom('2026-01-01T00:00:00Z', 'yesterday', undefined),
            operator,
          },
          { requiredKeys: [] },
        ),
        (raw) => check('opensnitch', [{ name: 'r.json', text: JSON.stringify(raw) }]),
      ),
      { numRuns: 400 },
    );
  });
});
