import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { WardenError } from '../errors.js';
import { chooseLogFormat, formatLogLine } from './log-format.js';

test('auto: human on a terminal, JSON in a pipe or under systemd; explicit choices win', () => {
  assert.equal(chooseLogFormat(undefined, {}, true), 'human');
  assert.equal(chooseLogFormat(undefined, {}, false), 'json');
  assert.equal(chooseLogFormat(undefined, { JOURNAL_STREAM: '8:1234' }, true), 'json');
  assert.equal(chooseLogFormat('auto', {}, true), 'human');
  assert.equal(chooseLogFormat('json', {}, true), 'json');
  assert.equal(chooseLogFormat(undefined, { WARDEN_LOG_FORMAT: 'human' }, false), 'human');
  assert.equal(chooseLogFormat('json', { WARDEN_LOG_FORMAT: 'human' }, false), 'json');
  assert.throws(
    () => chooseLogFormat('xml', {}, true),
    (e: WardenError) => /--log-format "xml"/.test(e.message),
  );
});

test('a human line: time, level, message, fields; a JSON line: one object', () => {
  const now = new Date('2026-12-06T14:03:05.123Z');
  const human = formatLogLine('human', now, 'warn', 'reload refused', {
    port: 44334,
    addresses: ['127.0.0.1', '::1'],
    reason: 'two problems',
    none: undefined,
  });
  assert.match(
    human,
    /^\d\d:\d\d:\d\d warn {2}reload refused {2}port=44334 addresses=127\.0\.0\.1,::1 reason="two problems"\n$/,
  );
  const json = JSON.parse(formatLogLine('json', now, 'info', 'engine started', { port: 1 }));
  assert.deepEqual(json, {
    time: '2026-12-06T14:03:05.123Z',
    level: 'info',
    message: 'engine started',
    port: 1,
  });
});
