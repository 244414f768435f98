/**
 * Policy modes with real packets, through wardend in a namespace: monitor never blocks but logs what
 * each rule or default would have done (in the engine and in the kernel); learning lets through what
 * no rule decides and proposes a rule for it, while explicit deny and reject rules still apply. The
 * mode changes by a hand edit and SIGHUP, as an administrator would do it.
 */
import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { fixture } from './fixture-process.js';
import {
  createNetnsPair,
  kernelTestsUnavailable,
  listenOn,
  type NetnsPair,
  SERVER_ADDR,
  tcpConnect,
} from './netns.js';
import { denyAllPolicy, NODE, startWardend } from './wardend.js';

const PORT = 44334;

const policy = (mode: string) =>
  denyAllPolicy(
    PORT,
    `  - name: nothing to 8004
    direction: outgoing
    protocol: tcp
    remotePorts: 8004
    action: deny
    log: true
  - name: node refused on 8003
    direction: outgoing
    protocol: tcp
    application: ${NODE}
    remotePorts: 8003
    action: reject
`,
    mode,
  );

describe('policy modes with real packets', { skip: kernelTestsUnavailable() }, () => {
  let pair: NetnsPair;
  let dir: string;
  let engine: ChildProcess & { output: () => string };
  let nextId = 1;

  /** The messages of the connection log items about `port` the engine has now. */
  const messages = async (port: number): Promise<string[]> => {
    const c = fixture(pair, pair.client, 'local-console.js', [String(PORT), join(dir, 'state/local-token')]);
    await c.next((l) => l.event === 'ready', 'ready');
    const id = nextId++;
    c.send(JSON.stringify({ id, method: 'logs.query', params: { kind: 'connection', limit: 1000 } }));
    const { result } = await c.next((l) => l.id === id, 'log items');
    return (result as { items: { remote?: string; message: string }[] }).items
      .filter((i) => i.remote === `${SERVER_ADDR}:${port}`)
      .map((i) => i.message);
  };
  const eventually = async (port: number, pattern: RegExp): Promise<void> => {
    const end = Date.now() + 5000;
    let seen: string[] = [];
    while (Date.now() < end) {
      seen = await messages(port);
      if (seen.some((m) => pattern.test(m))) return;
      await new Promise((r) => setTimeout(r, 100));
    }
    assert.fail(`no log item for port ${port} matching ${pattern}; seen: ${seen.join(' | ')}`);
  };
  const switchMode = async (mode: string) => {
    writeFileSync(join(dir, 'etc/policy.yaml'), policy(mode));
    const before = engine.output().length;
    process.kill(engine.pid!, 'SIGHUP');
    const end = Date.now() + 5000;
    while (!engine.output().slice(before).includes('ruleset applied')) {
      if (Date.now() > end) throw new Error(`no re-apply after SIGHUP: ${engine.output().slice(before)}`);
      await new Promise((r) => setTimeout(r, 20));
    }
  };

  before(async () => {
    pair = createNetnsPair('m');
    dir = mkdtempSync(join(tmpdir(), 'warden-modes-'));
    mkdirSync(join(dir, 'etc'));
    writeFileSync(join(dir, 'etc/policy.yaml'), policy('monitor'));
    await listenOn(pair, pair.server, [8000, 8003, 8004]);
    engine = await startWardend(pair, pair.client, dir, PORT);
  });
  after(() => {
    if (engine?.pid && engine.exitCode === null) process.kill(engine.pid, 'SIGTERM');
    pair.close();
    rmSync(dir, { recursive: true, force: true });
  });

  test('monitor: nothing is blocked, and each would-be block is logged with what would have happened', async () => {
    assert.equal(
      tcpConnect(pair, pair.client, SERVER_ADDR, 8000),
      'connected',
      'the default deny does not block',
    );
    assert.equal(
      tcpConnect(pair, pair.client, SERVER_ADDR, 8003),
      'connected',
      'the reject rule does not refuse',
    );
    assert.equal(
      tcpConnect(pair, pair.client, SERVER_ADDR, 8004),
      'connected',
      'the kernel-decided deny rule does not drop',
    );
    await eventually(8000, /^deny, allow in monitor mode by default outgoing/);
    await eventually(8003, /^reject, allow in monitor mode by rule "node refused on 8003"/);
    await eventually(8004, /^deny, allow in monitor mode by rule "nothing to 8004" \(in the kernel\)/);
  });

  test('learning: undecided connections pass with a proposed rule; explicit deny and reject still apply', async () => {
    await switchMode('learning');
    assert.equal(
      tcpConnect(pair, pair.client, SERVER_ADDR, 8000),
      'connected',
      'what reaches the default is allowed',
    );
    assert.equal(tcpConnect(pair, pair.client, SERVER_ADDR, 8003), 'ECONNREFUSED', 'the reject rule refuses');
    assert.equal(tcpConnect(pair, pair.client, SERVER_ADDR, 8004), 'timeout', 'the deny rule drops');
    await eventually(8000, /^deny, allow in learning mode by default outgoing; proposed rule "/);
  });

  test('enforce again: the default denies', async () => {
    await switchMode('enforce');
    assert.equal(tcpConnect(pair, pair.client, SERVER_ADDR, 8000), 'timeout');
  });
});
