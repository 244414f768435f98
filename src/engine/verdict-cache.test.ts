import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { compileRuleset } from '../kernel/ruleset.js';
import { DECIDED_RULE } from '../kernel/ruleset-guards.js';
import { verdictCacheKey } from '../kernel/verdict-cache-key.js';
import { compilePolicy, decide, parsePolicyText } from '../policy/index.js';
import type { ConnectionFacts } from '../policy/rule.js';
import { facts, ip, LIST_CONTENTS, NOW, policy } from '../policy/testing/arbitraries.js';
import { defaultSettings } from '../settings/index.js';
import { cacheableApplication } from './verdict-cache.js';

test('the key has the layout of struct vcache_key (native/bpf_attr.h)', () => {
  const id = '42:2049:123456789012:7:1700000000.123456789:deadbeefcafef00d';
  const k = verdictCacheKey(id, 1000, ip('10.200.0.2'), 443, 5)!;
  assert.equal(k.length, 80);
  assert.equal(k.readBigUInt64LE(0), 123456789012n, 'inode');
  assert.equal(k.readBigInt64LE(8), 1700000000n, 'ctime seconds');
  assert.equal(k.readBigUInt64LE(16), 0xdeadbeefcafef00dn, 'path fingerprint');
  assert.equal(k.readBigUInt64LE(24), 0n, 'everything was read');
  assert.equal(k.readUInt32LE(32), 123456789 & 0x3fffffff);
  assert.deepEqual([k.readUInt32LE(36), k.readUInt32LE(40), k.readInt32LE(44)], [2049, 7, 42]);
  assert.equal(k.readUInt32LE(48), 1000, 'euid');
  assert.deepEqual([...k.subarray(52, 56)], [1, 187, 0, 0], 'port 443 in network order, as user_port reads');
  assert.deepEqual(
    [...k.subarray(56, 72)],
    [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 255, 255, 10, 200, 0, 2],
    'v4 as ::ffff:',
  );
  assert.equal(k.readUInt32LE(72), 5, 'generation');
  const v6 = verdictCacheKey(id, 0, ip('fd00:200::2'), 80, 1)!;
  assert.deepEqual([...v6.subarray(56, 72)], [0xfd, 0, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2]);
  // A mapped address is the IPv4 one (an IPv6 socket connecting to it sends IPv4).
  assert.deepEqual(
    verdictCacheKey(id, 0, ip('::ffff:10.200.0.2'), 443, 5),
    verdictCacheKey(id, 0, ip('10.200.0.2'), 443, 5),
  );
  assert.equal(verdictCacheKey('not an id', 0, ip('10.0.0.1'), 443, 1), null);
  assert.equal(verdictCacheKey(id, 0, ip('10.0.0.1'), 0, 1), null);
});

test('an application is cacheable only when its rules and the any-application rules use key fields alone', () => {
  const cp = (rules: string) =>
    compilePolicy(
      parsePolicyText(`defaults:
  incoming: { action: deny, log: true }
  outgoing: { action: allow, log: true }
rules:
${rules}`),
    );
  const rule = (fields: string) => `  - name: r
    direction: outgoing
    protocol: tcp
    action: allow
${fields
  .split('\n')
  .map((l) => `    ${l}`)
  .join('\n')}
`;
  const plain = cp(rule('application: /usr/bin/curl\nremote: 10.0.0.1\nremotePorts: 443\nuser: 1000'));
  assert.equal(cacheableApplication(plain, '/usr/bin/curl'), true);
  for (const fields of [
    'application: /usr/bin/curl\nremote: example.com',
    'application: /usr/bin/curl\nremote: "*.example.com"',
    'application: /usr/bin/curl\nparent: /usr/bin/bash',
    'application: /usr/bin/curl\nancestor: /usr/bin/bash',
    'application: /usr/bin/curl\narguments: "curl *"',
    'application: /usr/bin/curl\nlocalPorts: 5000',
    'application: /usr/bin/curl\ninterface: [wg0]',
    `application: /usr/bin/curl\nsha256: ${'a'.repeat(64)}`,
    'application: /usr/bin/curl\nexpires: "2999-01-01T00:00:00Z"',
    'remote: example.com', // any application
  ])
    assert.equal(cacheableApplication(cp(rule(fields)), '/usr/bin/curl'), false, fields);
  const ask = cp(rule('application: /usr/bin/curl').replace('action: allow', 'action: ask'));
  assert.equal(cacheableApplication(ask, '/usr/bin/curl'), false, 'ask');
  // Another application's rules, incoming rules and UDP rules do not matter.
  assert.equal(
    cacheableApplication(cp(rule('application: /usr/bin/wget\nremote: example.com')), '/usr/bin/curl'),
    true,
  );
  const udp = cp(rule('remote: example.com').replace('protocol: tcp', 'protocol: udp'));
  assert.equal(cacheableApplication(udp, '/usr/bin/curl'), true);
});

test('a cacheable decision is the same whatever the fields outside the key are (property)', () => {
  const outside = fc.record({
    localPort: fc.constantFrom(null, 22, 5000, 40000),
    remoteHosts: fc.subarray(['a.example.com', 'nas.lan', 'x.a.example.com', 'tracker.example']),
    interface: fc.constantFrom(undefined, null, 'eth0', 'wg0', 'lo'),
    parent: fc.constantFrom(undefined, null, '/usr/bin/bash', '/usr/bin/sshd'),
    ancestors: fc.constantFrom(undefined, [], ['/usr/bin/bash', '/usr/lib/systemd/systemd']),
    arguments: fc.constantFrom(undefined, null, '', 'curl https://x'),
    applicationSha256: fc.constantFrom(undefined, null, 'a'.repeat(64)),
  });
  let compared = 0;
  fc.assert(
    fc.property(policy, facts, outside, (p, f0, other) => {
      const cp = compilePolicy(p, { lists: LIST_CONTENTS });
      if (f0.application === null || f0.remoteAddress === null) return;
      const f: ConnectionFacts = {
        ...f0,
        direction: 'outgoing',
        protocol: 'tcp',
        remotePort: f0.remotePort ?? 443,
      };
      if (!cacheableApplication(cp, f.application!)) return;
      const d = decide(cp, f);
      if (d.verdict !== 'allow' || d.action !== 'allow' || d.proposal !== undefined) return;
      const changed: Record<string, unknown> = { ...f, ...other, now: NOW };
      for (const k of Object.keys(changed)) if (changed[k] === undefined) delete changed[k];
      const again = decide(cp, changed as unknown as ConnectionFacts);
      compared++;
      assert.deepEqual([again.verdict, again.action, again.ruleIndex], [d.verdict, d.action, d.ruleIndex]);
    }),
    { numRuns: 400 },
  );
  assert.ok(compared > 10, `only ${compared} cacheable allows were drawn`);
});

test('the ruleset accepts connections the cache decided before the queue, only with the cache', () => {
  const cp = compilePolicy(parsePolicyText('rules: []'));
  const queueOf = (verdictCache: boolean) =>
    compileRuleset({ policy: cp, settings: defaultSettings(), now: NOW, verdictCache }).model.chains.find(
      (c) => c.name === 'queue_output',
    )!.rules;
  assert.equal(queueOf(true)[0], DECIDED_RULE);
  assert.match(
    DECIDED_RULE,
    /^meta l4proto tcp meta mark & 0x04000000 == 0x04000000 meta l4proto @warden_live accept$/,
  );
  assert.ok(!queueOf(false).includes(DECIDED_RULE));
  assert.deepEqual(queueOf(true).slice(1), queueOf(false));
});
