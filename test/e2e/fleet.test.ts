/**
 * End-to-end, a fleet from one console (issue 14, item 6): ten real engines in unprivileged mode on
 * 127.0.0.1 and the built `warden` CLI. Engine groups; `warden fleet status` (one row per engine,
 * queried in parallel, an unreachable one reported quickly); `warden fleet apply` refusing an invalid
 * file with located errors and changing nothing, rolling out canary + waves with confirmed apply,
 * skipping engines already at the policy, refusing to start while an engine is unreachable (unless
 * --allow-unreachable), and an engine that goes away mid-rollout: the rollout stops, the failing
 * wave's engines undo the change at the deadline, the later waves are untouched.
 */
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { policyHash } from '../../src/policy-hash.js';
import { fixtureIdentity } from '../integration/admin-harness.js';
import {
  type ConsoleHome,
  consoleHome,
  type LoopbackFleet,
  startLoopbackFleet,
  warden,
  wardenWatching,
} from '../support/fleet.js';

const policyText = (extraRule: string) => `# fleet test policy
mode: enforce
defaults:
  incoming: { action: deny, log: true }
  outgoing: { action: allow, log: false }
rules:
  - name: ssh
    direction: incoming
    protocol: tcp
    localPorts: 22
    action: allow
  - name: ${extraRule}
    direction: outgoing
    protocol: tcp
    remotePorts: 23
    action: deny
`;

