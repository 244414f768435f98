import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  ApplicationKeys,
  applicationIdOf,
  MAX_APPLICATION_IDS,
  NO_APPLICATION_ID,
  NOT_REMEMBERED,
} from './application-ids.js';

test('a path keeps its number, and past the bound new paths get none', () => {
  const first = applicationIdOf('/usr/bin/curl');
  assert.equal(applicationIdOf('/usr/bin/curl'), first);
  assert.notEqual(applicationIdOf('/usr/bin/wget'), first);
  // A local program can make new paths at will: the table stops growing, the known keep theirs.
  for (let i = 0; i < MAX_APPLICATION_IDS; i++) applicationIdOf(`/tmp/flood/${i}`);
  assert.equal(applicationIdOf('/tmp/flood/one-more'), NO_APPLICATION_ID);
  assert.equal(applicationIdOf('/usr/bin/curl'), first);
});

test('a policy remembers a key per number with its path, and answers no other path', () => {
  const keys = new ApplicationKeys();
  assert.equal(keys.known(5, '/usr/bin/curl'), NOT_REMEMBERED);
  keys.remember(5, '/usr/bin/curl', 42);
  assert.equal(keys.known(5, '/usr/bin/curl'), 42);
  // The same number with another path: not answered, and the first path keeps its key.
  assert.equal(keys.known(5, '/usr/bin/wget'), NOT_REMEMBERED);
  keys.remember(5, '/usr/bin/wget', 7);
  assert.equal(keys.known(5, '/usr/bin/curl'), 42);
  // Numbers never given are not remembered, and grow nothing.
  for (const id of [-1, MAX_APPLICATION_IDS, 2 ** 40, 0.5, Number.NaN]) {
    keys.remember(id, '/usr/bin/curl', 1);
    assert.equal(keys.known(id, '/usr/bin/curl'), NOT_REMEMBERED, String(id));
  }
  // A number far up grows the arrays to hold it.
  keys.remember(MAX_APPLICATION_IDS - 1, '/usr/bin/last', -1);
  assert.equal(keys.known(MAX_APPLICATION_IDS - 1, '/usr/bin/last'), -1);
  assert.equal(keys.known(5, '/usr/bin/curl'), 42);
});
