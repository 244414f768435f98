/** The enforcer gathers the program context (parent, ancestors, arguments) only for policies that use it. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { compilePolicy, parsePolicyText } from '../policy/index.js';
import { AskDesk } from './asks.js';
import { argumentsText, Enforcer, MAX_ARGUMENTS_CHARS, type ProcessInfo } from './enforcer.js';

const executables = {
  engine: '/usr/lib/warden/wardend',
  console: '/usr/lib/warden/warden',
  assistant: '/usr/lib/warden/warden-assist',
};

function setup(policyText: string, process: ProcessInfo) {
  const policy = compilePolicy(parsePolicyText(policyText));
  const asked: [number, boolean][] = [];
  const enforcer = new Enforcer({
    policy: () => policy,
    identify: async () => process,
    hostsOf: () => [],
    asks: new AskDesk({ timeoutMs: () => 50, consoles: () => 0, notify: () => {} }),
    log: () => {},
    executables,
    programContext: (pid, ancestors) => {
      asked.push([pid, ancestors]);
      return { parent: '/usr/bin/bash', ancestors: ancestors ? ['/usr/bin/bash', '/usr/sbin/sshd'] : [] };
    },
  });
  return { enforcer, asked };
}

const tcp = {
  protocol: 'tcp' as const,
  source: '10.200.0.1',
  destination: '10.200.0.2',
  sourcePort: 1000,
  destinationPort: 443,
};
const CURL: ProcessInfo = {
  pid: 77,
  executable: '/usr/bin/curl',
  commandLine: ['curl', '-s', 'https://x'],
  uid: 0,
};

test('no rule on the program context: nothing is read and the facts carry none', async () => {
  const { enforcer, asked } = setup(
    'defaults: { outgoing: { action: deny } }\nrules: [{ name: c, direction: outgoing, application: /usr/bin/curl, action: allow }]',
    CURL,
  );
  const j = await enforcer.judge(tcp, 'outgoing');
  assert.equal(j.verdict, 'accept');
  assert.deepEqual(asked, []);
  assert.equal('parent' in j.facts || 'ancestors' in j.facts || 'arguments' in j.facts, false);
});

test('parent, ancestor and arguments rules get exactly the facts they need', async () => {
  const parent = setup(
    'defaults: { outgoing: { action: deny } }\nrules: [{ name: p, direction: outgoing, parent: /usr/bin/bash, action: allow }]',
    CURL,
  );
  assert.equal((await parent.enforcer.judge(tcp, 'outgoing')).decision.ruleName, 'p');
  assert.deepEqual(parent.asked, [[77, false]]);
  const ancestor = setup(
    'defaults: { outgoing: { action: deny } }\nrules: [{ name: a, direction: outgoing, ancestor: /usr/sbin/sshd, action: allow }]',
    CURL,
  );
  assert.equal((await ancestor.enforcer.judge(tcp, 'outgoing')).decision.ruleName, 'a');
  assert.deepEqual(ancestor.asked, [[77, true]]);
  const args = setup(
    'defaults: { outgoing: { action: deny } }\nrules: [{ name: g, direction: outgoing, arguments: "curl -s *", action: allow }]',
    CURL,
  );
  const j = await args.enforcer.judge(tcp, 'outgoing');
  assert.equal(j.decision.ruleName, 'g');
  assert.equal(j.facts.arguments, 'curl -s https://x');
  assert.deepEqual(args.asked, []);
});

test('no pid (a process not attributed): the context is unknown and the rule does not match', async () => {
  const { enforcer, asked } = setup(
    'defaults: { outgoing: { action: deny } }\nrules: [{ name: p, direction: outgoing, parent: /usr/bin/bash, action: allow }]',
    { uid: 0 },
  );
  const j = await enforcer.judge(tcp, 'outgoing');
  assert.equal(j.decision.ruleName, 'default outgoing');
  assert.equal(j.facts.parent, null);
  assert.deepEqual(asked, []);
});

test('the command line as text: unknown when empty or longer than the bound', () => {
  assert.equal(argumentsText(['a', 'b c']), 'a b c');
  assert.equal(argumentsText([]), null);
  assert.equal(argumentsText(undefined), null);
  assert.equal(argumentsText(['x', 'y'.repeat(MAX_ARGUMENTS_CHARS)]), null);
});
