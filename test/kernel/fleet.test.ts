/**
 * A fleet rollout with enforcing engines (issue 14, item 6): two `wardend run` engines enforcing in
 * their own namespaces (A and B) and two unprivileged ones, all reached by one `warden` console in a
 * third namespace over veth links. `warden fleet apply --canary 1 --wave 2`: the canary A takes the
 * policy (its kernel drops what the new rule denies), then B is killed by its PID while its wave runs
 * the change unconfirmed: the rollout stops, the wave's other engine undoes the change at the deadline,
 * the last wave is untouched, and B, started again, has undone it too.
 */
import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { execFileSync } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { fingerprintOfDer } from '../../src/protocol/fingerprint.js';
import { type ConsoleHome, consoleHome, usersFile, wardenWatching } from '../support/fleet.js';
import {
  CLIENT_ADDR,
  createNetnsPair,
  kernelTestsUnavailable,
  listenOn,
  type NetnsPair,
  SERVER_ADDR,
  tcpConnect,
} from './netns.js';
import { NODE, startWardend } from './wardend.js';

const PORT = 44520;
/** The link from the console's namespace to engine B's. */
const LINK_CONSOLE = '10.200.7.1';
const LINK_B = '10.200.7.2';

const policy = (extra: string) => `mode: enforce
defaults:
  incoming: { action: deny, log: false }
  outgoing: { action: allow, log: false }
rules:
  - name: ssh
    direction: incoming
    protocol: tcp
    localPorts: 22
    action: allow
  - name: node to 8006
    direction: outgoing
    protocol: tcp
    application: ${NODE}
    remotePorts: 8006
    action: allow
${extra}`;
const OLD = policy('');
const NEW = policy(`  - name: nothing to 8005
    direction: outgoing
    protocol: tcp
    remotePorts: 8005
    action: deny
`);

type Wardend = ChildProcess & { output: () => string };

