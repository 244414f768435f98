import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { formatPath, formatProblem, WardenError } from '../errors.js';
import { parsePolicyText, serializePolicy } from './index.js';

/** The repository root: the nearest directory above this file holding package.json (tests run from dist/src/...). */
function repoRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  while (!existsSync(join(dir, 'package.json'))) {
    const up = dirname(dir);
    if (up === dir) throw new Error(`no package.json above ${fileURLToPath(import.meta.url)}`);
    dir = up;
  }
  return dir;
}

const FIXTURES = join(repoRoot(), 'test', 'fixtures', 'policies');
const list = (kind: 'valid' | 'invalid') =>
  readdirSync(join(FIXTURES, kind))
    .filter((f) => f.endsWith('.yaml'))
    .sort();

const EXPECTED_VALID = 6;
const EXPECTED_INVALID = 20;

describe('policy fixtures', () => {
  test(`there are ${EXPECTED_VALID} valid and ${EXPECTED_INVALID} invalid fixtures`, () => {
    assert.equal(list('valid').length, EXPECTED_VALID, list('valid').join(', '));
    assert.equal(list('invalid').length, EXPECTED_INVALID, list('invalid').join(', '));
  });

  describe('valid', () => {
    for (const name of list('valid')) {
      test(name, () => {
        const file = join('valid', name);
        const text = readFileSync(join(FIXTURES, file), 'utf8');
        const policy = parsePolicyText(text, { file });
        // Round trip: what Warden writes it reads back unchanged.
        const written = serializePolicy(policy);
        assert.deepEqual(parsePolicyText(written, { file: `${file} (serialized)` }), policy);
        assert.equal(serializePolicy(parsePolicyText(written)), written);
      });
    }
  });

  describe('invalid', () => {
    for (const name of list('invalid')) {
      test(name, () => {
        const file = join('invalid', name);
        const text = readFileSync(join(FIXTURES, file), 'utf8');
        const expectPath = /^# expect-path: (.+)$/m.exec(text)?.[1];
        const expectMessage = /^# expect: (.+)$/m.exec(text)?.[1];
        assert.ok(
          expectPath !== undefined && expectMessage !== undefined,
          `${name} needs "# expect-path:" and "# expect:" lines`,
        );
        let error: unknown;
        try {
          parsePolicyText(text, { file });
        } catch (err) {
          error = err;
        }
        assert.ok(error instanceof WardenError, `${name} was accepted`);
        assert.equal(error.code, 'WARDEN_E_POLICY_INVALID', error.message);
        assert.ok(
          error.problems.some((p) => typeof p.line === 'number' && p.line >= 1),
          `${name}: no problem with a line number`,
        );
        for (const p of error.problems) {
          assert.equal(p.file, file);
          // A problem inside a rule names the rule.
          if (p.path[0] === 'rules' && typeof p.path[1] === 'number')
            assert.ok(p.rule !== undefined, formatProblem(p));
        }
        const hit = error.problems.find(
          (p) => formatPath(p.path) === expectPath && p.message.includes(expectMessage),
        );
        assert.ok(
          hit,
          `${name}: expected ${expectPath}: ${expectMessage}; got\n${error.problems.map(formatProblem).join('\n')}`,
        );
        assert.equal(typeof hit.line, 'number');
        // The line points into the file at (or, for a missing field, above) the offending field.
        const lines = text.split('\n');
        assert.ok(hit.line! <= lines.length, `${name}: line ${hit.line} is past the end`);
      });
    }
  });
});
