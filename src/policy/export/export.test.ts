import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { parsePolicyText } from '../parse.js';
import { exportFirewalld, exportOpenSnitch, exportUfw, rangeToCidrs } from './index.js';

const policy = parsePolicyText(`
defaults:
  incoming: { action: reject }
  outgoing: { action: allow }
rules:
  - { name: ssh from lan, direction: incoming, protocol: tcp, localPorts: 22, remote: [10.0.0.0/8, "fd00::/8"], action: allow, log: true }
  - { name: dns, direction: both, protocol: tcp+udp, remotePorts: 53, action: allow }
  - { name: no smtp for curl, direction: outgoing, protocol: tcp, application: /usr/bin/curl, remotePorts: [25, 465], action: deny }
  - { name: ads, direction: outgoing, remote: "*.doubleclick.net", action: reject }
  - { name: odd range, direction: incoming, protocol: udp, localPorts: 5000-5010, remote: 192.168.0.1-192.168.0.6, action: deny }
  - { name: ask mail, direction: outgoing, protocol: tcp, remotePorts: 993, action: ask }
`);

describe('export', () => {
  test('ranges become the fewest CIDR blocks', () => {
    const r = policy.rules[4]!.remote![0]!;
    assert.equal(r.kind, 'ip');
    if (r.kind === 'ip')
      assert.deepEqual(
        rangeToCidrs(r.range).map((c) => c.text),
        ['192.168.0.1', '192.168.0.2/31', '192.168.0.4/31', '192.168.0.6'],
      );
  });

  test('ufw: commands in order, one per address and protocol; what ufw cannot express is listed', () => {
    const r = exportUfw(policy);
    const lines = r.script.split('\n').filter((l) => l.startsWith('ufw '));
    assert.deepEqual(lines.slice(0, 4), [
      'ufw default reject incoming',
      'ufw default allow outgoing',
      "ufw allow in log proto tcp from 10.0.0.0/8 to any port 22 comment 'ssh from lan'",
      "ufw allow in log proto tcp from fd00::/8 to any port 22 comment 'ssh from lan'",
    ]);
    assert.ok(lines.includes("ufw allow out proto udp from any to any port 53 comment 'dns'"));
    assert.ok(lines.includes("ufw allow in proto tcp from any port 53 to any comment 'dns'"));
    assert.ok(
      lines.includes("ufw deny in proto udp from 192.168.0.2/31 to any port 5000:5010 comment 'odd range'"),
    );
    assert.deepEqual(
      r.skipped.map((s) => s.rule),
      ['no smtp for curl', 'ads', 'ask mail'],
    );
    assert.match(r.userRules, /### tuple ### allow_log tcp 22 0\.0\.0\.0\/0 any 10\.0\.0\.0\/8 in comment=/);
    assert.match(r.user6Rules, /### tuple ### allow_log tcp 22 ::\/0 any fd00::\/8 in comment=/);
  });

  test('firewalld: rich rules with rising priorities, the default as target, outgoing rules listed', () => {
    const r = exportFirewalld(policy, 'public');
    assert.match(r.script, /--set-target=REJECT/);
    assert.match(
      r.script,
      /--add-rich-rule='rule priority="-32000" family="ipv4" source address="10\.0\.0\.0\/8" port port="22" protocol="tcp" log prefix="warden ssh from lan" level="info" accept'/,
    );
    assert.match(r.script, /priority="-31998" source-port port="53" protocol="tcp" accept/);
    assert.match(r.zoneXml, /<zone target="%%REJECT%%">/);
    assert.deepEqual(
      r.skipped.map((s) => [s.rule, /half/.test(s.message)]),
      [
        ['dns', true],
        ['no smtp for curl', false],
        ['ads', false],
        ['ask mail', false],
      ],
    );
  });

  test('OpenSnitch: name order is Warden order, every rule has precedence, the default is a last catch-all', () => {
    const r = exportOpenSnitch(policy, '2026-11-23T12:00:00Z');
    const names = r.files.map((f) => f.name);
    assert.deepEqual([...names].sort(), names);
    const rules = r.files.map(
      (f) =>
        JSON.parse(f.text) as {
          precedence: boolean;
          action: string;
          operator: { operand: string; data: string };
        },
    );
    assert.ok(rules.every((x) => x.precedence));
    const last = rules[rules.length - 1]!;
    assert.equal(last.operator.operand, 'true');
    assert.equal(last.action, 'allow');
    const ads = rules.find((x) => x.action === 'reject')!;
    assert.equal(ads.operator.data, '^.*\\.doubleclick\\.net$');
    assert.deepEqual(
      r.skipped.map((s) => s.rule),
      ['ssh from lan', 'dns', 'odd range', 'ask mail'],
    );
  });

  test('OpenSnitch: a hosts list in a directory becomes lists.domains; lists it cannot read the same way are listed', () => {
    const listed = parsePolicyText(`
lists:
  ads: { file: /etc/opensnitchd/ads, format: hosts }
  trackers: { file: /etc/lists/trackers.txt, format: domains }
  nets: { file: /etc/lists/nets, format: ips }
  remote: { url: "https://lists.example.org/hosts.txt", format: hosts }
  onefile: { file: /etc/lists/one.txt, format: hosts }
addressGroups:
  bad: ["list:ads", 192.0.2.0/24]
rules:
  - { name: no ads, direction: outgoing, remote: ["list:ads", "*.ads.example"], action: deny }
  - { name: bad group, direction: outgoing, protocol: tcp, remote: "@bad", action: reject }
  - { name: trackers, direction: outgoing, remote: "list:trackers", action: deny }
  - { name: nets, direction: outgoing, remote: "list:nets", action: deny }
  - { name: remote, direction: outgoing, remote: "list:remote", action: deny }
  - { name: one file, direction: outgoing, remote: "list:onefile", action: deny }
`);
    const r = exportOpenSnitch(listed, '2026-12-06T12:00:00Z', {
      isDirectory: (path) => !path.endsWith('.txt'),
    });
    type Op = { type: string; operand: string; data: string; list: Op[] | null };
    const rules = r.files.map((f) => JSON.parse(f.text) as { description: string; operator: Op });
    const of = (name: string) => rules.filter((x) => x.description === name).map((x) => x.operator);
    // One file per remote entry (OR): the host pattern, and the list as OpenSnitch's own list operand.
    assert.deepEqual(
      of('no ads').map((o) => [o.type, o.operand, o.data]),
      [
        ['regexp', 'dest.host', '^.*\\.ads\\.example$'],
        ['lists', 'lists.domains', '/etc/opensnitchd/ads'],
      ],
    );
    // Through a group too, beside the rule's other conditions (AND in one file).
    const group = of('bad group').map((o) => o.list!.map((x) => `${x.operand}=${x.data}`));
    assert.deepEqual(group, [
      ['protocol=^(tcp|tcp6)$', 'dest.network=192.0.2.0/24'],
      ['protocol=^(tcp|tcp6)$', 'lists.domains=/etc/opensnitchd/ads'],
    ]);
    const why = Object.fromEntries(r.skipped.map((s) => [s.rule, s.message]));
    assert.match(why.trackers!, /subdomains too; OpenSnitch's lists\.domains matches exact names/);
    assert.match(why.nets!, /OpenSnitch keeps addresses \(lists\.ips\) and networks \(lists\.nets\) apart/);
    assert.match(why.remote!, /fetched from a URL; OpenSnitch reads lists from local directories only/);
    assert.match(
      why['one file']!,
      /is the file \/etc\/lists\/one\.txt; OpenSnitch reads a list from a directory/,
    );
    assert.equal(Object.keys(why).length, 4);
  });
});