describe('fleet rollout to enforcing engines in namespaces', { skip: kernelTestsUnavailable() }, () => {
  let a: NetnsPair;
  let b: NetnsPair;
  let dir: string;
  let home: ConsoleHome;
  const engines: Record<string, Wardend> = {};
  const dirs: Record<string, string> = {};

  const start = async (name: string, pair: NetnsPair, ns: string, port: number, extra: string[] = []) => {
    engines[name] = await startWardend(pair, ns, dirs[name]!, port, extra);
  };
  const fingerprint = (name: string) =>
    fingerprintOfDer(new X509Certificate(readFileSync(join(dirs[name]!, 'state/tls/cert.pem'))).raw);
  /** Runs `warden` in the console's namespace (A's client side). */
  const run = (args: string[], line = /^\b$/, onLine: () => void = () => {}) =>
    wardenWatching(home, args, line, onLine, (command, argv, options) =>
      a.spawn(a.client, command, argv, options),
    ).done;
  const statusOf = async () => {
    const r = await run(['fleet', 'status', '--json', '--timeout', '5']);
    return new Map(
      (JSON.parse(r.stdout) as { engine: string; policyHash?: string; reachable: boolean }[]).map((x) => [
        x.engine,
        x,
      ]),
    );
  };

  before(async () => {
    a = createNetnsPair('fa');
    b = createNetnsPair('fb');
    // The console (A's client namespace) reaches B's engine over a veth link of its own.
    execFileSync('ip', [
      '-n',
      a.client,
      'link',
      'add',
      'wf0',
      'type',
      'veth',
      'peer',
      'name',
      'wf1',
      'netns',
      b.server,
    ]);
    execFileSync('ip', ['-n', a.client, 'addr', 'add', `${LINK_CONSOLE}/24`, 'dev', 'wf0']);
    execFileSync('ip', ['-n', b.server, 'addr', 'add', `${LINK_B}/24`, 'dev', 'wf1']);
    execFileSync('ip', ['-n', a.client, 'link', 'set', 'wf0', 'up']);
    execFileSync('ip', ['-n', b.server, 'link', 'set', 'wf1', 'up']);
    dir = mkdtempSync(join(tmpdir(), 'warden-fleet-kernel-'));
    home = consoleHome(join(dir, 'console'));
    const users = await usersFile(dir);
    for (const name of ['A', 'B', 'u1', 'u2']) {
      dirs[name] = join(dir, name);
      mkdirSync(join(dirs[name], 'etc'), { recursive: true });
      copyFileSync(users, join(dirs[name], 'etc/users.json'));
      writeFileSync(join(dirs[name], 'etc/policy.yaml'), OLD);
      writeFileSync(join(dirs[name], 'etc/settings.yaml'), 'remoteAdministration:\n  enabled: true\n');
    }
    await listenOn(a, a.client, [8005, 8006]);
    await Promise.all([
      start('A', a, a.server, PORT),
      start('B', b, b.server, PORT),
      start('u1', a, a.client, PORT + 1, ['--no-kernel', '--bind', '127.0.0.1']),
      start('u2', a, a.client, PORT + 2, ['--no-kernel', '--bind', '127.0.0.1']),
    ]);
    await home.remember('A', SERVER_ADDR, PORT, fingerprint('A'));
    await home.remember('B', LINK_B, PORT, fingerprint('B'));
    await home.remember('u1', '127.0.0.1', PORT + 1, fingerprint('u1'));
    await home.remember('u2', '127.0.0.1', PORT + 2, fingerprint('u2'));
    writeFileSync(join(dir, 'new.yaml'), NEW);
  });
  after(() => {
    for (const e of Object.values(engines)) if (e.pid && e.exitCode === null) process.kill(e.pid, 'SIGTERM');
    a?.close();
    b?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  test('the canary enforces the new policy; B killed mid-rollout: stop, roll back its wave, last wave untouched', async () => {
    const group = await run(['engines', 'group', 'add', 'web', 'A', 'B', 'u1', 'u2']);
    assert.equal(group.code, 0, group.stderr);
    const before = await statusOf();
    for (const n of ['A', 'B', 'u1', 'u2'])
      assert.equal(before.get(n)?.reachable, true, JSON.stringify(before.get(n)));
    assert.equal(tcpConnect(a, a.server, CLIENT_ADDR, 8005, 1500), 'connected', 'before: 8005 is open');

    const r = await run(
      [
        'fleet',
        'apply',
        join(dir, 'new.yaml'),
        '--group',
        'web',
        '--canary',
        '1',
        '--wave',
        '2',
        '--bake',
        '3',
        '--confirm',
        '15',
      ],
      /wave 1: baking/,
      () => process.kill(engines.B!.pid!, 'SIGKILL'), // B goes away while its wave runs the change unconfirmed
    );
    const out = `${r.stdout}\n${r.stderr}`;
    assert.equal(r.code, 1, out);
    assert.match(r.stdout, /canary: checked and confirmed/);
    assert.match(r.stdout, /wave 1: FAILED: B: not reachable after the change/);
    assert.match(r.stdout, /A\s+canary\s+applied/);
    assert.match(r.stdout, /B\s+1\s+failed\s+.*undoes version \d+ by itself/);
    assert.match(r.stdout, /u1\s+1\s+rolled-back\s+.*undone at once \(config\.undo\)/);
    assert.match(r.stdout, /u2\s+2\s+untouched/);
    // The canary's kernel drops what the new rule denies.
    assert.equal(tcpConnect(a, a.server, CLIENT_ADDR, 8005, 1500), 'timeout', 'after: A drops 8005');

    // B comes back: its unconfirmed change is past its deadline and undone at start.
    await start('B', b, b.server, PORT);
    const now = await statusOf();
    assert.equal(now.get('B')?.policyHash, before.get('B')?.policyHash, 'B undid the change');
    assert.equal(now.get('u1')?.policyHash, before.get('u1')?.policyHash);
    assert.equal(now.get('u2')?.policyHash, before.get('u2')?.policyHash);
    assert.notEqual(now.get('A')?.policyHash, before.get('A')?.policyHash);
    // A connection the kernel queues (a rule names the program) is a decision the engine counts.
    assert.equal(tcpConnect(a, a.server, CLIENT_ADDR, 8006, 1500), 'connected');
    const counted = (await statusOf()).get('A') as { decisionsPerMinute?: number } | undefined;
    assert.ok((counted?.decisionsPerMinute ?? 0) >= 1, JSON.stringify(counted));
  });
});
