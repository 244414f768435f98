/**
 * Interfaces and per-rule counters with real packets (issue 14 items 4 and 5): two veth pairs join
 * the client and server namespaces (wd0-wd1 on 10.200.0.0/24, wd2-wd3 on 10.200.1.0/24); wardend
 * runs in the client namespace. A kernel-decided rule for wd0 allows there and not on wd2; a queued
 * rule (an application) for wd2 is decided by the engine from the queued packet's interface. Their
 * counters advance, rules.list shows them, they survive a rule change and a restart of the engine,
 * and `warden rules unused` lists the rules nothing matched.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { repoRoot } from '../repo-root.js';
import { fixture } from './fixture-process.js';
import {
  createNetnsPair,
  kernelTestsUnavailable,
  listenOn,
  type NetnsPair,
  SERVER_ADDR,
  tcpConnect,
} from './netns.js';
import { NODE, startWardend } from './wardend.js';

const skip = kernelTestsUnavailable();
const PORT = 44336;
/** The server's address on the second link (wd2 in the client namespace, wd3 in the server's). */
const SERVER_ADDR_2 = '10.200.1.2';

const POLICY = `
defaults:
  incoming: { action: deny, log: false }
  # Logged: what no rule decides is queued, so the engine judges a packet the kernel did not match.
  outgoing: { action: deny, log: true }
rules:
  - name: test console to the engine
    direction: outgoing
    protocol: tcp
    application: ${NODE}
    remote: localhost
    remotePorts: ${PORT}
    action: allow
  # Two ports: a set with a counter per element (each element's comment names the rule's counter).
  - { name: web via wd0, direction: outgoing, protocol: tcp, remotePorts: [8100, 8102], interface: wd0, action: allow }
  # One port: inline, with a named counter object.
  - { name: never used, direction: outgoing, protocol: tcp, remotePorts: 9999, action: allow }
  - name: node via wd2
    direction: outgoing
    protocol: tcp
    application: ${NODE}
    remotePorts: 8101
    interface: "wd2*"
    action: allow
  - { name: never used queued, direction: outgoing, application: /bin/false, action: allow }
`;

type Listed = { name: string; matches: number; lastMatch: string | null };

