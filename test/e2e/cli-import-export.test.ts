/** End-to-end: `warden policy import` and `warden policy export`, spawned as a user runs them. */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { repoRoot } from '../repo-root.js';

const root = repoRoot(import.meta.url);
const bin = join(root, 'dist/src/console/bin.js');
const fixtures = join(root, 'test/fixtures/import');
const work = mkdtempSync(join(tmpdir(), 'warden-import-'));
after(() => rmSync(work, { recursive: true, force: true }));

function warden(args: string[]) {
  const r = spawnSync(process.execPath, [bin, ...args], {
    encoding: 'utf8',
    env: { PATH: process.env.PATH ?? '', NO_COLOR: '1' },
  });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

describe('warden policy import', () => {
  test('ufw files to a policy file: exit 1, what was not imported on stderr with file:line, the file checks', () => {
    const out = join(work, 'from-ufw.yaml');
    const r = warden([
      'policy',
      'import',
      '--from',
      'ufw',
      join(fixtures, 'ufw/user.rules'),
      join(fixtures, 'ufw/user6.rules'),
      join(fixtures, 'ufw/ufw.default'),
      '-o',
      out,
    ]);
    assert.equal(r.code, 1, r.stderr);
    assert.equal(r.stdout, '');
    assert.match(r.stderr, /not imported \(3\):/);
    assert.match(r.stderr, /user\.rules:39:1: .*interface eth1/);
    assert.match(r.stderr, /limit" became a plain allow/);
    const yaml = readFileSync(out, 'utf8');
    assert.match(yaml, /^# Imported from ufw by warden policy import\./);
    assert.match(yaml, /name: ssh from anywhere/);
    const check = warden(['policy', 'check', out]);
    assert.equal(check.code, 0, check.stderr);
  });

  test('a directory of OpenSnitch rules, --json: policy and problems as JSON on stdout', () => {
    const r = warden(['policy', 'import', '--from', 'opensnitch', join(fixtures, 'opensnitch'), '--json']);
    assert.equal(r.code, 0, r.stderr);
    const j = JSON.parse(r.stdout) as {
      policy: { rules: { name: string }[]; lists?: Record<string, { file: string }> };
      notImported: { rule: string }[];
    };
    // The python rule's process.command regexp becomes an arguments glob, and the lists operand a list
    // of its directory (docs/import-export.md): every fixture rule is imported.
    assert.equal(j.policy.rules.length, 7);
    assert.equal(j.policy.lists?.ads?.file, '/etc/opensnitchd/blocklists/ads');
    assert.deepEqual(j.notImported, []);
  });

  test('everything importable: exit 0 and the policy on stdout', () => {
    const r = warden([
      'policy',
      'import',
      '--from',
      'firewalld',
      join(fixtures, 'firewalld/zones/trusted-lab.xml'),
    ]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /remote: 10\.10\.0\.0\/16/);
  });

  test('usage errors exit 2; a missing file exits 1', () => {
    assert.equal(warden(['policy', 'import', '--from', 'iptables', 'x']).code, 2);
    assert.equal(warden(['policy', 'import', 'x']).code, 2);
    const missing = warden(['policy', 'import', '--from', 'ufw', join(work, 'nope.rules')]);
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, /does not exist/);
  });
});

describe('warden policy export', () => {
  test('to ufw: the script on stdout, what ufw cannot express on stderr (exit 1)', () => {
    const r = warden(['policy', 'export', join(root, 'examples/policy.yaml'), '--to', 'ufw']);
    assert.equal(r.code, 1);
    assert.match(r.stdout, /^#!\/bin\/sh/);
    assert.match(r.stdout, /ufw default deny incoming/);
    assert.match(r.stderr, /rule "ssh from the LAN"\): not exported: ufw rules do not match applications/);
  });

  test('to OpenSnitch into a directory; importing that directory back gives the same outgoing rules', () => {
    const dir = join(work, 'osn');
    const r = warden([
      'policy',
      'export',
      join(root, 'examples/policy.yaml'),
      '--to',
      'opensnitch',
      '-o',
      dir,
    ]);
    assert.equal(r.code, 1);
    const files = readdirSync(dir).sort();
    assert.ok(files.length >= 3, files.join(' '));
    for (const f of files) JSON.parse(readFileSync(join(dir, f), 'utf8'));
    const back = warden(['policy', 'import', '--from', 'opensnitch', dir]);
    assert.equal(back.code, 0, back.stderr);
  });

  test('an imported firewalld zone exports to firewall-cmd commands', () => {
    const policy = join(work, 'fw.yaml');
    warden([
      'policy',
      'import',
      '--from',
      'firewalld',
      join(fixtures, 'firewalld/zones/public.xml'),
      '--services',
      join(fixtures, 'firewalld/services'),
      '-o',
      policy,
    ]);
    const r = warden(['policy', 'export', policy, '--to', 'firewalld', '--zone', 'work']);
    assert.match(r.stdout, /firewall-cmd --permanent --zone='work' --add-rich-rule='rule priority="-32000" /);
    assert.match(r.stdout, /firewall-cmd --reload/);
  });
});
