import assert from 'node:assert/strict';
import { test } from 'node:test';
import { answerParams, formatPrompt } from './asks.js';

const id = '0011223344556677';

test('answer flags become asks.answer params', () => {
  assert.deepEqual(answerParams(id, { allow: true }), {
    id,
    verdict: 'allow',
    duration: 'once',
    minutes: 60,
    scope: 'application',
  });
  assert.deepEqual(answerParams(id, { deny: true, for: '15', scope: 'host' }), {
    id,
    verdict: 'deny',
    duration: 'temporary',
    minutes: 15,
    scope: 'host',
  });
  assert.equal(answerParams(id, { allow: true, always: true }).duration, 'always');
});

test('contradictory or bad answer flags are usage errors that name the flag', () => {
  assert.throws(() => answerParams(id, {}), /--allow or --deny/);
  assert.throws(() => answerParams(id, { allow: true, deny: true }), /--allow or --deny/);
  assert.throws(() => answerParams(id, { allow: true, once: true, always: true }), /exclude each other/);
  assert.throws(() => answerParams(id, { allow: true, for: 'ten' }), /--for "ten" is not a number/);
  assert.throws(() => answerParams(id, { allow: true, for: '0' }), /--for: minutes must be 1-43200/);
  assert.throws(() => answerParams(id, { allow: true, scope: 'planet' }), /--scope/);
  assert.throws(() => answerParams('xyz', { allow: true }), /ID: id must be the hex id/);
});

test('a prompt line says what waits, how long is left and what happens then', () => {
  const line = formatPrompt(
    {
      id,
      time: '2026-11-23T10:00:00.000Z',
      expiresAt: '2026-11-23T10:00:30.000Z',
      defaultVerdict: 'deny',
      direction: 'outgoing',
      protocol: 'tcp',
      application: '/usr/bin/curl',
      pid: 42,
      local: '10.200.0.1:40000',
      remote: '10.200.0.2:443',
      remoteAddress: '10.200.0.2',
      remotePort: 443,
      hosts: ['example.org'],
      rule: 'ask web',
      waiting: 1,
    },
    Date.parse('2026-11-23T10:00:10.000Z'),
  );
  assert.equal(
    line,
    '0011223344556677  TCP 10.200.0.1:40000 -> 10.200.0.2:443 (example.org)  /usr/bin/curl, pid 42  rule "ask web"  20s left, then deny',
  );
});
