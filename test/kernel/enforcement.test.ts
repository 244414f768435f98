/**
 * The whole kernel path with real programs: `wardend run` inside the client namespace applies its
 * ruleset there, judges queued connections by the program that makes them, asks a console, logs,
 * survives being killed (established flows stay, new ones fail open) and reconciles on restart.
 * HTTP servers run in the server namespace; curl and node are the applications.
 */
import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { fixture } from './fixture-process.js';
import { createNetnsPair, kernelTestsUnavailable, type NetnsPair, SERVER_ADDR, tcpConnect } from './netns.js';

const nodeConnect = (pair: NetnsPair, port: number, timeoutMs?: number) =>
  tcpConnect(pair, pair.client, SERVER_ADDR, port, timeoutMs);

import { denyAllPolicy, NODE, startWardend } from './wardend.js';

const skip =
  kernelTestsUnavailable() ??
  (existsSync('/usr/bin/curl') ? undefined : 'needs curl (scripts/setup.sh installs it)');
const PORT = 44334;

const POLICY = denyAllPolicy(
  PORT,
  `  - name: curl to the web server
    direction: outgoing
    protocol: tcp
    application: /usr/bin/curl
    remote: ${SERVER_ADDR}
    remotePorts: 8000
    action: allow
    log: true
  - name: node keeps a connection
    direction: outgoing
    protocol: tcp
    application: ${NODE}
    remotePorts: 8002
    action: allow
  - name: node refused on 8003
    direction: outgoing
    protocol: tcp
    application: ${NODE}
    remotePorts: 8003
    action: reject
  - name: ask about 8001
    direction: outgoing
    protocol: tcp
    remotePorts: 8001
    action: ask
`,
);

function curl(pair: NetnsPair, port: number): string {
  try {
    return pair.run(pair.client, 'curl', ['-s', '-m', '2', `http://${SERVER_ADDR}:${port}/`]);
  } catch (e) {
    return `curl failed: ${(e as Error).message.split('\n')[0]}`;
  }
}

