/** Every error code is documented in docs/errors.md, and every documented code exists. */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { ErrorCode, RETIRED_CODES } from '../../src/errors.js';
import { repoRoot } from '../repo-root.js';

test('docs/errors.md and the ErrorCode registry list the same codes', () => {
  const doc = readFileSync(join(repoRoot(import.meta.url), 'docs/errors.md'), 'utf8');
  const documented = new Set([...doc.matchAll(/`(WARDEN_E_[A-Z_]+)`/g)].map((m) => m[1]!));
  const defined = new Set<string>([...Object.values(ErrorCode), ...RETIRED_CODES]);
  assert.deepEqual(
    [...defined].filter((c) => !documented.has(c)),
    [],
    'codes missing from docs/errors.md',
  );
  assert.deepEqual(
    [...documented].filter((c) => !defined.has(c)),
    [],
    'documented codes that do not exist',
  );
});

test('codes are unique', () => {
  const values = Object.values(ErrorCode);
  assert.equal(new Set(values).size, values.length);
});
