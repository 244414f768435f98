import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  ApplicationKeys,
  applicationIdOf,
  MAX_APPLICATION_IDS,
  NO_APPLICATION_ID,
  NOT_REMEMBERED,
  numberedAs,
} from './application-ids.js';

test('a policy remembers a key per number with its path, and answers no other path', () => {
  const keys = new ApplicationKeys();
  const curl = applicationIdOf('/usr/bin/curl');
  const wget = applicationIdOf('/usr/bin/wget');
  assert.equal(keys.known(curl, '/usr/bin/curl'), NOT_REMEMBERED);
  keys.remember(curl, '/usr/bin/curl', 42);
  assert.equal(keys.known(curl, '/usr/bin/curl'), 42);
  // A number that comes with another path: not answered, not remembered, the first path keeps its key.
  assert.equal(keys.known(curl, '/usr/bin/wget'), NOT_REMEMBERED);
  keys.remember(curl, '/usr/bin/wget', 7);
  keys.remember(wget, '/usr/bin/curl', 7);
  assert.equal(keys.known(wget, '/usr/bin/curl'), NOT_REMEMBERED);
  assert.equal(keys.known(curl, '/usr/bin/curl'), 42);
  // Numbers never given are not remembered.
  for (const id of [-1, MAX_APPLICATION_IDS, 2 ** 40, 0.5, Number.NaN]) {
    keys.remember(id, '/usr/bin/curl', 1);
    assert.equal(keys.known(id, '/usr/bin/curl'), NOT_REMEMBERED, String(id));
  }
  // A path without a number gets none from a policy.
  assert.equal(numberedAs('/usr/bin/never-numbered'), NO_APPLICATION_ID);
  // Numbers far up grow the arrays to hold them; the ones below keep theirs.
  let last = 0;
  for (let i = 0; i < 3000; i++) last = applicationIdOf(`/opt/app${i}`);
  keys.remember(last, '/opt/app2999', -1);
  assert.equal(keys.known(last, '/opt/app2999'), -1);
  assert.equal(keys.known(curl, '/usr/bin/curl'), 42);
});

test('a path keeps its number, and past the bound new paths get none', () => {
  const first = applicationIdOf('/usr/bin/curl');
  assert.equal(applicationIdOf('/usr/bin/curl'), first);
  assert.notEqual(applicationIdOf('/usr/bin/wget'), first);
  // A local program can make new paths at will: the table stops growing, the known keep theirs.
  for (let i = 0; i < MAX_APPLICATION_IDS; i++) applicationIdOf(`/tmp/flood/${i}`);
  assert.equal(applicationIdOf('/tmp/flood/one-more'), NO_APPLICATION_ID);
  assert.equal(applicationIdOf('/usr/bin/curl'), first);
});