describe('warden fleet with ten engines on loopback', () => {
  let dir: string;
  let home: ConsoleHome;
  let fleet: LoopbackFleet;
  let deadPort = 0;
  const files: Record<string, string> = {};
  const hashOf = (i: number) => policyHash(fleet.engines[i]!.config.policy());
  const versionOf = (i: number) => fleet.engines[i]!.config.history()[0]?.version ?? 1;

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'warden-fleet-'));
    home = consoleHome(join(dir, 'console'));
    fleet = await startLoopbackFleet(10, dir, home);
    // An engine that is gone: a port nothing listens on (taken and closed), a fingerprint pinned for it.
    const s = createServer();
    await new Promise<void>((ok) => s.listen(0, '127.0.0.1', ok));
    deadPort = (s.address() as { port: number }).port;
    await new Promise((ok) => s.close(ok));
    await home.remember('gone', '127.0.0.1', deadPort, fixtureIdentity('other').fingerprint);
    for (const [name, text] of Object.entries({
      one: policyText('no telnet'),
      two: policyText('no telnet v2'),
      three: policyText('no telnet v3'),
      bad: `${policyText('broken')}  - name: typo\n    direction: outgoing\n    acton: deny\n`,
    })) {
      files[name] = join(dir, `${name}.yaml`);
      writeFileSync(files[name], text);
    }
  });
  after(async () => {
    await fleet?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  test('engine groups: add, list, remove; unknown engines are named', async () => {
    const add = await warden(home, ['engines', 'group', 'add', 'web', ...fleet.names]);
    assert.equal(add.code, 0, add.stderr);
    assert.match(add.stdout, /Group web: added e1, e2, .*e10/);
    const unknown = await warden(home, ['engines', 'group', 'add', 'web', 'e11', 'e1']);
    assert.equal(unknown.code, 1);
    assert.match(unknown.stderr, /no engine is named "e11"/);
    const more = await warden(home, ['engines', 'group', 'add', 'withgone', 'e1', 'gone']);
    assert.equal(more.code, 0, more.stderr);
    const list = await warden(home, ['engines', 'group', 'list', '--json']);
    assert.deepEqual(JSON.parse(list.stdout), { web: fleet.names, withgone: ['e1', 'gone'] });
    const rm = await warden(home, ['engines', 'group', 'remove', 'withgone', 'e9']);
    assert.equal(rm.code, 1);
    assert.match(rm.stderr, /has no member "e9"/);
  });

  test('fleet status: one row per engine, in parallel, an unreachable one named', async () => {
    const started = Date.now();
    const r = await warden(home, ['fleet', 'status', '--json']);
    assert.equal(r.code, 1, 'one engine is unreachable');
    const rows = JSON.parse(r.stdout) as Record<string, unknown>[];
    assert.equal(rows.length, 11);
    for (const [i, name] of fleet.names.entries()) {
      const row = rows.find((x) => x.engine === name)!;
      assert.equal(row.reachable, true, `${name}: ${row.error}`);
      assert.equal(row.fingerprint, fleet.engines[i]!.identity.fingerprint);
      assert.equal(row.policyVersion, versionOf(i));
      assert.equal(row.policyHash, hashOf(i));
      assert.equal(row.decisionsPerMinute, 0);
      assert.match(String(row.logTransport), /^(udp|tcp)$/);
      assert.ok(Date.now() - Date.parse(String(row.lastContact)) < 120_000);
    }
    const gone = rows.find((x) => x.engine === 'gone')!;
    assert.equal(gone.reachable, false);
    assert.match(String(gone.error), /ECONNREFUSED|refused|connect/i);
    assert.equal(gone.lastContact, null);
    assert.ok(Date.now() - started < 45_000, 'queried in parallel, not one after another');
    const table = await warden(home, ['fleet', 'status', '--group', 'web']);
    assert.equal(table.code, 0, table.stderr);
    assert.match(
      table.stdout,
      /engine\s+version\s+fingerprint\s+policy\s+hash\s+last contact\s+decisions\/min\s+log\s+state/,
    );
    assert.match(table.stdout, /e10 .*SHA256:[0-9A-F:]+ .*sha256:[0-9a-f]{12} .*(UDP|TCP)\s+up/);
  });

  test('fleet status: an engine that accepts and never answers costs its deadline once', async () => {
    // A TCP listener that takes connections and says nothing (a hung host): no TLS handshake ever.
    const held: Socket[] = [];
    const hung = createServer((c) => {
      held.push(c);
      c.on('error', () => {});
    });
    await new Promise<void>((ok) => hung.listen(0, '127.0.0.1', ok));
    try {
      await home.remember(
        'hung',
        '127.0.0.1',
        (hung.address() as { port: number }).port,
        fixtureIdentity('other').fingerprint,
      );
      await warden(home, ['engines', 'group', 'add', 'withhung', 'hung', 'e1', 'e2']);
      const started = Date.now();
      const r = await warden(home, ['fleet', 'status', '--group', 'withhung', '--timeout', '2', '--json']);
      const took = Date.now() - started;
      assert.equal(r.code, 1);
      const rows = JSON.parse(r.stdout) as { engine: string; reachable: boolean; error?: string }[];
      assert.deepEqual(
        rows.map((x) => [x.engine, x.reachable]),
        [
          ['hung', false],
          ['e1', true],
          ['e2', true],
        ],
      );
      assert.match(String(rows[0]!.error), /no answer within 2 s|timed out|timeout/i);
      assert.ok(took < 20_000, `the hung engine held the status ${took} ms`);
      assert.ok(held.length >= 1, 'the console did connect to it');
    } finally {
      for (const c of held) c.destroy();
      hung.close();
      await warden(home, ['engines', 'forget', 'hung']);
    }
  });

  test('fleet apply: an invalid file is refused with its location, nothing changes', async () => {
    const versions = fleet.names.map((_, i) => versionOf(i));
    const r = await warden(home, ['fleet', 'apply', files.bad!, '--group', 'web']);
    assert.equal(r.code, 1);
    assert.match(r.stderr, new RegExp(`${files.bad!.replace(/[.]/g, '\\.')}:\\d+`));
    assert.match(r.stderr, /acton/);
    assert.deepEqual(
      fleet.names.map((_, i) => versionOf(i)),
      versions,
    );
  });

  test('fleet apply: canary then waves, all confirmed; again: every engine skipped', async () => {
    const r = await warden(home, [
      'fleet',
      'apply',
      files.one!,
      '--group',
      'web',
      '--canary',
      '1',
      '--wave',
      '3',
      '--confirm',
      '30',
    ]);
    assert.equal(r.code, 0, `${r.stdout}\n${r.stderr}`);
    assert.match(r.stdout, /10 engine\(s\) to change in 4 wave\(s\)/);
    assert.match(r.stdout, /canary: applied to e1\n/);
    assert.match(r.stdout, /wave 1: applied to e2, e3, e4/);
    const expected = hashOf(0);
    for (const i of fleet.names.keys()) {
      assert.equal(hashOf(i), expected);
      assert.deepEqual(
        fleet.engines[i]!.config.policy().rules.map((x) => x.name),
        ['ssh', 'no telnet'],
      );
      // Confirmed: nothing waits, nothing will be undone.
      const waiting = join(dir, `e${i + 1}`, 'state', 'pending-confirmations.json');
      assert.deepEqual(existsSync(waiting) ? JSON.parse(readFileSync(waiting, 'utf8')) : [], []);
    }
    const versions = fleet.names.map((_, i) => versionOf(i));
    const again = await warden(home, ['fleet', 'apply', files.one!, '--group', 'web', '--json']);
    assert.equal(again.code, 0, again.stderr);
    const out = JSON.parse(again.stdout) as { engines: { engine: string; state: string }[] };
    assert.deepEqual(
      out.engines.map((e) => e.state),
      fleet.names.map(() => 'already'),
    );
    assert.deepEqual(
      fleet.names.map((_, i) => versionOf(i)),
      versions,
      'no new version',
    );
  });

  test('an unreachable engine: nothing is changed, unless --allow-unreachable skips it', async () => {
    const before1 = hashOf(0);
    const refused = await warden(home, ['fleet', 'apply', files.two!, '--group', 'withgone']);
    assert.equal(refused.code, 1);
    assert.match(refused.stderr, /1 of 2 engines cannot be reached, so nothing was changed: gone/);
    assert.equal(hashOf(0), before1);
    const allowed = await warden(home, [
      'fleet',
      'apply',
      files.two!,
      '--group',
      'withgone',
      '--allow-unreachable',
      '--confirm',
      '30',
    ]);
    assert.equal(allowed.code, 0, allowed.stderr);
    assert.match(allowed.stdout, /gone\s+skipped-unreachable/);
    assert.match(allowed.stdout, /e1\s+canary\s+applied/);
    assert.notEqual(hashOf(0), before1);
  });

  test('an engine that goes away mid-rollout: stop, the wave undoes the change, later waves untouched', async () => {
    const old = fleet.names.map((_, i) => hashOf(i));
    const run = wardenWatching(
      home,
      [
        'fleet',
        'apply',
        files.three!,
        '--group',
        'web',
        '--canary',
        '1',
        '--wave',
        '3',
        '--bake',
        '3',
        '--confirm',
        '15',
      ],
      // e3 goes away after the canary, while its wave (e2, e3, e4) runs the change unconfirmed.
      /wave 1: baking/,
      () => fleet.stopEngine(2),
    );
    const r = await run.done;
    assert.ok(r.sawLine, r.stdout + r.stderr);
    assert.equal(r.code, 1, r.stdout + r.stderr);
    assert.match(r.stdout, /wave 1: FAILED: e3: not reachable after the change/);
    assert.match(r.stdout, /e1\s+canary\s+applied/);
    assert.match(r.stdout, /e2\s+1\s+rolled-back\s+.*undone at once \(config\.undo\)/);
    assert.match(r.stdout, /e3\s+1\s+failed\s+.*not reachable.*undoes version \d+ by itself/);
    assert.match(r.stdout, /e4\s+1\s+rolled-back/);
    for (const e of ['e5', 'e6', 'e7', 'e8', 'e9', 'e10'])
      assert.match(r.stdout, new RegExp(`${e}\\s+\\d\\s+untouched`));
    assert.notEqual(hashOf(0), old[0], 'the canary keeps the new policy');
    assert.equal(hashOf(1), old[1], 'e2 is back at its policy');
    assert.equal(hashOf(3), old[3], 'e4 is back at its policy');
    for (let i = 4; i < 10; i++) assert.equal(hashOf(i), old[i], `e${i + 1} untouched`);
  });
});