describe('interfaces and rule counters in a namespace pair with two links', { skip }, () => {
  let pair: NetnsPair;
  let dir: string;
  let engine: Awaited<ReturnType<typeof startWardend>> | undefined;
  const ip = (ns: string, ...args: string[]) => execFileSync('ip', ['-n', ns, ...args]);

  before(async () => {
    pair = createNetnsPair('rc');
    ip(pair.client, 'link', 'add', 'wd2', 'type', 'veth', 'peer', 'name', 'wd3', 'netns', pair.server);
    ip(pair.client, 'addr', 'add', '10.200.1.1/24', 'dev', 'wd2');
    ip(pair.server, 'addr', 'add', `${SERVER_ADDR_2}/24`, 'dev', 'wd3');
    ip(pair.client, 'link', 'set', 'wd2', 'up');
    ip(pair.server, 'link', 'set', 'wd3', 'up');
    dir = mkdtempSync(join(tmpdir(), 'warden-counters-'));
    mkdirSync(join(dir, 'etc'));
    writeFileSync(join(dir, 'etc/policy.yaml'), POLICY);
    await listenOn(pair, pair.server, [8100, 8101, 9999]);
  });
  after(() => {
    if (engine?.pid && engine.exitCode === null) process.kill(engine.pid, 'SIGTERM');
    pair.close();
    rmSync(dir, { recursive: true, force: true });
  });

  const list = async (): Promise<Map<string, Listed>> => {
    const c = fixture(pair, pair.client, 'local-console.js', [String(PORT), join(dir, 'state/local-token')]);
    try {
      await c.next((l) => l.event === 'ready', 'ready');
      c.send(JSON.stringify({ id: 1, method: 'rules.list', params: {} }));
      const { result, error } = await c.next((l) => l.id === 1, 'rules.list');
      assert.equal(error, undefined);
      return new Map((result as { rules: Listed[] }).rules.map((r) => [r.name, r]));
    } finally {
      c.close();
    }
  };
  /** rules.list until the rule has counted `n` (the kernel's counters are read at most once a second). */
  const waitFor = async (name: string, n: number): Promise<Listed> => {
    const end = Date.now() + 8000;
    for (;;) {
      const r = (await list()).get(name)!;
      if (r.matches >= n || Date.now() > end) return r;
      await new Promise((resolve) => setTimeout(resolve, 1100));
    }
  };

  test('the wd0 rule allows on wd0 only; the queued wd2* rule is decided by the packet interface', async () => {
    engine = await startWardend(pair, pair.client, dir, PORT);
    const table = pair.run(pair.client, 'nft', ['list', 'chain', 'inet', 'warden', 'output']);
    assert.match(table, /oifname "wd0" tcp dport @out_[0-9a-f]{12} accept/);
    assert.match(table, /tcp dport 9999 counter name "c_[0-9a-f]{16}" accept/);
    assert.match(table, /oifname "wd2\*" .*goto queue_output/);
    assert.equal(tcpConnect(pair, pair.client, SERVER_ADDR, 8100), 'connected', 'wd0: the rule allows');
    assert.equal(tcpConnect(pair, pair.client, SERVER_ADDR_2, 8100), 'timeout', 'wd2: no rule, default deny');
    // Queued by the kernel for wd2 only; the engine must see wd2 on the packet to let it pass.
    assert.equal(tcpConnect(pair, pair.client, SERVER_ADDR_2, 8101), 'connected', 'wd2: the engine allows');
    // Queued by the logged default; the engine sees wd0, which the rule does not name.
    assert.equal(tcpConnect(pair, pair.client, SERVER_ADDR, 8101), 'timeout', 'wd0: the engine denies');
  });

  test('counters of a kernel-decided and a queued rule advance; rules.list shows them', async () => {
    const kernel = await waitFor('web via wd0', 1);
    const queued = await waitFor('node via wd2', 1);
    assert.equal(kernel.matches, 1, 'one connection through wd0 on 8100');
    assert.equal(queued.matches, 1, 'one connection through wd2 on 8101');
    for (const r of [kernel, queued]) {
      assert.ok(r.lastMatch !== null && Date.now() - Date.parse(r.lastMatch) < 60_000, JSON.stringify(r));
    }
    const listed = await list();
    assert.deepEqual(
      [listed.get('never used'), listed.get('never used queued')].map((r) => [r?.matches, r?.lastMatch]),
      [
        [0, null],
        [0, null],
      ],
    );
    assert.ok(listed.get('test console to the engine')!.matches >= 1, 'the console itself is counted');
  });

  test('the counts survive a rule change (the kernel counter is kept) and a restart of the engine', async () => {
    const c = fixture(pair, pair.client, 'local-console.js', [String(PORT), join(dir, 'state/local-token')]);
    await c.next((l) => l.event === 'ready', 'ready');
    c.send(
      JSON.stringify({
        id: 1,
        method: 'rules.add',
        params: {
          rule: { name: 'new first', direction: 'outgoing', remotePorts: 7, protocol: 'udp', action: 'deny' },
          position: 1,
        },
      }),
    );
    const added = await c.next((l) => l.id === 1, 'rules.add');
    assert.equal(added.error, undefined);
    c.close();
    assert.equal(tcpConnect(pair, pair.client, SERVER_ADDR, 8100), 'connected');
    assert.equal((await waitFor('web via wd0', 2)).matches, 2, 'counted on from 1 after the change');

    process.kill(engine!.pid!, 'SIGTERM');
    await new Promise((resolve) => engine!.once('exit', resolve));
    engine = await startWardend(pair, pair.client, dir, PORT);
    const after = await list();
    assert.equal(
      after.get('web via wd0')!.matches,
      2,
      'kept across the restart, the kernel counter not counted twice',
    );
    assert.equal(after.get('node via wd2')!.matches, 1);
    assert.equal(tcpConnect(pair, pair.client, SERVER_ADDR_2, 8101), 'connected');
    assert.equal((await waitFor('node via wd2', 2)).matches, 2);
  });

  test('warden rules unused --since lists the rules nothing matched', () => {
    const cli = join(repoRoot(import.meta.url), 'dist/src/console/bin.js');
    const home = join(dir, 'home');
    mkdirSync(home, { recursive: true });
    const run = (args: string) =>
      pair.run(pair.client, 'sh', [
        '-c',
        `HOME=${home} XDG_CONFIG_HOME= WARDEN_LOCAL_TOKEN_FILE=${join(dir, 'state/local-token')} ${NODE} ${cli} ${args} --engine 127.0.0.1:${PORT} --local`,
      ]);
    const out = JSON.parse(run('rules unused --since 1h --json')) as { rules: Listed[] };
    assert.deepEqual(
      out.rules.map((r) => r.name),
      ['new first', 'never used', 'never used queued'],
    );
    const text = run('rules list');
    assert.match(text, /matches\s+last match/);
    assert.match(text, /web via wd0 .* 2\s+\d+ (s|min) ago/);
    assert.match(text, /never used .* 0\s+never/);
  });
});
