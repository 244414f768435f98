/**
 * Attack (issue 11, item 2): UDP flow reuse. The policy lets node send UDP to the server's port
 * 9001 and denies everything else. node sends from local port P and so opens a conntrack flow;
 * then perl (denied) sends from the same port P to the same server port. On the old engine perl
 * rode the established flow: never queued, never judged, nothing logged.
 * - same uid: node has exited; its socket's flows die with it (sock_diag destroy -> ctnetlink).
 * - another uid: node still holds the port (SO_REUSEADDR on both) and the flow is alive; perl as
 *   nobody shares it. The flow is bound to the uids the policy let use it, so perl is judged.
 * The server in the other namespace reports every datagram it receives: perl's must never arrive.
 */
import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { after, before, describe, test } from 'node:test';
import { kernelTestsUnavailable, SERVER_ADDR } from '../kernel/netns.js';
import { denyAllPolicy, NODE } from '../kernel/wardend.js';
import { type KernelEngine, outputOf, startKernelEngine } from './kernel-engine.js';

const PORT = 44342;
const SERVICE = 9001;
const PERL = '/usr/bin/perl';

const POLICY = denyAllPolicy(
  PORT,
  `  - name: node to the udp service
    direction: outgoing
    protocol: udp
    application: ${NODE}
    remote: ${SERVER_ADDR}
    remotePorts: ${SERVICE}
    action: allow
`,
);

/**
 * node sends `payload` from `localPort` and prints the reply; `hold` keeps it (and the port) until
 * killed; `connected` connects the socket first (like `nc -u`), else it sends to an address.
 */
const nodeSender = (localPort: number, payload: string, hold: boolean, connected = false) => `
  const d = require('node:dgram').createSocket({ type: 'udp4', reuseAddr: true });
  d.on('message', (m) => { console.log('reply ' + m); ${hold ? '' : 'd.close(); process.exit(0);'} });
  d.bind(${localPort}, () => ${
    connected
      ? `d.connect(${SERVICE}, '${SERVER_ADDR}', () => d.send('${payload}'))`
      : `d.send('${payload}', ${SERVICE}, '${SERVER_ADDR}')`
  });
  setTimeout(() => { console.log('no reply'); process.exit(0); }, 3000).unref?.();
  ${hold ? 'setInterval(() => {}, 1000);' : ''}`;

/** perl sends `payload` from `localPort` (SO_REUSEADDR) and reports whether a reply came. */
const perlSender = (localPort: number, payload: string) => `
  use IO::Socket::INET;
  my $s = IO::Socket::INET->new(Proto => 'udp', LocalPort => ${localPort}, ReuseAddr => 1,
    PeerAddr => '${SERVER_ADDR}', PeerPort => ${SERVICE}) or die "socket: $!";
  $s->send('${payload}') or print "send failed: $!\\n";
  my $r = '';
  eval { local $SIG{ALRM} = sub { die "timeout\\n" }; alarm 2; $s->recv($r, 100); alarm 0; };
  print($r eq '' ? "no reply\\n" : "reply $r\\n");`;

describe('UDP flow reuse', {
  skip: kernelTestsUnavailable() ?? (existsSync(PERL) ? undefined : 'needs perl'),
}, () => {
  let k: KernelEngine;
  let server: ChildProcess;
  const received: string[] = [];
  before(async () => {
    k = await startKernelEngine('udp', PORT, POLICY, '');
    server = k.pair.spawn(k.pair.server, NODE, [
      '-e',
      `const d = require('node:dgram').createSocket('udp4');
       d.on('message', (m, from) => { console.log(from.port + ' ' + m); d.send('echo ' + m, from.port, from.address); });
       d.bind(${SERVICE}, () => console.log('ready'));`,
    ]);
    const lines = createInterface({ input: server.stdout! });
    await new Promise<void>((resolve) => lines.once('line', () => resolve()));
    lines.on('line', (l) => received.push(l));
  });
  after(() => k?.close());

  const arrived = async (line: string, wait = 500) => {
    await new Promise((r) => setTimeout(r, wait));
    return received.includes(line);
  };

  for (const [connected, port] of [
    [true, 40000],
    [false, 40002],
  ] as const) {
    test(`same uid: a later program on the port of an exited allowed program (${connected ? 'connected' : 'unconnected'} socket) is judged`, async () => {
      const first = await outputOf(
        k.spawnAs('root', NODE, ['-e', nodeSender(port, `allowed-${port}`, false, connected)]),
      );
      assert.match(first, new RegExp(`reply echo allowed-${port}`), 'the allowed program is answered');
      assert.ok(await arrived(`${port} allowed-${port}`, 0));
      // The engine deletes the flow 1-5 ms after the socket is gone (docs/kernel.md, "UDP flows":
      // the window that remains); a loaded CI machine may take longer, so the next program starts later.
      await new Promise((r) => setTimeout(r, 100));
      const second = await outputOf(k.spawnAs('root', PERL, ['-e', perlSender(port, `reused-${port}`)]));
      assert.ok(
        !(await arrived(`${port} reused-${port}`)),
        `perl's datagram reached the server (${second.trim()})`,
      );
      assert.match(second, /no reply/);
      const denied = (await k.logs({ kind: 'connection', verdict: 'deny', application: PERL })).filter(
        (i) => i.local === `10.200.0.1:${port}`,
      );
      assert.ok(denied.length > 0, 'the denial is logged');
    });
  }

  test('another uid: the same flow, still alive, carries nothing of nobody', async () => {
    const holder = k.spawnAs('root', NODE, ['-e', nodeSender(40001, 'allowed-2', true)]);
    try {
      await new Promise<void>((resolve, reject) => {
        holder.stdout!.on('data', (d) =>
          String(d).includes('reply') ? resolve() : reject(new Error(String(d))),
        );
        holder.once('exit', (code) => reject(new Error(`holder exited ${code}`)));
      });
      const reuse = await outputOf(k.spawnAs('nobody', PERL, ['-e', perlSender(40001, 'reused-2')]));
      assert.ok(!(await arrived('40001 reused-2')), `nobody's datagram reached the server (${reuse.trim()})`);
      const denied = (await k.logs({ kind: 'connection', verdict: 'deny' })).filter(
        (i) => i.local === '10.200.0.1:40001',
      );
      assert.ok(denied.length > 0, 'the denial is logged');
      assert.equal(denied[0]!.user, 'nobody');
    } finally {
      if (holder.exitCode === null && holder.pid) process.kill(holder.pid, 'SIGKILL');
    }
  });
});
