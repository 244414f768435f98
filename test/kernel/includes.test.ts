/**
 * Included rules in the kernel, with real packets between two throwaway namespaces: `wardend run`
 * with a policy that includes a rules file blocks what the included rule denies (and the policy's
 * own rule, placed before it, still decides first); a refused edit of the file (SIGHUP) keeps the
 * rules in force, and a good edit taken by SIGHUP unblocks.
 */
import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import {
  createNetnsPair,
  kernelTestsUnavailable,
  listenOn,
  type NetnsPair,
  SERVER_ADDR,
  tcpConnect,
} from './netns.js';
import { startWardend } from './wardend.js';

const PORT = 44337;

describe('included rules enforced in the kernel', { skip: kernelTestsUnavailable() }, () => {
  let pair: NetnsPair;
  let dir: string;
  let engine: (ChildProcess & { output: () => string }) | undefined;
  const included = () => join(dir, 'corp.yaml');

  before(async () => {
    pair = createNetnsPair('i');
    dir = mkdtempSync(join(tmpdir(), 'warden-includes-kernel-'));
    mkdirSync(join(dir, 'etc'));
    writeFileSync(
      included(),
      `rules:
  - { name: no-8001, direction: outgoing, protocol: tcp, remotePorts: 8001, action: deny }
  - { name: no-8002, direction: outgoing, protocol: tcp, remotePorts: 8002, action: deny }
`,
    );
    writeFileSync(
      join(dir, 'etc/policy.yaml'),
      `defaults:
  incoming: { action: deny, log: false }
  outgoing: { action: allow, log: false }
rules:
  - { name: mine, direction: outgoing, protocol: tcp, remotePorts: 8002, action: allow }
include:
  - { name: corp, file: ${included()} }
`,
    );
    await listenOn(pair, pair.server, [8000, 8001, 8002]);
    engine = await startWardend(pair, pair.client, dir, PORT);
  });
  after(() => {
    if (engine?.pid && engine.exitCode === null) process.kill(engine.pid, 'SIGTERM');
    pair.close();
    rmSync(dir, { recursive: true, force: true });
  });

  test('the included deny blocks; the policy’s own rule before it still decides first', () => {
    assert.equal(tcpConnect(pair, pair.client, SERVER_ADDR, 8000), 'connected');
    assert.equal(tcpConnect(pair, pair.client, SERVER_ADDR, 8001, 1000), 'timeout');
    assert.equal(tcpConnect(pair, pair.client, SERVER_ADDR, 8002), 'connected');
  });

  test('a bad edit is refused and the rules in force stay; a good edit taken by SIGHUP unblocks', async () => {
    writeFileSync(included(), 'rules:\n  - { name: no-8001, direction: outgoing, acton: deny }\n');
    process.kill(engine!.pid!, 'SIGHUP');
    for (let until = Date.now() + 15_000; !/include-corp: .*refused/.test(engine!.output()); ) {
      assert.ok(Date.now() < until, engine!.output().slice(-2000));
      await new Promise((r) => setTimeout(r, 100));
    }
    assert.match(engine!.output(), /corp\.yaml:2:\d+: rules\[0\]\.acton \(rule \\?"no-8001\\?"\)/);
    assert.equal(tcpConnect(pair, pair.client, SERVER_ADDR, 8001, 1000), 'timeout');
    writeFileSync(
      included(),
      'rules:\n  - { name: no-8000, direction: outgoing, protocol: tcp, remotePorts: 8000, action: deny }\n',
    );
    process.kill(engine!.pid!, 'SIGHUP');
    let result = '';
    for (let until = Date.now() + 15_000; Date.now() < until; ) {
      result = tcpConnect(pair, pair.client, SERVER_ADDR, 8001, 1000);
      if (result === 'connected') break;
    }
    assert.equal(result, 'connected', engine!.output().slice(-2000));
    assert.equal(tcpConnect(pair, pair.client, SERVER_ADDR, 8000, 1000), 'timeout');
  });
});
