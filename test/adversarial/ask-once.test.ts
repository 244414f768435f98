/**
 * Attack: a program held by an `ask` rule keeps retrying the same connection until a prompt goes
 * unanswered and the default lets it through (issue 11 item 4). `wardend run` in the client
 * namespace asks about port 8001 (default outgoing: allow, asks time out after 3 s); a console
 * answers the first prompt "deny, once" over the protocol and then answers nothing. The client's
 * SYN retransmissions (same 5-tuple, ~1 s and ~3 s later) must stay denied without a new prompt.
 */
import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { fixture } from '../kernel/fixture-process.js';
import { createNetnsPair, kernelTestsUnavailable, type NetnsPair, SERVER_ADDR } from '../kernel/netns.js';
import { NODE, startWardend } from '../kernel/wardend.js';

const skip = kernelTestsUnavailable();
const PORT = 44337;

const POLICY = `
version: 1
mode: enforce
defaults:
  incoming: { action: deny, log: true }
  outgoing: { action: allow, log: false }
rules:
  - name: ask about 8001
    direction: outgoing
    protocol: tcp
    remotePorts: 8001
    action: ask
  - name: ask about UDP 9001
    direction: outgoing
    protocol: udp
    remotePorts: 9001
    action: ask
`;

describe('"deny, once" against SYN retransmissions (wardend in a namespace)', { skip }, () => {
  let pair: NetnsPair;
  let dir: string;
  let engine: ChildProcess | undefined;
  let serverSaw = '';

  before(async () => {
    pair = createNetnsPair('ask');
    dir = mkdtempSync(join(tmpdir(), 'warden-ask-once-'));
    mkdirSync(join(dir, 'etc'));
    writeFileSync(join(dir, 'etc/policy.yaml'), POLICY);
    writeFileSync(join(dir, 'etc/settings.yaml'), 'enforcement:\n  askTimeoutSeconds: 3\n');
    const server = pair.spawn(pair.server, NODE, [
      '-e',
      `require('node:net').createServer((c) => c.end()).listen(8001, () => {
         const udp = require('node:dgram').createSocket('udp4');
         udp.on('message', (m) => console.log('datagram ' + m));
         udp.bind(9001, () => console.log('ready'));
       });`,
    ]);
    server.stdout!.on('data', (d) => (serverSaw += d));
    while (!serverSaw.includes('ready')) await once(server.stdout!, 'data');
    engine = await startWardend(pair, pair.client, dir, PORT);
  });
  after(() => {
    if (engine?.pid && engine.exitCode === null) process.kill(engine.pid, 'SIGTERM');
    pair?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  test('the answered connection stays denied through its retransmissions, with one prompt', async () => {
    const c = fixture(pair, pair.client, 'local-console.js', [String(PORT), join(dir, 'state/local-token')]);
    await c.next((l) => l.event === 'ready', 'ready');
    c.send(JSON.stringify({ id: 1, answer: { verdict: 'deny', duration: 'once' } }));
    await c.next((l) => l.id === 1, 'answer mode');

    const client = pair.spawn(pair.client, NODE, [
      '-e',
      `const s = require('node:net').connect(8001, '${SERVER_ADDR}');
       s.setTimeout(6500, () => { console.log('timeout'); process.exit(0); });
       s.on('connect', () => { console.log('connected'); process.exit(0); });
       s.on('error', (e) => { console.log(e.code); process.exit(0); });`,
    ]);
    let outcome = '';
    client.stdout!.on('data', (d) => (outcome += d));
    await c.next((l) => l.event === 'prompt', 'the first prompt');
    c.send(JSON.stringify({ id: 2, answer: null })); // from now on nobody answers
    await once(client, 'exit');
    const prompts = c.lines.filter((l) => l.event === 'prompt');
    assert.equal(outcome.trim(), 'timeout', 'the retransmitted SYNs are denied like the first');
    assert.equal(prompts.length, 1, `one prompt for one connection: ${JSON.stringify(prompts)}`);

    c.send(JSON.stringify({ id: 3, method: 'logs.query', params: { verdict: 'ask', limit: 100 } }));
    const { result } = await c.next((l) => l.id === 3, 'ask items');
    const items = (result as { items: { message: string; count?: number }[] }).items;
    const messages = items.map((i) => i.message);
    // The retransmissions of the attempt are counted into its item (issue 13): `count`.
    const seen = items.reduce((n, i) => n + (i.count ?? 1), 0);
    assert.ok(seen >= 2, `the first SYN and a retransmission: ${JSON.stringify(items)}`);
    assert.ok(
      messages.every((m) => /answered deny/.test(m)),
      messages.join('\n'),
    );
  });

  test('UDP: datagrams of the same flow after "deny, once" stay denied, with one prompt', async () => {
    const c = fixture(pair, pair.client, 'local-console.js', [String(PORT), join(dir, 'state/local-token')]);
    await c.next((l) => l.event === 'ready', 'ready');
    c.send(JSON.stringify({ id: 1, answer: { verdict: 'deny', duration: 'once' } }));
    await c.next((l) => l.id === 1, 'answer mode');
    // One socket (one source port) sends a datagram every 500 ms for 6 s.
    const client = pair.spawn(pair.client, NODE, [
      '-e',
      `const s = require('node:dgram').createSocket('udp4');
       let n = 0;
       const t = setInterval(() => { s.send('n' + ++n, 9001, '${SERVER_ADDR}'); if (n === 12) { clearInterval(t); setTimeout(() => process.exit(0), 300); } }, 500);`,
    ]);
    await c.next((l) => l.event === 'prompt', 'the first prompt');
    c.send(JSON.stringify({ id: 2, answer: null })); // from now on nobody answers
    await once(client, 'exit');
    assert.doesNotMatch(serverSaw, /datagram/, 'no datagram of the denied flow arrived');
    assert.equal(c.lines.filter((l) => l.event === 'prompt').length, 1, 'one prompt for one flow');
  });
});
