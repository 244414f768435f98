/**
 * A damaged log database must never stop the firewall: wardend, started in a namespace on a state
 * directory whose logs.db is garbage, says so clearly and keeps filtering by its policy, keeping log
 * items in memory.
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
import { startWardend } from './wardend.js';

const PORT = 44334;
const POLICY = `
version: 1
defaults:
  incoming: { action: deny, log: true }
  outgoing: { action: allow, log: true }
rules:
  - name: no 8001
    direction: outgoing
    protocol: tcp
    remotePorts: 8001
    action: deny
    log: true
`;

describe('a damaged log database', { skip: kernelTestsUnavailable() }, () => {
  let pair: NetnsPair;
  let dir: string;
  let engine: ChildProcess & { output: () => string };

  before(async () => {
    pair = createNetnsPair('d');
    dir = mkdtempSync(join(tmpdir(), 'warden-damaged-'));
    mkdirSync(join(dir, 'etc'));
    mkdirSync(join(dir, 'state'), { mode: 0o700 });
    writeFileSync(join(dir, 'etc/policy.yaml'), POLICY);
    writeFileSync(join(dir, 'state/logs.db'), Buffer.alloc(64 * 1024, 0x5a));
    await listenOn(pair, pair.server, [8000, 8001]);
    engine = await startWardend(pair, pair.client, dir, PORT);
  });
  after(() => {
    if (engine?.pid && engine.exitCode === null) process.kill(engine.pid, 'SIGTERM');
    pair.close();
    rmSync(dir, { recursive: true, force: true });
  });

  test('is reported clearly, and the engine keeps filtering and logging in memory', async () => {
    assert.match(engine.output(), /log store unusable, keeping log items in memory: .*logs\.db/);
    let end = Date.now() + 3000;
    while (tcpConnect(pair, pair.client, SERVER_ADDR, 8000) !== 'connected') {
      if (Date.now() > end) assert.fail('the allowed connection does not pass');
    }
    assert.equal(tcpConnect(pair, pair.client, SERVER_ADDR, 8001), 'timeout', 'the deny rule drops');
    const c = fixture(pair, pair.client, 'local-console.js', [String(PORT), join(dir, 'state/local-token')]);
    await c.next((l) => l.event === 'ready', 'ready');
    end = Date.now() + 5000;
    for (let id = 1; ; id++) {
      c.send(JSON.stringify({ id, method: 'logs.query', params: { limit: 1000 } }));
      const { result } = await c.next((l) => l.id === id, 'log items');
      const items = (result as { items: { kind: string; remote?: string; message: string }[] }).items;
      const told = items.some((i) => i.kind === 'system' && /log store unusable/.test(i.message));
      const denied = items.some((i) => i.remote === `${SERVER_ADDR}:8001` && /^deny/.test(i.message));
      if (told && denied) break;
      if (Date.now() > end) assert.fail(`log items: ${items.map((i) => i.message).join(' | ')}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  });
});
