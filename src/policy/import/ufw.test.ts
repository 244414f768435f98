import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { fixtures } from '../../../test/support/import-fixtures.js';
import { importPolicy } from './index.js';
import { connection, verdict } from './testing.js';

describe('ufw import', () => {
  const { policy, problems, notes } = importPolicy('ufw', fixtures('ufw'));

  test('defaults come from /etc/default/ufw', () => {
    assert.equal(policy.defaults.incoming.action, 'deny');
    assert.equal(policy.defaults.outgoing.action, 'allow');
  });

  test('rules in both files merge into one; IPv4-only rules stay IPv4-only; the comment names the rule', () => {
    const ssh = policy.rules.find((r) => r.name === 'ssh from anywhere')!;
    assert.equal(ssh.remote, undefined);
    assert.deepEqual(ssh.localPorts, [{ from: 22, to: 22 }]);
    const app = policy.rules.find((r) => r.name === 'ufw allow in tcp/22 from any')!;
    assert.equal(app.protocol, 'tcp', 'the OpenSSH profile is TCP in the iptables lines');
    assert.deepEqual(
      app.remote?.map((s) => s.kind),
      ['ip'],
    );
    assert.equal(policy.rules[0]!.name, 'loopback (ufw before.rules)');
  });

  test('interfaces, local addresses and other protocols are reported with file and line', () => {
    assert.deepEqual(
      problems.map((p) => [p.file, p.line]),
      [
        ['ufw/user.rules', 39],
        ['ufw/user.rules', 45],
        ['ufw/user.rules', 48],
      ],
    );
    assert.match(problems[0]!.message, /interface eth1/);
    assert.match(problems[1]!.message, /local address 192\.168\.1\.10/);
    assert.match(problems[2]!.message, /gre/);
    assert.ok(notes.some((n) => /limit/.test(n.message) && n.line === 20));
  });

  test('decisions match what ufw does', () => {
    const inTcp = (localPort: number, remote = '203.0.113.9') =>
      verdict(policy, connection({ localPort, remote }));
    assert.equal(inTcp(22), 'allow');
    assert.equal(inTcp(22, '2001:db8::9'), 'allow');
    assert.equal(inTcp(443, '2001:db8::9'), 'allow');
    assert.equal(inTcp(53), 'deny', 'DNS only from 192.168.1.0/24');
    assert.equal(inTcp(53, '192.168.1.7'), 'allow');
    assert.equal(inTcp(3306), 'deny', 'the eth1-only rule was not imported, nothing widened');
    assert.equal(
      verdict(policy, connection({ protocol: 'udp', localPort: 60500, remote: '10.1.2.3' })),
      'reject',
    );
    assert.equal(verdict(policy, connection({ direction: 'outgoing', remotePort: 25 })), 'deny');
    assert.equal(
      verdict(policy, connection({ direction: 'outgoing', remotePort: 25, remote: '2001:db8::25' })),
      'deny',
    );
    assert.equal(verdict(policy, connection({ direction: 'outgoing', remotePort: 587 })), 'allow');
    assert.equal(
      verdict(policy, connection({ protocol: 'udp', localPort: 9999, remote: 'fd00::5' })),
      'allow',
    );
  });

  test('only user.rules: its rules are limited to IPv4', () => {
    const { policy: p } = importPolicy(
      'ufw',
      fixtures('ufw').filter((f) => f.name.endsWith('/user.rules')),
    );
    assert.equal(verdict(p, connection({ localPort: 443 })), 'allow');
    assert.equal(verdict(p, connection({ localPort: 443, remote: '2001:db8::9' })), 'deny');
  });

  test('malformed tuples and non-ufw files are reported, not thrown', () => {
    const { problems: probs } = importPolicy('ufw', [
      {
        name: 'user.rules',
        text: '### tuple ### allow tcp\n### tuple ### allow tcp 70000 0.0.0.0/0 any 0.0.0.0/0 in\n',
      },
      { name: 'notes.txt', text: 'hello' },
    ]);
    assert.deepEqual(
      probs.map((p) => [p.file, p.line]),
      [
        ['user.rules', 1],
        ['user.rules', 2],
        ['notes.txt', undefined],
      ],
    );
  });
});
