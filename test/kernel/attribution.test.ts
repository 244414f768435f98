/**
 * Process attribution against real processes and real sockets: loopback in
 * this namespace (no root needed), a namespace pair seen from outside
 * (root), a process that exits mid-attribution, and an unconnected UDP sender.
 */
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { chmodSync, mkdtempSync, realpathSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir, userInfo } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { after, before, describe, test } from 'node:test';
import {
  type ConnectionTuple,
  nativeSocketLookup,
  ProcessAttributor,
  ProcNetSocketLookup,
  type SocketLookup,
} from '../../src/kernel/attribution.js';
import { NO_APPLICATION_ID } from '../../src/policy/application-ids.js';
import { CLIENT_ADDR, createNetnsPair, kernelTestsUnavailable, SERVER_ADDR, SERVER_ADDR6 } from './netns.js';

/** A small Node program that opens one socket and prints its address as a JSON line, then waits. */
const PEER = `
import net from 'node:net';
import dgram from 'node:dgram';
const [mode, host, port] = process.argv.slice(2);
const out = (o) => process.stdout.write(JSON.stringify(o) + '\\n');
const keep = [];
if (mode === 'listen') {
  const s = net.createServer((c) => keep.push(c));
  s.listen(Number(port), host, () => out({ port: s.address().port }));
} else if (mode === 'connect') {
  const c = net.connect(Number(port), host, () => out({ address: c.localAddress, port: c.localPort }));
  keep.push(c);
} else if (mode === 'udp') {
  const u = dgram.createSocket(host.includes(':') ? 'udp6' : 'udp4');
  u.bind(0, () => u.send('x', Number(port), host, () => out({ address: u.address().address, port: u.address().port })));
}
setInterval(() => {}, 1 << 30);
`;

const node = realpathSync(process.execPath);
let dir: string;
let peer: string;
const children: ChildProcess[] = [];

before(() => {
  dir = mkdtempSync(join(tmpdir(), 'warden-attr-'));
  chmodSync(dir, 0o755); // readable by uid 65534 in the namespace test
  peer = join(realpathSync(dir), 'peer.mjs');
  writeFileSync(peer, PEER, { mode: 0o644 });
});

after(() => {
  for (const child of children)
    if (child.exitCode === null && child.signalCode === null && child.pid) process.kill(child.pid, 'SIGKILL');
  rmSync(dir, { recursive: true, force: true });
});

/** The first JSON line a child prints. */
function firstLine(child: ChildProcess): Promise<{ address?: string; port: number }> {
  return new Promise((resolvePromise, reject) => {
    const timer = setTimeout(() => reject(new Error('child printed nothing in 5 s')), 5000);
    child.once('exit', (code) => reject(new Error(`child exited with ${code}`)));
    createInterface({ input: child.stdout! }).once('line', (line) => {
      clearTimeout(timer);
      resolvePromise(JSON.parse(line));
    });
  });
}

function start(args: string[]): ChildProcess {
  const child = spawn(process.execPath, [peer, ...args], { stdio: ['ignore', 'pipe', 'inherit'] });
  children.push(child);
  return child;
}

function stop(child: ChildProcess): Promise<void> {
  return new Promise((done) => {
    if (child.exitCode !== null || child.signalCode !== null) return done();
    child.once('exit', () => done());
    process.kill(child.pid!, 'SIGKILL');
  });
}

const tuple = (
  protocol: 'tcp' | 'udp',
  direction: 'incoming' | 'outgoing',
  local: [string, number],
  remote: [string, number],
  family: 4 | 6 = 4,
): ConnectionTuple => ({
  protocol,
  family,
  direction,
  localAddress: local[0],
  localPort: local[1],
  remoteAddress: remote[0],
  remotePort: remote[1],
});

