/**
 * Issue 13 with real packets: a TCP connection that the engine denies (drop) is retried by the
 * kernel (SYN retransmits about 1 s and 3 s after the first), and each retry is queued and judged
 * again. wardend logs the attempt once, with a count, instead of one item per SYN.
 */
import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { fixture } from './fixture-process.js';
import { createNetnsPair, kernelTestsUnavailable, type NetnsPair, SERVER_ADDR, tcpConnect } from './netns.js';
import { denyAllPolicy, startWardend } from './wardend.js';

const skip = kernelTestsUnavailable();
const PORT = 44336;

const POLICY = denyAllPolicy(PORT);

describe('retransmits of a denied connection with real packets', { skip }, () => {
  let pair: NetnsPair;
  let dir: string;
  let engine: ChildProcess | undefined;

  before(async () => {
    pair = createNetnsPair('r');
    dir = mkdtempSync(join(tmpdir(), 'warden-repeats-'));
    mkdirSync(join(dir, 'etc'));
    writeFileSync(join(dir, 'etc/policy.yaml'), POLICY);
    engine = await startWardend(pair, pair.client, dir, PORT);
  });
  after(() => {
    if (engine?.pid && engine.exitCode === null) process.kill(engine.pid, 'SIGTERM');
    pair.close();
    rmSync(dir, { recursive: true, force: true });
  });

  test('one connection attempt whose SYNs are dropped is one log item with a count', async () => {
    // One socket for 4.5 s: its SYN at 0 s and the kernel's retransmits at about 1 s and 3 s.
    assert.equal(tcpConnect(pair, pair.client, SERVER_ADDR, 8000, 4500), 'timeout');
    assert.equal(tcpConnect(pair, pair.client, SERVER_ADDR, 8000, 300), 'timeout', 'another attempt');
    const c = fixture(pair, pair.client, 'local-console.js', [String(PORT), join(dir, 'state/local-token')]);
    await c.next((l) => l.event === 'ready', 'ready');
    c.send(JSON.stringify({ id: 1, method: 'logs.query', params: { kind: 'connection', verdict: 'deny' } }));
    const { result } = await c.next((l) => l.id === 1, 'log items');
    const items = (result as { items: { remote?: string; local?: string; count?: number }[] }).items.filter(
      (i) => i.remote === `${SERVER_ADDR}:8000`,
    );
    // Old code: one item per SYN (3 or more for the first attempt).
    assert.equal(items.length, 2, JSON.stringify(items));
    assert.ok(
      (items[0]!.count ?? 1) >= 2,
      `the first attempt's retransmits are counted: ${JSON.stringify(items)}`,
    );
    assert.notEqual(
      items[0]!.local,
      items[1]!.local,
      'the second attempt (another port) is an item of its own',
    );
  });
});
