/** The enforcer gives each connection its learned names' domain-list bits, for the policy in force. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { LearnedName } from '../policy/domain-lists.js';
import { compilePolicy, parsePolicyText } from '../policy/index.js';
import { parseListText } from '../policy/list-format.js';
import { AskDesk } from './asks.js';
import { Enforcer, type ProcessInfo } from './enforcer.js';

const POLICY = parsePolicyText(`lists:
  trackers: { file: /etc/warden/lists/trackers.txt, format: domains }
rules:
  - { name: no trackers, direction: outgoing, remote: "list:trackers", action: deny }
  - { name: web, direction: outgoing, protocol: tcp, remotePorts: 443, action: allow }
`);

const compiled = (trackers: string) =>
  compilePolicy(POLICY, {
    lists: new Map([
      ['trackers', parseListText(trackers, 'domains', { maxBytes: 1 << 20, maxEntries: 1000 }).content],
    ]),
  });

const tcp = {
  protocol: 'tcp' as const,
  source: '10.200.0.1',
  destination: '10.200.0.2',
  sourcePort: 1000,
  destinationPort: 443,
};
const CURL: ProcessInfo = { pid: 77, executable: '/usr/bin/curl', uid: 0 };

test('learned names carry their lists; a refreshed list decides the next connection', async () => {
  let policy = compiled('tracker.example\n');
  // One LearnedName per name, kept by the engine across connections and policies (host-names.ts).
  const name = new LearnedName('cdn.tracker.example');
  const enforcer = new Enforcer({
    policy: () => policy,
    identify: async () => CURL,
    hostsOf: async () => [name],
    asks: new AskDesk({ timeoutMs: () => 50, consoles: () => 0, notify: () => {} }),
    log: () => {},
    executables: { engine: '/e', console: '/c', assistant: '/a' },
  });
  const first = await enforcer.judge(tcp, 'outgoing');
  assert.equal(first.decision.ruleName, 'no trackers');
  assert.deepEqual(first.facts.remoteHosts, ['cdn.tracker.example']);
  assert.equal(first.facts.remoteHostLists?.table, policy.domainLists);
  assert.notEqual(first.facts.remoteHostLists?.bits, 0);

  policy = compiled('other.example\n');
  const second = await enforcer.judge(tcp, 'outgoing');
  assert.equal(second.decision.ruleName, 'web');
  assert.equal(second.facts.remoteHostLists?.table, policy.domainLists);
  assert.equal(second.facts.remoteHostLists?.bits, 0);

  // Plain names (nothing remembered for them) are looked up in the lists.
  const plain = new Enforcer({
    policy: () => compiled('example\n'),
    identify: async () => CURL,
    hostsOf: () => ['cdn.tracker.example'],
    asks: new AskDesk({ timeoutMs: () => 50, consoles: () => 0, notify: () => {} }),
    log: () => {},
    executables: { engine: '/e', console: '/c', assistant: '/a' },
  });
  const third = await plain.judge(tcp, 'outgoing');
  assert.equal(third.decision.ruleName, 'no trackers');
  assert.equal('remoteHostLists' in third.facts, false);
});
