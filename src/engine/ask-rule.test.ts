import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ruleToPlain, validateRule } from '../policy/index.js';
import type { AskPrompt } from '../protocol/asks.js';
import { askAnswerSchema } from '../protocol/asks.js';
import { ruleForAnswer } from './ask-rule.js';

const prompt: AskPrompt = {
  id: '0011223344556677',
  time: '2026-11-23T10:00:00.000Z',
  expiresAt: '2026-11-23T10:00:30.000Z',
  defaultVerdict: 'deny',
  direction: 'incoming',
  protocol: 'tcp',
  application: '/usr/sbin/sshd',
  local: '10.200.0.2:22',
  remote: '10.200.0.1:51000',
  remoteAddress: '10.200.0.1',
  remotePort: 51000,
  hosts: [],
  rule: 'default incoming',
  waiting: 1,
};
const answer = (a: Record<string, unknown>) =>
  askAnswerSchema.parse({ id: prompt.id, verdict: 'allow', ...a });
const now = Date.parse('2026-11-23T10:00:05Z');

test('port scope of an incoming connection is the local port; the rule validates', () => {
  const r = ruleForAnswer(prompt, answer({ scope: 'port', duration: 'always' }), now);
  assert.deepEqual(r.localPorts, [{ from: 22, to: 22 }]);
  assert.equal(r.remotePorts, undefined);
  assert.equal(r.name, 'ask: allow sshd incoming tcp port 22');
  assert.deepEqual(ruleToPlain(validateRule(ruleToPlain(r))), ruleToPlain(r));
});

test('host scope without a known name uses the address; temporary rules expire', () => {
  const r = ruleForAnswer(prompt, answer({ scope: 'host', duration: 'temporary', minutes: 5 }), now);
  assert.equal(ruleToPlain(r).remote, '10.200.0.1');
  assert.equal(r.expires, '2026-11-23T10:05:05.000Z');
  assert.equal(r.protocol, 'any');
});

test('names stay unique; an unattributed connection makes an any-application rule', () => {
  const unknownApp = { ...prompt, application: undefined } as AskPrompt;
  const taken = new Set(['ask: allow any application incoming all traffic']);
  const r = ruleForAnswer(unknownApp, answer({ duration: 'always' }), now, taken);
  assert.equal(r.name, 'ask: allow any application incoming all traffic #2');
  assert.equal(r.application, 'any');
});

test('an answer "always" pins the hash the prompt carries; temporary answers and unknown programs do not', () => {
  const sha = 'ef'.repeat(32);
  const pinned = { ...prompt, sha256: sha };
  const r = ruleForAnswer(pinned, answer({ duration: 'always' }), now);
  assert.equal(r.sha256, sha);
  assert.deepEqual(ruleToPlain(validateRule(ruleToPlain(r))), ruleToPlain(r));
  assert.equal(ruleForAnswer(pinned, answer({ duration: 'temporary' }), now).sha256, undefined);
  assert.equal(ruleForAnswer(prompt, answer({ duration: 'always' }), now).sha256, undefined);
  const unknownApp = { ...pinned, application: undefined } as AskPrompt;
  assert.equal(ruleForAnswer(unknownApp, answer({ duration: 'always' }), now).sha256, undefined);
});
