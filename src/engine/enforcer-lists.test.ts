/** The enforcer gives each connection its learned names' domain-list bits and its address's IP-list bits, for the policy in force. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseIp } from '../ip/index.js';
import { LearnedHost } from '../policy/address-lists.js';
import { LearnedName } from '../policy/domain-lists.js';
import { compilePolicy, parsePolicyText } from '../policy/index.js';
import { parseListText } from '../policy/list-format.js';
import { AskDesk } from './asks.js';
import { Enforcer, type ProcessInfo } from './enforcer.js';
import { HostNames } from './host-names.js';

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
  assert.equal(third.facts.remoteHostLists, undefined);
});

const NETS_POLICY = parsePolicyText(`lists:
  bad-nets: { file: /etc/warden/lists/bad-nets.txt, format: ips }
rules:
  - { name: no bad nets, direction: both, remote: "list:bad-nets", action: deny }
  - { name: web, direction: outgoing, protocol: tcp, remotePorts: 443, action: allow }
`);
/** Enough networks for a range set (range-set.ts), so the rule is beside the index and has a bit. */
const nets = (extra: string) =>
  compilePolicy(NETS_POLICY, {
    lists: new Map([
      [
        'bad-nets',
        parseListText(
          `${Array.from({ length: 40 }, (_, i) => `10.201.${i * 2}.0/24\n`).join('')}${extra}`,
          'ips',
          {
            maxBytes: 1 << 20,
            maxEntries: 1000,
          },
        ).content,
      ],
    ]),
  });

test('an IP list decides through the bits the engine remembers per address; a refreshed list decides the next connection', async () => {
  let policy = nets('10.200.0.2\n');
  const names = new HostNames();
  // As kernel-backend.ts watches them for a policy with large address sets.
  await names.watch([], { addresses: policy.addressLists !== null });
  const enforcer = new Enforcer({
    policy: () => policy,
    identify: async () => CURL,
    hostsOf: (address) => names.hostOf(address),
    asks: new AskDesk({ timeoutMs: () => 50, consoles: () => 0, notify: () => {} }),
    log: () => {},
    executables: { engine: '/e', console: '/c', assistant: '/a' },
  });
  const first = await enforcer.judge(tcp, 'outgoing');
  assert.equal(first.decision.ruleName, 'no bad nets');
  const host = names.hostOf('10.200.0.2');
  assert.ok(host instanceof LearnedHost, 'the engine remembers the address');
  // The bits the connection carried are those the address's entry remembers for this policy.
  assert.equal(first.facts.remoteAddressLists, host.addressListsIn(policy.addressLists!));
  assert.notEqual(first.facts.remoteAddressLists?.bits, 0);
  // The address is no longer listed: the next connection is decided by the new content, not the remembered bits.
  policy = nets('10.200.0.3\n');
  const second = await enforcer.judge(tcp, 'outgoing');
  assert.equal(second.decision.ruleName, 'web');
  assert.equal(second.facts.remoteAddressLists?.table, policy.addressLists);
  assert.equal(second.facts.remoteAddressLists?.bits, 0);
  policy = nets('10.200.0.0/30\n');
  const third = await enforcer.judge(tcp, 'outgoing');
  assert.equal(third.decision.ruleName, 'no bad nets');
  // Incoming, the remote is the source: its own entry, its own bits.
  const incoming = await enforcer.judge(
    { ...tcp, source: '10.201.8.9', destination: '10.200.0.1' },
    'incoming',
  );
  assert.equal(incoming.decision.ruleName, 'no bad nets');
  names.close();
});

test('a LearnedHost of another address gives neither its address nor its bits to the connection', async () => {
  const policy = nets('10.200.0.9\n');
  const other = new LearnedHost(parseIp('10.200.0.9'), '10.200.0.9');
  const enforcer = new Enforcer({
    policy: () => policy,
    identify: async () => CURL,
    hostsOf: () => other,
    asks: new AskDesk({ timeoutMs: () => 50, consoles: () => 0, notify: () => {} }),
    log: () => {},
    executables: { engine: '/e', console: '/c', assistant: '/a' },
  });
  const judged = await enforcer.judge(tcp, 'outgoing');
  assert.equal(judged.decision.ruleName, 'web');
  assert.deepEqual(judged.facts.remoteAddress, parseIp('10.200.0.2'));
  assert.equal(judged.facts.remoteAddressLists, undefined);
});

test('remote addresses are remembered up to a bound, the oldest forgotten first', async () => {
  const names = new HostNames({ remembered: 4 });
  await names.watch([], { addresses: true });
  const first = names.hostOf('10.200.1.1');
  assert.ok(first instanceof LearnedHost);
  assert.equal(names.hostOf('10.200.1.1'), first, 'one entry per address');
  for (let i = 2; i <= 6; i++) names.hostOf(`10.200.1.${i}`);
  assert.notEqual(names.hostOf('10.200.1.1'), first, 'forgotten beyond the bound, then learned again');
  // Without lists that need them, addresses are not remembered.
  await names.watch([], {});
  assert.deepEqual(names.hostOf('10.200.1.9'), []);
  names.close();
});
