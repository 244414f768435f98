/**
 * The kernel addon with real packets: an agent (fixtures/kernel-agent.ts) runs inside the client
 * namespace, binds NFQUEUE 0 and NFLOG 7, decides by destination port and looks sockets up; the
 * client namespace sends its TCP SYNs (and UDP to 5353) to the queue through xt NFQUEUE rules.
 */
import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { readdirSync, readlinkSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { after, before, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { nativeAvailable } from '../../src/kernel/native.js';
import { type WorldReadable, worldReadableCopies } from '../support/world-readable.js';
import {
  CLIENT_ADDR,
  CLIENT_ADDR6,
  createNetnsPair,
  kernelTestsUnavailable,
  type NetnsPair,
  SERVER_ADDR,
  SERVER_ADDR6,
} from './netns.js';

const skip = kernelTestsUnavailable() ?? (nativeAvailable() ? undefined : 'native addon not built');
const AGENT = fileURLToPath(new URL('./fixtures/kernel-agent.js', import.meta.url));
/** The client side runs as root and as nobody: from a world-readable copy, wherever the checkout is. */
const CLIENT = fileURLToPath(new URL('./fixtures/net-client.js', import.meta.url));
const MARK_REJECT = 0xdead;

type Line = Record<string, unknown>;

/** The JSON lines a child prints, and a way to wait for one. */
function lines(child: ChildProcess) {
  const seen: Line[] = [];
  const waiters = new Set<() => void>();
  createInterface({ input: child.stdout! }).on('line', (line) => {
    seen.push(JSON.parse(line) as Line);
    for (const wake of waiters) wake();
  });
  return {
    seen,
    async next(match: (l: Line) => boolean, timeoutMs = 3000): Promise<Line> {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const found = seen.find(match);
        if (found !== undefined) return found;
        if (Date.now() > deadline) throw new Error(`no matching line in ${JSON.stringify(seen)}`);
        await new Promise<void>((resolve) => {
          const wake = () => {
            waiters.delete(wake);
            resolve();
          };
          waiters.add(wake);
          setTimeout(wake, 50);
        });
      }
    },
  };
}

let pair: NetnsPair;
let agent: ChildProcess;
let events: ReturnType<typeof lines>;
let client: WorldReadable;
let clientScript: string;

before(async () => {
  if (skip) return;
  client = worldReadableCopies([CLIENT]);
  clientScript = client.paths['net-client.js']!;
  pair = createNetnsPair('nq');
  const server = pair.spawn(pair.server, process.execPath, [AGENT, 'serve', '80', '81', '82', '83', '84']);
  await lines(server).next((l) => l.kind === 'ready');
  const config = { queue: 0, drop: [81], mark: { 84: MARK_REJECT }, hold: [83], holdMs: 400, logGroup: 7 };
  agent = pair.spawn(pair.client, process.execPath, [AGENT, 'agent', JSON.stringify(config)]);
  events = lines(agent);
  await events.next((l) => l.kind === 'ready');
  const c = pair.client;
  pair.run(c, 'iptables-nft', [
    '-A',
    'OUTPUT',
    '-p',
    'tcp',
    '--syn',
    '--dport',
    '85',
    '-d',
    SERVER_ADDR,
    '-j',
    'NFQUEUE',
    '--queue-num',
    '1',
    '--queue-bypass',
  ]);
  pair.run(c, 'iptables-nft', [
    '-A',
    'OUTPUT',
    '-p',
    'tcp',
    '--syn',
    '-d',
    SERVER_ADDR,
    '-j',
    'NFQUEUE',
    '--queue-num',
    '0',
  ]);
  pair.run(c, 'iptables-nft', [
    '-A',
    'OUTPUT',
    '-p',
    'udp',
    '--dport',
    '5353',
    '-d',
    SERVER_ADDR,
    '-j',
    'NFQUEUE',
    '--queue-num',
    '0',
  ]);
  pair.run(c, 'ip6tables-nft', [
    '-A',
    'OUTPUT',
    '-p',
    'tcp',
    '--syn',
    '-d',
    SERVER_ADDR6,
    '-j',
    'NFQUEUE',
    '--queue-num',
    '0',
  ]);
  // Runs after the queue (priority 10 > filter's 0): fast refusal of marked packets, NFLOG for port 82.
  pair.run(
    c,
    'nft',
    ['-f', '-'],
    `table inet wdtest {
    chain out {
      type filter hook output priority 10;
      meta mark ${MARK_REJECT} reject with tcp reset
      tcp dport 82 log group 7 prefix "wd:test" drop
    }
  }`,
  );
});

after(() => {
  if (skip) return;
  agent.stdin?.end();
  pair.close();
  client.remove();
});

/** Runs the test client in the client namespace (optionally as nobody) and returns its report. */
async function connectFrom(host: string, port: number, options: { asNobody?: boolean; hold?: boolean } = {}) {
  const args = [clientScript, 'connect', host, String(port), '700', ...(options.hold ? ['hold'] : [])];
  const child = options.asNobody
    ? pair.spawn(pair.client, 'setpriv', [
        '--reuid=65534',
        '--regid=65534',
        '--clear-groups',
        process.execPath,
        ...args,
      ])
    : pair.spawn(pair.client, process.execPath, args);
  return (await lines(child).next(() => true, 5000)) as {
    result: string;
    ms: number;
    pid: number;
    local: [string, number];
  };
}

function socketInodesOf(pid: number): number[] {
  return readdirSync(`/proc/${pid}/fd`).flatMap((fd) => {
    const m = /^socket:\[(\d+)\]$/.exec(readlinkSync(`/proc/${pid}/fd/${fd}`));
    return m ? [Number(m[1])] : [];
  });
}

const packetTo =
  (port: number, version = 4) =>
  (l: Line) =>
    l.kind === 'packet' && l.destinationPort === port && l.version === version;

test('an accepted SYN connects and is reported with parsed addresses and uid', { skip }, async () => {
  const r = await connectFrom(SERVER_ADDR, 80);
  assert.equal(r.result, 'connected');
  const p = await events.next(packetTo(80));
  assert.equal(p.source, CLIENT_ADDR);
  assert.equal(p.destination, SERVER_ADDR);
  assert.equal(p.protocol, 'tcp');
  assert.equal(p.tcpFlags, 0x02);
  assert.equal(p.uid, 0);
  assert.equal(p.hook, 3);
});

test('a dropped SYN times out', { skip }, async () => {
  const r = await connectFrom(SERVER_ADDR, 81);
  assert.equal(r.result, 'timeout');
  assert.equal((await events.next(packetTo(81))).verdict, 'drop');
});

test('the uid of the sending socket comes with the packet', { skip }, async () => {
  const before = events.seen.length;
  const r = await connectFrom(SERVER_ADDR, 80, { asNobody: true });
  assert.equal(r.result, 'connected');
  const p = await events.next((l) => events.seen.indexOf(l) >= before && packetTo(80)(l));
  assert.equal(p.uid, 65534);
  assert.equal(p.gid, 65534);
  assert.deepEqual(p.socket && (p.socket as { uid: number }).uid, 65534);
});

test('accept with a mark lets a later nft rule refuse at once', { skip }, async () => {
  const r = await connectFrom(SERVER_ADDR, 84);
  assert.equal(r.result, 'refused');
  assert.ok(r.ms < 300, `refused after ${r.ms} ms`);
  assert.equal((await events.next(packetTo(84))).mark, MARK_REJECT);
});

test('fail-open: a --queue-bypass rule with no listener lets the connection through', { skip }, async () => {
  assert.equal((await connectFrom(SERVER_ADDR, 85)).result, 'refused'); // reached the server: no listener on 85
});

test('NFLOG: a `log group 7 prefix` rule reaches the log callback with the packet', { skip }, async () => {
  assert.equal((await connectFrom(SERVER_ADDR, 82)).result, 'timeout');
  const item = await events.next((l) => l.kind === 'log' && l.destinationPort === 82);
  assert.equal(item.prefix, 'wd:test');
  assert.equal(item.source, CLIENT_ADDR);
  assert.equal(item.destination, SERVER_ADDR);
  assert.equal(item.uid, 0);
});

test('sock_diag finds the SYN_SENT socket while its SYN is held, then the connected one', {
  skip,
}, async () => {
  const r = await connectFrom(SERVER_ADDR, 83, { hold: true });
  assert.equal(r.result, 'connected');
  assert.ok(r.ms >= 300, 'the verdict was held');
  const p = await events.next(packetTo(83));
  const held = p.socket as { inode: number; uid: number; state: number };
  assert.equal(held.state, 2); // SYN_SENT
  assert.ok(socketInodesOf(r.pid).includes(held.inode), 'inode belongs to the client process');
  agent.stdin!.write(`${JSON.stringify(['tcp', 4, r.local[0], r.local[1], SERVER_ADDR, 83])}\n`);
  const found = (await events.next((l) => l.kind === 'lookup')).socket as { inode: number; state: number };
  assert.deepEqual([found.inode, found.state], [held.inode, 1]); // ESTABLISHED, same socket
  process.kill(r.pid);
});

test('sock_diag finds an unconnected UDP socket from its datagram', { skip }, async () => {
  const child = pair.spawn(pair.client, process.execPath, [clientScript, 'udp', SERVER_ADDR, '5353']);
  const sent = (await lines(child).next(() => true)) as { pid: number; port: number };
  const p = await events.next((l) => packetTo(5353)(l) && l.protocol === 'udp');
  assert.equal(p.sourcePort, sent.port);
  const socket = p.socket as { inode: number; uid: number };
  assert.ok(socketInodesOf(sent.pid).includes(socket.inode));
  assert.equal(socket.uid, 0);
  process.kill(sent.pid);
});

test('a burst of SYNs: every one is accepted, the verdicts of one read go out together', {
  skip,
}, async () => {
  const BURST = 300;
  const burst = pair.spawn(
    pair.client,
    process.execPath,
    [
      '-e',
      `const net = require('node:net'); let ok = 0, failed = 0;
       const done = () => { if (ok + failed === ${BURST}) console.log(JSON.stringify({ ok, failed })); };
       for (let i = 0; i < ${BURST}; i++) {
         const s = net.connect(80, '${SERVER_ADDR}');
         s.setTimeout(5000, () => s.destroy(new Error('timeout')));
         s.on('connect', () => { ok++; s.destroy(); done(); });
         s.on('error', () => { failed++; done(); });
       }`,
    ],
    { stdio: ['ignore', 'pipe', 'inherit'] },
  );
  const result = await lines(burst).next(() => true, 15_000);
  assert.deepEqual(result, { ok: BURST, failed: 0 });
  agent.stdin!.write('"stats"\n');
  const stats = (await events.next((l) => l.kind === 'stats')) as Record<string, number>;
  assert.ok(stats.verdicts! >= BURST, `${stats.verdicts} verdicts sent`);
  assert.ok(
    stats.datagrams! < stats.verdicts!,
    `${stats.verdicts} verdicts went in ${stats.datagrams} datagrams`,
  );
  assert.equal(stats.sendErrors, 0);
  assert.equal(stats.kernelErrors, 0);
});

test('IPv6 SYNs are queued and parsed', { skip }, async () => {
  assert.equal((await connectFrom(SERVER_ADDR6, 80)).result, 'connected');
  const p = await events.next(packetTo(80, 6));
  assert.equal(p.source, CLIENT_ADDR6);
  assert.equal(p.destination, SERVER_ADDR6);
  assert.ok(p.socket !== null);
});
