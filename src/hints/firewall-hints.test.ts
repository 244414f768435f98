import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import {
  addressFamily,
  type FirewallHints,
  type FirewallHintsOptions,
  firewallHints,
  RULE_FORMATS,
} from './index.js';

const situation = (h: FirewallHints, id: string) => {
  const s = h.situations.find((x) => x.id === id);
  assert.ok(s, `situation ${id} is missing`);
  return s;
};

describe('firewallHints', () => {
  test('both situations, each with an explanation and rules for every tool', () => {
    const h = firewallHints({ applicationPort: 44334 });
    assert.equal(h.applicationPort, 44334);
    assert.deepEqual(
      h.situations.map((s) => s.id),
      ['engine-behind-firewall', 'console-behind-firewall'],
    );
    for (const s of h.situations) {
      assert.ok(s.title.length > 0);
      assert.match(s.explanation, /TCP/);
      assert.match(s.explanation, /UDP/);
      assert.deepEqual(Object.keys(s.rules).sort(), [...RULE_FORMATS].sort());
    }
    assert.match(situation(h, 'engine-behind-firewall').explanation, /incoming TCP and UDP/);
    assert.match(situation(h, 'console-behind-firewall').explanation, /outgoing TCP and UDP/);
  });

  test('the port appears in every rule set, for TCP and UDP', () => {
    const h = firewallHints({ applicationPort: 50123 });
    for (const s of h.situations) {
      for (const format of RULE_FORMATS) {
        const text = s.rules[format];
        assert.match(text, /50123/, `${s.id} ${format}`);
        assert.match(text, /tcp/, `${s.id} ${format}`);
        assert.match(text, /udp/, `${s.id} ${format}`);
        assert.doesNotMatch(text, /44334/, `${s.id} ${format}`);
      }
    }
  });

  test('nftables: inet filter input/output chains with established,related replies', () => {
    const h = firewallHints({ applicationPort: 44334 });
    const a = situation(h, 'engine-behind-firewall').rules.nftables;
    assert.match(a, /table inet filter \{/);
    assert.match(
      a,
      /chain input \{\n\t\ttype filter hook input priority filter;\n\t\tct state established,related accept\n\t\ttcp dport 44334 accept/,
    );
    assert.match(a, /chain output \{/);
    assert.match(a, /udp dport 44334 accept/);
    const b = situation(h, 'console-behind-firewall').rules.nftables;
    assert.match(
      b,
      /chain output \{\n\t\ttype filter hook output priority filter;\n\t\tct state established,related accept\n\t\ttcp dport 44334 accept/,
    );
    assert.match(
      b,
      /chain input \{\n\t\ttype filter hook input priority filter;\n\t\tct state established,related accept\n\t\}/,
    );
    assert.doesNotMatch(`${a}${b}`, /saddr|daddr/);
  });

  test('without addresses: any address, iptables and ip6tables, plain firewalld ports', () => {
    const h = firewallHints({ applicationPort: 44334 });
    const a = situation(h, 'engine-behind-firewall').rules;
    assert.match(a.iptables, /^iptables -I INPUT -p tcp --dport 44334 -j ACCEPT$/m);
    assert.match(a.iptables, /^ip6tables -I INPUT -p udp --dport 44334 -j ACCEPT$/m);
    assert.match(a.ufw, /^ufw allow proto tcp from any to any port 44334 /m);
    assert.match(a.firewalld, /^firewall-cmd --permanent --add-port=44334\/tcp$/m);
    assert.match(a.firewalld, /^firewall-cmd --permanent --add-port=44334\/udp$/m);
    assert.match(a.firewalld, /^firewall-cmd --reload$/m);
    const b = situation(h, 'console-behind-firewall').rules;
    assert.match(b.iptables, /^iptables -I OUTPUT -p tcp --dport 44334 -j ACCEPT$/m);
    assert.match(b.iptables, /^ip6tables -I INPUT -m conntrack --ctstate ESTABLISHED,RELATED -j ACCEPT$/m);
    assert.match(b.ufw, /^ufw allow out proto udp from any to any port 44334 /m);
    assert.match(b.firewalld, /--policy warden-console-out --add-port=44334\/udp$/m);
    assert.match(b.firewalld, /^firewall-cmd --reload$/m);
  });

  test('IPv4 addresses restrict every rule set, and only iptables is used', () => {
    const h = firewallHints({
      applicationPort: 44334,
      engineAddress: '192.0.2.10',
      consoleAddress: '203.0.113.9',
    });
    for (const s of h.situations) {
      const r = s.rules;
      assert.match(r.nftables, /ip saddr 203\.0\.113\.9 ip daddr 192\.0\.2\.10 tcp dport 44334 accept/);
      assert.match(r.nftables, /ip saddr 203\.0\.113\.9 ip daddr 192\.0\.2\.10 udp dport 44334 accept/);
      assert.match(r.iptables, /-p tcp -s 203\.0\.113\.9 -d 192\.0\.2\.10 --dport 44334 -j ACCEPT/);
      assert.doesNotMatch(r.iptables, /ip6tables/);
      assert.match(r.ufw, /proto udp from 203\.0\.113\.9 to 192\.0\.2\.10 port 44334/);
      assert.match(
        r.firewalld,
        /--add-rich-rule='rule family="ipv4" source address="203\.0\.113\.9" destination address="192\.0\.2\.10" port port="44334" protocol="tcp" accept'/,
      );
      assert.match(s.explanation, /192\.0\.2\.10/);
    }
    assert.match(
      situation(h, 'engine-behind-firewall').rules.iptables,
      /^iptables -t nat -A PREROUTING -p tcp --dport 44334 -j DNAT --to-destination 192\.0\.2\.10$/m,
    );
  });

  test('IPv6 addresses use ip6 saddr/daddr, ip6tables and family ipv6', () => {
    const h = firewallHints({ applicationPort: 44334, consoleAddress: '2001:DB8::9' });
    for (const s of h.situations) {
      const r = s.rules;
      assert.match(r.nftables, /ip6 saddr 2001:db8::9 tcp dport 44334 accept/);
      assert.doesNotMatch(r.nftables, /\bip saddr|daddr/);
      assert.match(r.iptables, /^ip6tables -I \w+ -p udp -s 2001:db8::9 --dport 44334 -j ACCEPT$/m);
      assert.doesNotMatch(r.iptables, /^iptables/m);
      assert.match(r.ufw, /from 2001:db8::9 to any port 44334/);
      assert.match(r.firewalld, /rule family="ipv6" source address="2001:db8::9" port port="44334"/);
    }
    const e = firewallHints({ applicationPort: 44334, engineAddress: '2001:db8::10' });
    assert.match(situation(e, 'console-behind-firewall').rules.nftables, /ip6 daddr 2001:db8::10 udp dport/);
    assert.match(situation(e, 'console-behind-firewall').rules.iptables, /-d 2001:db8::10 --dport 44334/);
  });

  test('the UDP log channel is explained', () => {
    const b = situation(firewallHints({ applicationPort: 44334 }), 'console-behind-firewall').explanation;
    assert.match(b, /UDP from the engine to the console is the log channel/);
    assert.match(b, /registration/);
    assert.match(b, /replies/);
    assert.match(b, /re-registers periodically/);
    assert.match(b, /fall back to the TCP channel/);
  });

  test('a bad port or address is a RangeError', () => {
    for (const applicationPort of [0, 65536, -1, 1.5, Number.NaN]) {
      assert.throws(() => firewallHints({ applicationPort }), RangeError, String(applicationPort));
    }
    for (const bad of [
      '',
      'fw.example.net',
      '256.1.1.1',
      '10.0.0.1/8',
      '1:2:3',
      '2001:db8::1::2',
      'fe80::1%eth0',
    ]) {
      assert.throws(() => firewallHints({ applicationPort: 1, engineAddress: bad }), RangeError, bad);
      assert.throws(() => firewallHints({ applicationPort: 1, consoleAddress: bad }), RangeError, bad);
    }
    assert.throws(
      () => firewallHints({ applicationPort: 1, engineAddress: '192.0.2.1', consoleAddress: '2001:db8::1' }),
      /different IP versions/,
    );
  });
});

describe('addressFamily', () => {
  test('IPv4 and IPv6, with :: and an embedded IPv4 part', () => {
    assert.equal(addressFamily('0.0.0.0'), 'ipv4');
    assert.equal(addressFamily('255.255.255.255'), 'ipv4');
    assert.equal(addressFamily('::'), 'ipv6');
    assert.equal(addressFamily('::1'), 'ipv6');
    assert.equal(addressFamily('2001:db8:0:0:0:0:0:1'), 'ipv6');
    assert.equal(addressFamily('::ffff:192.0.2.1'), 'ipv6');
    assert.equal(addressFamily('1:2:3:4:5:6:192.0.2.1'), 'ipv6');
    for (const bad of [
      '01.2.3.4',
      '1.2.3',
      '1:2:3:4:5:6:7:8:9',
      '1:2:3:4:5:6:7::8',
      '12345::',
      ':::',
      'g::1',
    ]) {
      assert.equal(addressFamily(bad), null, bad);
    }
  });
});

/**
 * Every generated nftables snippet passes `nft -c` (check only). nft runs only
 * inside a network namespace this test creates and deletes, never in the
 * host's, and only as root with nft installed; otherwise the test is skipped.
 */
const NFT = '/usr/sbin/nft';
const nftSkip = ((): string | false => {
  if (process.platform !== 'linux') return 'nft exists only on Linux';
  if (process.getuid?.() !== 0)
    return 'checking with nft needs root (to create a throwaway network namespace)';
  if (!existsSync(NFT)) return `${NFT} is not installed (apt install nftables to run this check)`;
  if (spawnSync('ip', ['-V']).status !== 0) return 'the ip command (iproute2) is not installed';
  return false;
})();

test('every nftables snippet passes nft -c in a throwaway network namespace', {
  skip: nftSkip,
}, async (t) => {
  const ns = `warden-hints-test-${randomBytes(4).toString('hex')}`;
  const add = spawnSync('ip', ['netns', 'add', ns], { encoding: 'utf8' });
  if (add.status !== 0) {
    t.skip(`cannot create a network namespace: ${(add.stderr || add.error?.message || '').trim()}`);
    return;
  }
  const dir = mkdtempSync(join(tmpdir(), 'warden-hints-'));
  try {
    const variants: FirewallHintsOptions[] = [
      { applicationPort: 44334 },
      { applicationPort: 1, engineAddress: '192.0.2.10' },
      { applicationPort: 65535, consoleAddress: '203.0.113.9' },
      { applicationPort: 44334, engineAddress: '192.0.2.10', consoleAddress: '203.0.113.9' },
      { applicationPort: 44334, engineAddress: '2001:db8::10', consoleAddress: '2001:db8:1::9' },
      { applicationPort: 44334, consoleAddress: '::ffff:192.0.2.1' },
    ];
    for (const [i, options] of variants.entries()) {
      for (const s of firewallHints(options).situations) {
        await t.test(`${s.id} ${JSON.stringify(options)}`, () => {
          const file = join(dir, `${i}-${s.id}.nft`);
          writeFileSync(file, s.rules.nftables);
          const r = spawnSync('ip', ['netns', 'exec', ns, NFT, '-c', '-f', file], { encoding: 'utf8' });
          assert.equal(r.status, 0, `nft -c failed:\n${r.stderr}\n--- snippet ---\n${s.rules.nftables}`);
        });
      }
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
    spawnSync('ip', ['netns', 'del', ns]);
  }
});
