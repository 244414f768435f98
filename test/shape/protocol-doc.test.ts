/** docs/protocol.md's method table lists exactly the methods of src/protocol/methods.ts, each with its role. */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { Methods } from '../../src/protocol/methods.js';
import { repoRoot } from '../repo-root.js';

test('docs/protocol.md and the Methods table list the same methods with the same roles', () => {
  const doc = readFileSync(join(repoRoot(import.meta.url), 'docs/protocol.md'), 'utf8');
  const documented = new Map(
    [...doc.matchAll(/^\| `([a-z]+\.[a-zA-Z]+)` \| (anyone|auditor|administrator) \|/gm)].map((m) => [
      m[1]!,
      m[2]!,
    ]),
  );
  const defined = new Map(Object.values(Methods).map((m) => [m.name, m.access as string]));
  assert.deepEqual(Object.fromEntries(documented), Object.fromEntries(defined));
});
