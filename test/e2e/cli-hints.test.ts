/** End-to-end: `warden hints`, the built binary spawned as a user would run it. */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { repoRoot } from '../repo-root.js';

const root = repoRoot(import.meta.url);
const bin = join(root, 'dist/src/console/bin.js');

function warden(args: string[]) {
  const r = spawnSync(process.execPath, [bin, ...args], {
    encoding: 'utf8',
    env: { PATH: process.env.PATH ?? '', NO_COLOR: '1', FORCE_COLOR: '0' },
  });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

describe('warden hints', () => {
  test('prints both situations with explanations and rules for every tool, port 44334 by default', () => {
    const r = warden(['hints']);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stderr, '');
    assert.match(r.stdout, /== 1\. Engine behind a firewall, console on the Internet ==/);
    assert.match(r.stdout, /== 2\. Console behind a firewall, engine on the Internet ==/);
    assert.match(r.stdout, /incoming TCP and UDP/);
    assert.match(r.stdout, /outgoing TCP and UDP/);
    assert.match(r.stdout, /log channel/);
    for (const tool of ['nftables', 'iptables / ip6tables', 'ufw', 'firewalld']) {
      assert.equal(r.stdout.split(`-- ${tool}`).length - 1, 2, tool);
    }
    assert.match(r.stdout, /table inet filter \{/);
    assert.match(r.stdout, /ct state established,related accept/);
    assert.match(r.stdout, /^iptables -I INPUT -p tcp --dport 44334 -j ACCEPT$/m);
    assert.match(r.stdout, /^ip6tables -I OUTPUT -p udp --dport 44334 -j ACCEPT$/m);
    assert.match(r.stdout, /^ufw allow proto udp from any to any port 44334/m);
    assert.match(r.stdout, /^firewall-cmd --permanent --add-port=44334\/tcp$/m);
    assert.match(r.stdout, /^firewall-cmd --reload$/m);
  });

  test('--port, addresses and --format restrict the rules', () => {
    const r = warden([
      'hints',
      '--port',
      '44400',
      '--engine',
      '192.0.2.10',
      '--console',
      '203.0.113.9',
      '--format',
      'nftables',
    ]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /ip saddr 203\.0\.113\.9 ip daddr 192\.0\.2\.10 tcp dport 44400 accept/);
    assert.doesNotMatch(r.stdout, /44334|iptables|firewall-cmd|^ufw/m);
  });

  test('--json: both situations with id, title, explanation and the rules', () => {
    const r = warden(['hints', '--console', '2001:DB8::9', '--json']);
    assert.equal(r.code, 0, r.stderr);
    const out = JSON.parse(r.stdout) as {
      applicationPort: number;
      situations: { id: string; title: string; explanation: string; rules: Record<string, string> }[];
    };
    assert.equal(out.applicationPort, 44334);
    assert.deepEqual(
      out.situations.map((s) => s.id),
      ['engine-behind-firewall', 'console-behind-firewall'],
    );
    for (const s of out.situations) {
      assert.equal(typeof s.title, 'string');
      assert.equal(typeof s.explanation, 'string');
      assert.deepEqual(Object.keys(s.rules), ['nftables', 'iptables', 'ufw', 'firewalld']);
      assert.match(s.rules.nftables!, /ip6 saddr 2001:db8::9 udp dport 44334 accept/);
      assert.match(s.rules.iptables!, /^ip6tables /m);
      assert.doesNotMatch(s.rules.iptables!, /^iptables /m);
    }
    const one = JSON.parse(warden(['hints', '--json', '--format', 'ufw']).stdout) as typeof out;
    assert.deepEqual(Object.keys(one.situations[0]!.rules), ['ufw']);
  });

  test('a bad port exits 2 with a hint', () => {
    for (const port of ['0', '65536', 'http']) {
      const r = warden(['hints', '--port', port]);
      assert.equal(r.code, 2, port);
      assert.equal(r.stdout, '');
      assert.match(r.stderr, new RegExp(`--port "${port}" is not a port number \\(1-65535\\)`));
      assert.match(r.stderr, /hint: .*--port 44334/);
    }
    const json = warden(['hints', '--port', '70000', '--json']);
    assert.equal(json.code, 2);
    assert.equal(JSON.parse(json.stderr).error.code, 'WARDEN_E_USAGE');
  });

  test('a bad address, mixed IP versions or an unknown format exit 2', () => {
    const name = warden(['hints', '--engine', 'fw.example.net']);
    assert.equal(name.code, 2);
    assert.match(name.stderr, /--engine "fw\.example\.net" is not an IPv4 or IPv6 address/);
    assert.match(name.stderr, /hint: /);
    const mixed = warden(['hints', '--engine', '192.0.2.10', '--console', '2001:db8::9']);
    assert.equal(mixed.code, 2);
    assert.match(mixed.stderr, /different IP versions/);
    const format = warden(['hints', '--format', 'pf']);
    assert.equal(format.code, 2);
    assert.match(format.stderr, /--format "pf" is not one of nftables, iptables, ufw, firewalld, all/);
  });
});
