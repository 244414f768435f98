import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { fixtures } from '../../../test/support/import-fixtures.js';
import { importPolicy } from './index.js';
import { connection, verdict } from './testing.js';

describe('firewalld import', () => {
  const zones = fixtures('firewalld/zones');
  const services = fixtures('firewalld/services');
  const { policy, problems, notes } = importPolicy('firewalld', zones, { services });

  test('the zone target is the incoming default; a source zone comes first, limited to its sources', () => {
    assert.equal(policy.defaults.incoming.action, 'reject');
    assert.equal(policy.rules[1]!.name, 'firewalld trusted-lab: target ACCEPT');
    assert.equal(verdict(policy, connection({ localPort: 5432, remote: '10.10.3.4' })), 'allow');
  });

  test('services expand to ports (built-in table and service files), rich rules keep firewalld order', () => {
    const at = (localPort: number, remote = '192.0.2.9', protocol: 'tcp' | 'udp' = 'tcp') =>
      verdict(policy, connection({ localPort, remote, protocol }));
    assert.equal(at(22), 'allow');
    assert.equal(at(22, '198.51.100.7'), 'reject', 'priority -10 reject comes before the ssh service');
    assert.equal(at(9090), 'allow', 'cockpit');
    assert.equal(at(7005), 'allow', 'myapp from its service file');
    assert.equal(at(7001, undefined, 'udp'), 'allow');
    assert.equal(at(7005, undefined, 'udp'), 'reject');
    assert.equal(at(8080, '203.0.113.5'), 'deny', 'drop rich rule (priority 0) comes before the ports');
    assert.equal(at(80), 'reject');
    assert.equal(at(80, '192.168.1.4'), 'allow');
    assert.equal(at(53, '2001:db8::1', 'udp'), 'allow');
    assert.equal(at(53, '192.0.2.1', 'udp'), 'reject');
    assert.equal(
      verdict(policy, connection({ protocol: 'icmp', remote: '192.0.2.1' })),
      'allow',
      'the default target accepts ICMP',
    );
  });

  test('what cannot be expressed is reported with file, line and reason', () => {
    assert.deepEqual(
      problems.map((p) => [p.file, p.line]),
      [
        ['firewalld/zones/public.xml', 7],
        ['firewalld/zones/public.xml', 28],
      ],
    );
    assert.match(problems[0]!.message, /dhcpv6-client .*local destination/);
    assert.match(problems[1]!.message, /inverted source/);
    assert.equal(verdict(policy, connection({ localPort: 5432, remote: '192.0.2.1' })), 'reject');
    assert.ok(notes.some((n) => /interface/.test(n.message)));
  });

  test('an unknown service without its file, bad XML and a second interface zone are reported', () => {
    const { problems: probs } = importPolicy('firewalld', [
      { name: 'a.xml', text: '<zone target="DROP"><service name="no-such-thing"/></zone>' },
      { name: 'b.xml', text: '<zone>\n<service name="ssh">\n</zone>' },
      { name: 'c.xml', text: '<zone/>' },
    ]);
    assert.deepEqual(
      probs.map((p) => [p.file, p.line !== undefined]),
      [
        ['a.xml', true],
        ['b.xml', true],
        ['c.xml', false],
      ],
    );
    assert.match(probs[0]!.message, /--services/);
  });
});
