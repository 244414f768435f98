/** End-to-end: the built `warden` CLI against a real administration server on 127.0.0.1. */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { fixtureIdentity, until } from '../integration/admin-harness.js';
import { cliAgainstHarness, cliBin } from '../support/console-harness.js';

describe('warden against a running engine', () => {
  const cli = cliAgainstHarness();
  const warden = (args: string[], env?: Record<string, string>) => cli.warden(args, env);

  test('connect refuses an unknown fingerprint without --accept, then pins it with --accept', async () => {
    const address = `127.0.0.1:${cli.h.server.port}`;
    const refused = await warden(['connect', address, '--user', 'alice', '--name', 'lab']);
    assert.equal(refused.code, 1);
    assert.match(refused.stderr, /not known yet/);
    assert.match(refused.stderr, new RegExp(cli.h.fingerprint));
    const ok = await warden([
      'connect',
      address,
      '--user',
      'alice',
      '--name',
      'lab',
      '--accept',
      cli.h.fingerprint,
    ]);
    assert.equal(ok.code, 0, ok.stderr);
    assert.match(ok.stdout, /Connected to lab .* as alice \(administrator\)/);
    const pinned = JSON.parse(readFileSync(join(cli.home, 'warden/known-hosts.json'), 'utf8'));
    assert.equal(pinned.hosts[address].fingerprint, cli.h.fingerprint);
  });

  test('status, rules and settings through the remembered engine', async () => {
    const status = await warden(['status', '--engine', 'lab', '--json']);
    assert.equal(status.code, 0, status.stderr);
    assert.equal(JSON.parse(status.stdout)[0].status.hostname, 'test-host');
    const add = await warden([
      'rules',
      'add',
      '{ name: ssh, direction: incoming, protocol: tcp, localPorts: 22, action: allow }',
      '--engine',
      'lab',
    ]);
    assert.equal(add.code, 0, add.stderr);
    const bad = await warden([
      'rules',
      'add',
      '{ name: bad, direction: sideways, action: allow }',
      '--engine',
      'lab',
    ]);
    assert.equal(bad.code, 1);
    assert.match(bad.stderr, /direction/);
    const list = await warden(['rules', 'list', '--engine', 'lab', '--internal', '--json']);
    const parsed = JSON.parse(list.stdout);
    assert.deepEqual(
      parsed.rules.map((r: { name: string }) => r.name),
      ['ssh'],
    );
    assert.ok(parsed.internal.length >= 6);
    const set = await warden([
      'settings',
      'set',
      'syslog.enabled=true',
      'syslog.host=192.0.2.7',
      '--engine',
      'lab',
    ]);
    assert.equal(set.code, 0, set.stderr);
    const get = await warden(['settings', 'get', 'syslog.host', '--engine', 'lab']);
    assert.equal(get.stdout.trim(), '192.0.2.7');
  });

  test('an auditor is refused changes with a clear error', async () => {
    const r = await warden(['rules', 'remove', 'ssh', '--engine', 'lab', '--user', 'bob'], {
      WARDEN_PASSWORD: 'auditor password',
    });
    assert.equal(r.code, 1);
    assert.match(r.stderr, /needs the administrator role/);
  });

  test('logs: the audit trail of what was just done, filtered', async () => {
    const r = await warden(['logs', '--engine', 'lab', '--kind', 'admin', '--text', 'ssh', '--json']);
    assert.equal(r.code, 0, r.stderr);
    const items = r.stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    assert.ok(
      items.some(
        (i: { message: string; user: string }) =>
          i.message.includes('rule "ssh" added') && i.user === 'alice',
      ),
    );
  });

  test('config history, diff, rollback and confirm', async () => {
    const hist = await warden(['config', 'history', '--engine', 'lab', '--json']);
    assert.equal(hist.code, 0, hist.stderr);
    const { versions } = JSON.parse(hist.stdout) as { versions: { version: number; what: string }[] };
    const addSsh = versions.find((v) => v.what === 'policy')!;
    const table = await warden(['config', 'history', '--engine', 'lab']);
    assert.match(table.stdout, /version.*time.*user.*source.*change/);
    assert.match(table.stdout, /alice +127\.0\.0\.1 +policy/);
    const diff = await warden([
      'config',
      'diff',
      String(addSsh.version - 1),
      String(addSsh.version),
      '--engine',
      'lab',
    ]);
    assert.equal(diff.code, 0, diff.stderr);
    assert.match(diff.stdout, /^\+.*name: ssh$/m);
    const back = await warden([
      'config',
      'rollback',
      String(addSsh.version - 1),
      '--engine',
      'lab',
      '--confirm',
      '60',
    ]);
    assert.equal(back.code, 0, back.stderr);
    const pending = /warden config confirm (\d+)/.exec(back.stdout);
    assert.ok(pending, back.stdout);
    const ok = await warden(['config', 'confirm', pending[1]!, '--engine', 'lab']);
    assert.equal(ok.code, 0, ok.stderr);
    assert.match(ok.stdout, /confirmed/);
    const again = await warden(['config', 'confirm', pending[1]!, '--engine', 'lab', '--json']);
    assert.equal(again.code, 1);
    assert.equal(JSON.parse(again.stderr).error.code, 'WARDEN_E_NOT_FOUND');
    const usage = await warden(['config', 'diff', 'one', '2', '--engine', 'lab']);
    assert.equal(usage.code, 2);
  });

  test('logs --follow and asks watch print what arrives and end with exit 0 on Ctrl-C', async () => {
    for (const [args, expect, produce] of [
      [
        ['logs', '--follow', '--json'],
        /followed item/,
        () => cli.h.logs.append({ kind: 'system', message: 'followed item' }),
      ],
      [['asks', 'watch'], /watching lab for ask prompts/, () => {}],
    ] as const) {
      const child = spawn(process.execPath, [cliBin, ...args, '--engine', 'lab'], { env: cli.env() });
      let out = '';
      child.stdout.on('data', (d) => (out += d));
      child.stderr.on('data', (d) => (out += d));
      await until(() => /Ctrl-C to stop/.test(out), 5000, `${args.join(' ')} to start`);
      await new Promise((r) => setTimeout(r, 300)); // UDP registration or TCP fallback settles
      produce();
      await until(() => expect.test(out), 5000, `${args.join(' ')} output`);
      child.kill('SIGINT');
      const [code] = (await once(child, 'exit')) as [number];
      assert.equal(code, 0, out);
    }
  });

  test('a changed fingerprint is refused with a warning and exit 1', async () => {
    const file = join(cli.home, 'warden/known-hosts.json');
    const known = JSON.parse(readFileSync(file, 'utf8'));
    known.hosts[`127.0.0.1:${cli.h.server.port}`].fingerprint = fixtureIdentity('other').fingerprint;
    writeFileSync(file, JSON.stringify(known));
    const r = await warden(['status', '--engine', 'lab']);
    assert.equal(r.code, 1);
    assert.match(r.stdout + r.stderr, /IDENTITY HAS CHANGED|not the one pinned/);
  });
});
