import assert from 'node:assert/strict';
import { test } from 'node:test';
import { compilePolicy, parsePolicyText } from '../policy/index.js';
import { mayDecideUnlogged } from './early-decision.js';

const policy = (text: string) => compilePolicy(parsePolicyText(`version: 1\n${text}`));
const LOGGED =
  'defaults:\n  incoming: { action: deny, log: true }\n  outgoing: { action: allow, log: true }\n';

test('an unlogged allow rule makes early decisions possible only for the protocol and ports it takes in', () => {
  const p = policy(`${LOGGED}rules:
  - { name: dns, direction: outgoing, protocol: udp, remotePorts: 53, action: allow, log: false }
  - { name: web, direction: outgoing, protocol: tcp, remotePorts: [80, 443], localPorts: "1024-65535", action: allow, log: false }
`);
  assert.equal(mayDecideUnlogged(p, 'outgoing', 'udp', 40000, 53), true);
  assert.equal(mayDecideUnlogged(p, 'outgoing', 'tcp', 40000, 53), false, 'the dns rule is for udp only');
  assert.equal(mayDecideUnlogged(p, 'outgoing', 'tcp', 40000, 443), true);
  assert.equal(mayDecideUnlogged(p, 'outgoing', 'tcp', 80, 443), false, 'local port outside the rule');
  assert.equal(mayDecideUnlogged(p, 'outgoing', 'tcp', 40000, 9000), false);
  assert.equal(
    mayDecideUnlogged(p, 'outgoing', 'icmp', null, null),
    false,
    'no ports: no port rule takes it',
  );
  assert.equal(mayDecideUnlogged(p, 'incoming', 'udp', 53, 40000), false, 'the rules are outgoing');
});

test('an unlogged allow that names a process never counts; an unlogged allow default always does', () => {
  const named = policy(`${LOGGED}rules:
  - { name: app, direction: outgoing, application: /usr/bin/curl, action: allow, log: false }
  - { name: uid, direction: outgoing, user: 0, action: allow, log: false }
`);
  assert.equal(mayDecideUnlogged(named, 'outgoing', 'tcp', 40000, 443), false);
  const quietDefault = policy(
    'defaults:\n  incoming: { action: deny, log: true }\n  outgoing: { action: allow, log: false }\n',
  );
  assert.equal(mayDecideUnlogged(quietDefault, 'outgoing', 'icmp', null, null), true);
  assert.equal(mayDecideUnlogged(quietDefault, 'incoming', 'tcp', 22, 40000), false);
  const anyPort = policy(
    `${LOGGED}rules:\n  - { name: lan, direction: outgoing, remote: 10.0.0.0/8, action: allow, log: false }\n`,
  );
  assert.equal(
    mayDecideUnlogged(anyPort, 'outgoing', 'icmp', null, null),
    true,
    'a rule without ports takes every protocol it names',
  );
});