describe('enforcement by wardend in a namespace', { skip }, () => {
  let pair: NetnsPair;
  let dir: string;
  let engine: ChildProcess | undefined;

  const startEngine = async () => {
    engine = await startWardend(pair, pair.client, dir, PORT);
  };
  const console = () =>
    fixture(pair, pair.client, 'local-console.js', [String(PORT), join(dir, 'state/local-token')]);

  before(async () => {
    pair = createNetnsPair('e');
    dir = mkdtempSync(join(tmpdir(), 'warden-enforce-'));
    mkdirSync(join(dir, 'etc'));
    writeFileSync(join(dir, 'etc/policy.yaml'), POLICY);
    writeFileSync(join(dir, 'etc/settings.yaml'), 'enforcement:\n  askTimeoutSeconds: 3\n');
    const server = pair.spawn(pair.server, NODE, [
      '-e',
      `const http = require('node:http');
       for (const port of [8000, 8001, 8002, 8003]) http.createServer((q, r) => r.end('ok ' + port)).listen(port, () => {});
       setTimeout(() => console.log('ready'), 100);`,
    ]);
    await once(server.stdout!, 'data');
    await startEngine();
  });
  after(() => {
    if (engine?.pid && engine.exitCode === null) process.kill(engine.pid, 'SIGTERM');
    pair.close();
    rmSync(dir, { recursive: true, force: true });
  });

  test('the same destination: curl is allowed, node is not, and both decisions are logged with the program', async () => {
    assert.equal(curl(pair, 8000), 'ok 8000');
    assert.equal(nodeConnect(pair, 8000), 'timeout');
    const c = console();
    await c.next((l) => l.event === 'ready', 'ready');
    c.send(JSON.stringify({ id: 1, method: 'logs.query', params: { kind: 'connection', limit: 100 } }));
    const { result } = await c.next((l) => l.id === 1, 'log items');
    const items = (
      result as { items: { verdict: string; application?: string; rule: string; remote: string }[] }
    ).items;
    const allowed = items.find((i) => i.verdict === 'allow' && i.remote === `${SERVER_ADDR}:8000`);
    const denied = items.find((i) => i.verdict === 'deny' && i.remote === `${SERVER_ADDR}:8000`);
    assert.equal(allowed?.application, '/usr/bin/curl');
    assert.equal(allowed?.rule, 'curl to the web server');
    assert.equal(denied?.application, NODE);
    assert.equal(denied?.rule, 'default outgoing');
  });

  test("the engine's reject verdict refuses at once, though the server listens", () => {
    const started = Date.now();
    assert.equal(nodeConnect(pair, 8003), 'ECONNREFUSED');
    assert.ok(Date.now() - started < 1000, 'refused, not left to time out');
    assert.match(curl(pair, 8003), /^curl failed/, 'curl has no rule for 8003: the default denies it');
  });

  test('an ask is answered by a console; with nobody answering in time the default decides', async () => {
    const c = console();
    await c.next((l) => l.event === 'ready', 'ready');
    c.send(JSON.stringify({ id: 2, answer: { duration: 'once' } }));
    await c.next((l) => l.id === 2, 'answer mode');
    assert.equal(curl(pair, 8001), 'ok 8001');
    const prompt = (await c.next((l) => l.event === 'prompt', 'prompt')).prompt as { application: string };
    assert.equal(prompt.application, '/usr/bin/curl');
    c.send(JSON.stringify({ id: 3, answer: null }));
    // Nobody answers now: the connection waits askTimeoutSeconds (3 s), then the default (deny) drops it.
    const started = Date.now();
    assert.equal(nodeConnect(pair, 8001, 6000), 'timeout');
    assert.ok(Date.now() - started >= 5000);
    c.send(JSON.stringify({ id: 4, method: 'logs.query', params: { verdict: 'ask', limit: 100 } }));
    const { result } = await c.next((l) => l.id === 4, 'ask items');
    const messages = (result as { items: { application?: string; message: string }[] }).items.map(
      (i) => `${i.application}: ${i.message}`,
    );
    assert.ok(
      messages.some((m) => m.startsWith('/usr/bin/curl: asked: ') && m.includes('answered allow')),
      messages.join('\n'),
    );
    assert.ok(
      messages.some((m) => m.startsWith(`${NODE}: asked: no answer in time, default deny`)),
      messages.join('\n'),
    );
  });

  test('a rule added over the protocol is enforced at once, and removing it blocks again', async () => {
    const c = console();
    await c.next((l) => l.event === 'ready', 'ready');
    const rule = {
      name: 'node to 8000',
      direction: 'outgoing',
      protocol: 'tcp',
      application: NODE,
      remotePorts: '8000',
      action: 'allow',
    };
    c.send(JSON.stringify({ id: 10, method: 'rules.add', params: { rule, position: 0 } }));
    assert.equal((await c.next((l) => l.id === 10, 'rules.add')).error, undefined);
    await waitFor(() => nodeConnect(pair, 8000) === 'connected', 'node allowed by the new rule');
    c.send(JSON.stringify({ id: 11, method: 'rules.remove', params: { name: 'node to 8000' } }));
    await c.next((l) => l.id === 11, 'rules.remove');
    await waitFor(() => nodeConnect(pair, 8000, 800) === 'timeout', 'node denied again');
  });

  test('killed engine: an established connection survives, new connections fail open; a restart reconciles', async () => {
    const held = pair.spawn(pair.client, NODE, [
      '-e',
      `const s = require('node:net').connect(8002, '${SERVER_ADDR}', () => console.log('connected'));
       s.on('data', (d) => console.log('echo ' + d));
       s.on('error', (e) => console.log('error ' + e.code));
       process.stdin.on('data', (d) => s.write(d));`,
    ]);
    await once(held.stdout!, 'data');
    // Traffic fills the dynamic sets (flood buckets, UDP flow owners): compare the rest.
    const listing = () =>
      pair
        .run(pair.client, 'nft', ['-s', 'list', 'table', 'inet', 'warden'])
        .replace(
          /(flags dynamic,timeout\n(?:\t\tcounter\n)?\t\ttimeout \S+\n)\t\telements = \{[^}]*\}\n/g,
          '$1',
        );
    const before = listing();
    process.kill(engine!.pid!, 'SIGKILL');
    await once(engine!, 'exit');
    held.stdin!.write('GET / HTTP/1.0\r\n\r\n');
    const [reply] = (await once(held.stdout!, 'data')) as [Buffer];
    assert.match(reply.toString(), /ok 8002/, 'the established connection still carries data');
    assert.equal(
      nodeConnect(pair, 8000),
      'connected',
      'fail-open: with no engine the queue lets new connections by',
    );
    await startEngine();
    assert.equal(listing(), before);
    assert.equal(nodeConnect(pair, 8000), 'timeout', 'enforced again after the restart');
  });
});

/** Retries `check` for up to 5 s: the engine re-applies the kernel ruleset right after a change. */
async function waitFor(check: () => boolean, what: string): Promise<void> {
  const end = Date.now() + 5000;
  while (!check()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}
