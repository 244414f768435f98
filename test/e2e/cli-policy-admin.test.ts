/**
 * End-to-end: the built `warden` CLI's policy-level commands (policy show|mode|default, groups,
 * proposals) and `warden logs` (newest N, whole ranges past the answer cap, --reverse, a closed pipe)
 * against a real administration server on 127.0.0.1, with the engine's real Enforcer feeding proposals.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { describe, test } from 'node:test';
import { ProposalBook } from '../../src/admin/proposals.js';
import { AskDesk } from '../../src/engine/asks.js';
import { Enforcer } from '../../src/engine/enforcer.js';
import { compilePolicy } from '../../src/policy/index.js';
import { USERS } from '../integration/admin-harness.js';
import { allButConnect, cliAgainstHarness, cliBin } from '../support/console-harness.js';

describe('warden policy, groups, proposals and logs against a running engine', () => {
  let book: ProposalBook;
  const cli = cliAgainstHarness({
    toLab: allButConnect,
    maxBuffer: 64 * 1024 * 1024,
    server: async () => {
      book = await ProposalBook.open();
      return { proposals: book };
    },
  });
  const warden = (...args: string[]) => cli.warden(args);

  test('connect, then policy show / mode / default print what changed and how to undo it', async () => {
    await cli.connectLab();
    const show = await warden('policy', 'show');
    assert.equal(show.code, 0, show.stderr);
    assert.match(show.stdout, /mode: +enforce/);
    assert.match(show.stdout, /outgoing: +allow, logged/);
    const mode = await warden('policy', 'mode', 'learning');
    assert.equal(mode.code, 0, mode.stderr);
    assert.match(mode.stdout, /Mode: enforce -> learning\.\nUndo: warden policy mode enforce --engine lab/);
    const bad = await warden('policy', 'mode', 'learn');
    assert.equal(bad.code, 2);
    assert.match(
      bad.stderr,
      /mode "learn" is not one of enforce, learning, monitor\nhint: Did you mean learning\?/,
    );
    const def = await warden('policy', 'default', 'outgoing', 'deny', '--log');
    assert.equal(def.code, 0, def.stderr);
    assert.match(
      def.stdout,
      /Default outgoing: allow, logged -> deny, logged\.\nUndo: warden policy default outgoing allow --log/,
    );
    const nolog = await warden('policy', 'default', 'in', '--no-log');
    assert.match(nolog.stdout, /Default incoming: deny, logged -> deny, not logged/);
    const confirm = await warden('policy', 'default', 'incoming', 'reject', '--confirm', '600');
    assert.match(confirm.stdout, /on probation: .* warden config confirm \d+/);
    const json = JSON.parse((await warden('policy', 'show', '--json')).stdout);
    assert.deepEqual(json.defaults, {
      incoming: { action: 'reject', log: false },
      outgoing: { action: 'deny', log: true },
    });
    const auditor = await cli.warden(['policy', 'mode', 'monitor', '--user', 'bob'], {
      WARDEN_PASSWORD: USERS.bob!.password,
    });
    assert.equal(auditor.code, 1);
    assert.match(auditor.stderr, /administrator/);
  });

  test('groups list / add / set / remove', async () => {
    assert.match((await warden('groups', 'list')).stdout, /No address groups/);
    const add = await warden('groups', 'add', 'lan', '192.168.0.0/16');
    assert.equal(add.code, 0, add.stderr);
    assert.match(
      add.stdout,
      /Created @lan: 192\.168\.0\.0\/16 .*\nUndo: warden groups remove lan --engine lab/,
    );
    const more = await warden('groups', 'add', '@lan', '10.0.0.0/8');
    assert.match(
      more.stdout,
      /Changed @lan: 192\.168\.0\.0\/16, 10\.0\.0\.0\/8 \(added 10\.0\.0\.0\/8\)\.\nUndo: warden groups remove lan 10\.0\.0\.0\/8/,
    );
    const bad = await warden('groups', 'add', 'lan', '10.0.0.1/8');
    assert.equal(bad.code, 1);
    assert.match(bad.stderr, /10\.0\.0\.1\/8.*did you mean 10\.0\.0\.0\/8/);
    const set = await warden('groups', 'set', 'dns', '192.0.2.53');
    assert.match(set.stdout, /@dns: \(new\) -> 192\.0\.2\.53/);
    const list = await warden('groups', 'list');
    assert.match(list.stdout, /@lan +192\.168\.0\.0\/16, 10\.0\.0\.0\/8 +-/);
    const rm = await warden('groups', 'remove', 'lan', '10.0.0.0/8');
    assert.match(rm.stdout, /Changed @lan: 192\.168\.0\.0\/16 \(removed 10\.0\.0\.0\/8\)/);
    const whole = await warden('groups', 'remove', 'dns');
    assert.match(
      whole.stdout,
      /Removed @dns \(it held 192\.0\.2\.53\)\.\nUndo: warden groups set dns 192\.0\.2\.53/,
    );
    const missing = await warden('groups', 'remove', 'nope');
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, /no address group is named "nope"/);
  });

  test('proposals list / accept / reject, one by one and in bulk', async () => {
    const enforcer = new Enforcer({
      policy: () => compilePolicy(cli.h.config.policy()),
      identify: async (t) => ({
        executable: t.sourcePort! < 2000 ? '/usr/bin/curl' : '/usr/bin/wget',
        uid: 0,
      }),
      hostsOf: () => [],
      asks: new AskDesk({ timeoutMs: () => 50, consoles: () => 0, notify: () => {} }),
      log: (i) => cli.h.logs.append(i),
      executables: { engine: '/e', console: '/c', assistant: '/a' },
      propose: (rule, facts) => book.seen(rule, facts),
    });
    const connect = (sourcePort: number, destination: string, destinationPort: number) =>
      enforcer.judge(
        { protocol: 'tcp', source: '10.200.0.1', destination, sourcePort, destinationPort },
        'outgoing',
      );
    await connect(1001, '192.0.2.10', 443);
    await connect(1002, '192.0.2.10', 443);
    await connect(1003, '192.0.2.11', 80);
    await connect(2001, '192.0.2.12', 22);
    await connect(2002, '192.0.2.13', 22);
    const list = await warden('proposals', 'list');
    assert.equal(list.code, 0, list.stderr);
    assert.match(
      list.stdout,
      /\/usr\/bin\/curl \(2\)\nid .*\n-+.*\n[0-9a-f]{12} +outgoing +to 192\.0\.2\.10 tcp\/443 +2 /,
    );
    assert.match(list.stdout, /\/usr\/bin\/wget \(2\)/);
    const ids = JSON.parse((await warden('proposals', 'list', '--json')).stdout).proposals as {
      id: string;
      remote: string;
    }[];
    const one = ids.find((p) => p.remote === '192.0.2.10')!.id;
    const acc = await warden('proposals', 'accept', one);
    assert.equal(acc.code, 0, acc.stderr);
    assert.match(
      acc.stdout,
      /Added 1 rule \(last in the list\):\n {2}"learned: \/usr\/bin\/curl outgoing tcp\/443 to 192\.0\.2\.10"\nUndo: warden config rollback \d+/,
    );
    const rules = await warden('rules', 'list');
    assert.match(rules.stdout, /learned: \/usr\/bin\/curl outgoing tcp\/443 to 192\.0\.2\.10 +allow/);
    const rej = await warden('proposals', 'reject', '--all', '--app', '/usr/bin/wget');
    assert.match(rej.stdout, /Rejected 2: [0-9a-f]{12} [0-9a-f]{12}\. They are not proposed again\./);
    const all = await warden('proposals', 'accept', '--all');
    assert.match(all.stdout, /Added 1 rule/);
    assert.match((await warden('proposals', 'list')).stdout, /No proposals\./);
    const none = await warden('proposals', 'accept');
    assert.equal(none.code, 2);
    assert.match(none.stderr, /which proposals\? give their ids, or --all/);
  });

  test('logs: the newest N by default, oldest first or --reverse; the whole --since range past the answer cap', async () => {
    const from = new Date().toISOString();
    const first = cli.h.logs.lastSeq + 1;
    for (let i = 0; i < 12_000; i++)
      cli.h.logs.append({
        kind: 'connection',
        verdict: 'allow',
        application: '/usr/lib/firefox/firefox-bin-with-a-rather-long-path',
        local: '10.0.0.1:40000',
        remote: '93.184.216.34:443',
        message: `connection number ${i} allowed by rule "browsers may reach the web"`,
      });
    const last = cli.h.logs.lastSeq;
    const seqs = (r: { stdout: string }) =>
      r.stdout
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l).seq as number);
    const three = await warden('logs', '--limit', '3', '--json');
    assert.equal(three.code, 0, three.stderr);
    assert.deepEqual(seqs(three), [last - 2, last - 1, last]);
    const rev = await warden('logs', '-n', '3', '--reverse', '--json');
    assert.deepEqual(seqs(rev), [last, last - 1, last - 2]);
    const dflt = await warden('logs', '--json');
    assert.equal(seqs(dflt).length, 100);
    assert.equal(seqs(dflt).at(-1), last);
    const range = await warden('logs', '--since', from, '--kind', 'connection', '--json');
    assert.equal(range.code, 0, range.stderr);
    const got = seqs(range);
    assert.equal(got.length, 12_000);
    assert.deepEqual([got[0], got.at(-1)], [first, last]);
    const big = await warden('logs', '--limit', '11000', '--kind', 'connection', '--json');
    assert.deepEqual([seqs(big).length, seqs(big)[0], seqs(big).at(-1)], [11_000, last - 10_999, last]);
    const bad = await warden('logs', '--since', 'yesterday');
    assert.equal(bad.code, 2);
    assert.match(
      bad.stderr,
      /--since "yesterday" is not a date and time \(ISO 8601.*\nhint: For example: warden logs --since 20/,
    );
    // No "logged in" item for all those commands; failed logins still are items.
    const admin = cli.h.logs.query({ kind: 'admin', limit: 1000 }).items.map((i) => i.message);
    assert.ok(!admin.some((m) => /logged in/.test(m)), admin.join('\n'));
    assert.ok(admin.some((m) => /policy mode changed from enforce to learning/.test(m)));
  });

  test('warden logs | head -1 exits 0 without a stack trace', async () => {
    const child = spawn(
      'sh',
      ['-c', `"${process.execPath}" "${cliBin}" logs --engine lab --since 2000-01-01T00:00:00Z | head -1`],
      {
        env: cli.env(),
      },
    );
    let out = '';
    let err = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (err += d));
    await new Promise((r) => child.on('close', r));
    assert.equal(out.trim().split('\n').length, 1, out);
    assert.equal(err, '');
  });

  test('the warden process itself exits 0 when its stdout closes early', async () => {
    const child = spawn(
      process.execPath,
      [cliBin, 'logs', '--engine', 'lab', '--since', '2000-01-01T00:00:00Z'],
      {
        env: cli.env(),
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    let err = '';
    child.stderr.on('data', (d) => (err += d));
    child.stdout.once('data', () => child.stdout.destroy());
    const code = await new Promise<number | null>((r) => child.on('close', (c) => r(c)));
    assert.equal(code, 0, err);
    assert.equal(err, '');
  });
});