describe('attribution on loopback (this namespace)', () => {
  test('both ends of a TCP connection, the listener for a new incoming connection, dual stack', async () => {
    const server = start(['listen', '::', '0']);
    const { port } = await firstLine(server);
    const client = start(['connect', '127.0.0.1', String(port)]);
    const local = await firstLine(client);
    const attributor = new ProcessAttributor();

    const out = await attributor.attribute(
      tuple('tcp', 'outgoing', ['127.0.0.1', local.port], ['127.0.0.1', port]),
    );
    assert.ok(out);
    assert.equal(out.pid, client.pid);
    assert.equal(out.executable, node);
    assert.equal(out.uid, process.getuid!());
    assert.equal(out.socketUid, process.getuid!());
    assert.deepEqual(out.commandLine, [process.execPath, peer, 'connect', '127.0.0.1', String(port)]);
    assert.equal(out.script, peer);
    assert.equal(out.complete, true);

    // The accepted socket (IPv4-mapped in tcp6), then a SYN from a port not yet accepted: the :: listener.
    const accepted = await attributor.attribute(
      tuple('tcp', 'incoming', ['127.0.0.1', port], ['127.0.0.1', local.port]),
    );
    assert.equal(accepted?.pid, server.pid);
    assert.deepEqual(accepted?.commandLine, [process.execPath, peer, 'listen', '::', '0']);
    const syn = await attributor.attribute(tuple('tcp', 'incoming', ['127.0.0.1', port], ['127.0.0.1', 1]));
    assert.equal(syn?.pid, server.pid);
    assert.notEqual(syn?.inode, accepted?.inode);
    const syn6 = await attributor.attribute(tuple('tcp', 'incoming', ['::1', port], ['::1', 2], 6));
    assert.equal(syn6?.inode, syn?.inode);

    // Nobody listens there; an outgoing connection nobody made.
    assert.equal(
      await attributor.attribute(tuple('tcp', 'outgoing', ['127.0.0.1', 1], ['127.0.0.1', 2])),
      null,
    );
    const before = { ...attributor.stats };
    await attributor.attribute(tuple('tcp', 'outgoing', ['127.0.0.1', local.port], ['127.0.0.1', port]));
    assert.equal(attributor.stats.identityHits, before.identityHits + 1, 'second look is a cache hit');
    await Promise.all([stop(client), stop(server)]);
  });

  test('a process that exits during attribution gives a partial identity, not an error', async () => {
    const server = start(['listen', '127.0.0.1', '0']);
    const { port } = await firstLine(server);
    const client = start(['connect', '127.0.0.1', String(port)]);
    const local = await firstLine(client);
    const connection = tuple('tcp', 'outgoing', ['127.0.0.1', local.port], ['127.0.0.1', port]);
    const real = new ProcNetSocketLookup();
    const owner = await real.find(connection);
    assert.ok(owner);

    // Exits between the socket lookup and the /proc scan: only the socket's facts are known.
    const vanishing: SocketLookup = {
      find: async (t) => {
        const found = await real.find(t);
        await stop(client);
        return found;
      },
    };
    const attributor = new ProcessAttributor({ socketLookup: vanishing });
    const partial = await attributor.attribute(connection);
    assert.deepEqual(partial, {
      pid: null,
      executable: null,
      applicationId: NO_APPLICATION_ID,
      commandLine: [],
      script: null,
      uid: owner.uid,
      socketUid: owner.uid,
      user: userInfo().username,
      inode: owner.inode,
      complete: false,
    });
    assert.equal(attributor.stats.partial, 1);

    // Known pid (cached inode → pid), then the process exits before its /proc files are read.
    const second = start(['connect', '127.0.0.1', String(port)]);
    const local2 = await firstLine(second);
    const warm = new ProcessAttributor();
    const first = await warm.attribute(
      tuple('tcp', 'outgoing', ['127.0.0.1', local2.port], ['127.0.0.1', port]),
    );
    assert.equal(first?.pid, second.pid);
    await stop(second);
    warm.clearIdentities();
    const gone = await warm.identify({ inode: first!.inode, uid: first!.socketUid });
    assert.equal(gone.pid, second.pid);
    assert.equal(gone.executable, null);
    assert.equal(gone.complete, false);
    await stop(server);
  });

  test('an unconnected UDP sender, through the /proc lookup and through a native-style lookup', async () => {
    const sender = start(['udp', '127.0.0.1', '9']);
    const { port } = await firstLine(sender);
    const datagram = tuple('udp', 'outgoing', ['127.0.0.1', port], ['127.0.0.1', 9]);
    const identity = await new ProcessAttributor().attribute(datagram);
    assert.equal(identity?.pid, sender.pid);
    assert.equal(identity?.script, peer);

    const calls: unknown[][] = [];
    const native = nativeSocketLookup((...args) => {
      calls.push(args);
      return { inode: identity!.inode, uid: identity!.socketUid };
    });
    const viaNative = await new ProcessAttributor({ socketLookup: native }).attribute(datagram);
    assert.deepEqual(calls, [['udp', 4, '127.0.0.1', port, '127.0.0.1', 9]]);
    assert.equal(viaNative?.pid, sender.pid);
    await stop(sender);
  });
});

describe('attribution across network namespaces (from outside)', { skip: kernelTestsUnavailable() }, () => {
  test('client as uid 65534 in one namespace, server in the other, read through /proc/<pid>/net', async () => {
    const pair = createNetnsPair('attr');
    try {
      const server = pair.spawn(pair.server, process.execPath, [peer, 'listen', '::', '0'], {
        stdio: ['ignore', 'pipe', 'inherit'],
      });
      const { port } = await firstLine(server);
      const asNobody = ['--reuid=65534', '--regid=65534', '--clear-groups', process.execPath, peer];
      const client = pair.spawn(pair.client, 'setpriv', [...asNobody, 'connect', SERVER_ADDR, String(port)], {
        stdio: ['ignore', 'pipe', 'inherit'],
      });
      const local = await firstLine(client);
      const client6 = pair.spawn(
        pair.client,
        'setpriv',
        [...asNobody, 'connect', SERVER_ADDR6, String(port)],
        {
          stdio: ['ignore', 'pipe', 'inherit'],
        },
      );
      const local6 = await firstLine(client6);

      const inClient = new ProcessAttributor({ netnsProcRoot: `/proc/${client.pid}/net` });
      const out = await inClient.attribute(
        tuple('tcp', 'outgoing', [CLIENT_ADDR, local.port], [SERVER_ADDR, port]),
      );
      assert.equal(out?.pid, client.pid);
      assert.equal(out?.uid, 65534);
      assert.equal(out?.user, 'nobody');
      assert.equal(out?.executable, node);
      assert.equal(out?.script, peer);
      const out6 = await inClient.attribute(
        tuple('tcp', 'outgoing', [local6.address!, local6.port], [SERVER_ADDR6, port], 6),
      );
      assert.equal(out6?.pid, client6.pid);

      const inServer = new ProcessAttributor({ netnsProcRoot: `/proc/${server.pid}/net` });
      const incoming = await inServer.attribute(
        tuple('tcp', 'incoming', [SERVER_ADDR, port], [CLIENT_ADDR, local.port]),
      );
      assert.equal(incoming?.pid, server.pid);
      assert.equal(incoming?.user, 'root');
      // Not visible from this namespace: the same connection is nobody's here.
      assert.equal(
        await new ProcessAttributor().attribute(
          tuple('tcp', 'outgoing', [CLIENT_ADDR, local.port], [SERVER_ADDR, port]),
        ),
        null,
      );
    } finally {
      pair.close();
    }
  });
});
