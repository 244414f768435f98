/**
 * Attribution by BPF (native/bpf_attr.c, docs/attribution.md "BPF path") against real processes:
 * the programs are attached only to a cgroup this test makes, its processes are started inside it
 * (as root and as nobody), and the cgroup is removed at the end. Loopback only.
 */
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import dgram from 'node:dgram';
import { chmodSync, mkdtempSync, readFileSync, realpathSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { after, before, describe, test } from 'node:test';
import { type ConnectionTuple, nativeSocketLookup, ProcessAttributor } from '../../src/kernel/attribution.js';
import { openAttributionPath } from '../../src/kernel/attribution-path.js';
import { type BpfAttribution, lookupSocket, openBpfAttribution } from '../../src/kernel/native.js';
import { cgroupTestsUnavailable, createTestCgroup, type TestCgroup } from './cgroup.js';

/** Opens one socket (tcp4, tcp6, udp4, udp6), prints {pid, port}, exits on a line on stdin. */
const PEER = `
import net from 'node:net';
import dgram from 'node:dgram';
const [mode, port] = process.argv.slice(2);
const host = mode.endsWith('6') ? '::1' : '127.0.0.1';
const out = (p) => process.stdout.write(JSON.stringify({ pid: process.pid, port: p }) + '\\n');
if (mode.startsWith('tcp')) {
  const c = net.connect(Number(port), host, () => out(c.localPort));
  c.on('error', () => {});
} else {
  const u = dgram.createSocket(mode === 'udp6' ? 'udp6' : 'udp4');
  u.send('x', Number(port), host, () => out(u.address().port)); // unconnected: sendmsg records it
}
process.stdin.once('data', () => process.exit(0));
`;

/** Listens on 127.0.0.1 (bound first, as node does), prints the port, exits on a line on stdin. */
const LISTENER = `
import net from 'node:net';
const s = net.createServer((c) => c.on('error', () => {}));
s.listen(0, '127.0.0.1', () => process.stdout.write(s.address().port + '\\n'));
process.stdin.once('data', () => process.exit(0));
`;

/** perl: listen() on a socket never bound (the kernel picks the port), prints it, exits on a line on stdin. */
const UNBOUND_LISTENER = `use Socket; socket(my $s, PF_INET, SOCK_STREAM, 6) or die "socket: $!"; listen($s, 5) or die "listen: $!";
$| = 1; print +(sockaddr_in(getsockname($s)))[0], "\\n"; my $line = <STDIN>;`;

/** Makes `count` UDP sockets and closes them, or keeps them (argv[3] = keep); prints "done", waits. */
const CHURN = `
import dgram from 'node:dgram';
const [count, keep] = [Number(process.argv[2]), process.argv[3] === 'keep'];
const kept = [];
for (let i = 0; i < count; i++) {
  const s = dgram.createSocket('udp4');
  await new Promise((r) => s.bind(0, '127.0.0.1', r));
  if (keep) kept.push(s); else s.close();
}
process.stdout.write('done\\n');
process.stdin.once('data', () => process.exit(0));
`;

const unavailable = cgroupTestsUnavailable();
const node = realpathSync(process.execPath);
const NOBODY = 65534;

let cgroup: TestCgroup;
let bpf: BpfAttribution;
let dir: string;
const children: ChildProcess[] = [];

function firstLine(child: ChildProcess): Promise<string> {
  return new Promise((resolve, reject) => {
    child.once('error', reject);
    child.once('exit', (code) => reject(new Error(`peer exited (${code}) before printing`)));
    createInterface({ input: child.stdout! }).once('line', resolve);
  });
}

/** Starts a program in the test cgroup, as `uid` (setpriv keeps the pid: it execs). */
function start(script: string, args: readonly string[], uid = 0): ChildProcess {
  const command =
    uid === 0 ? [node] : ['/usr/bin/setpriv', `--reuid=${uid}`, `--regid=${uid}`, '--clear-groups', node];
  const child = cgroup.spawn(command[0]!, [...command.slice(1), script, ...args], {
    stdio: ['pipe', 'pipe', 'inherit'],
  });
  children.push(child);
  return child;
}

describe('attribution by BPF', { skip: unavailable ?? false }, () => {
  before(() => {
    cgroup = createTestCgroup('bpf-attr');
    bpf = openBpfAttribution(cgroup.path, { maxEntries: 256 });
    // The programs nobody runs live in a directory nobody may enter (the checkout may not be).
    dir = realpathSync(mkdtempSync(join(tmpdir(), 'warden-bpf-')));
    chmodSync(dir, 0o755);
  });

  after(async () => {
    for (const child of children)
      if (child.exitCode === null && child.signalCode === null && child.pid)
        process.kill(child.pid, 'SIGKILL');
    bpf?.close();
    await cgroup?.remove();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  test('many concurrent short-lived processes: TCP and UDP, IPv4 and IPv6, root and nobody, each its own pid and exe', async () => {
    const servers: (net.Server | dgram.Socket)[] = [];
    const ports: Record<string, number> = {};
    for (const mode of ['tcp4', 'tcp6'] as const) {
      const server = net.createServer((c) => c.on('error', () => {}));
      await new Promise<void>((r) => server.listen(0, mode === 'tcp6' ? '::1' : '127.0.0.1', r));
      servers.push(server);
      ports[mode] = (server.address() as net.AddressInfo).port;
    }
    for (const mode of ['udp4', 'udp6'] as const) {
      const socket = dgram.createSocket(mode);
      await new Promise<void>((r) => socket.bind(0, mode === 'udp6' ? '::1' : '127.0.0.1', r));
      servers.push(socket);
      ports[mode] = socket.address().port;
    }
    const peer = join(dir, 'peer.mjs');
    writeFileSync(peer, PEER, { mode: 0o644 });
    const attributor = new ProcessAttributor({ socketLookup: nativeSocketLookup(bpf.lookupSocket) });
    const runs = ['tcp4', 'tcp6', 'udp4', 'udp6'].flatMap((mode) =>
      [0, NOBODY, 0, NOBODY, 0].map((uid) => ({ mode, uid })),
    );
    const peers = runs.map(({ mode, uid }) => ({
      mode,
      uid,
      child: start(peer, [mode, String(ports[mode])], uid),
    }));
    const printed = await Promise.all(peers.map((p) => firstLine(p.child)));
    const ids = await Promise.all(
      peers.map(({ mode }, i) => {
        const { port } = JSON.parse(printed[i]!) as { port: number };
        const v6 = mode.endsWith('6');
        const tuple: ConnectionTuple = {
          protocol: mode.startsWith('tcp') ? 'tcp' : 'udp',
          family: v6 ? 6 : 4,
          direction: 'outgoing',
          localAddress: v6 ? '::1' : '127.0.0.1',
          localPort: port,
          remoteAddress: v6 ? '::1' : '127.0.0.1',
          remotePort: ports[mode]!,
        };
        return attributor.attribute(tuple);
      }),
    );
    const first = JSON.parse(printed[0]!) as { port: number };
    const record = bpf.lookupSocket('tcp', 4, '127.0.0.1', first.port, '127.0.0.1', ports.tcp4!)?.process;
    assert.equal(
      record?.commandLine,
      `${[node, peer, 'tcp4', String(ports.tcp4)].join('\0')}\0`,
      'the record holds it',
    );
    for (const [i, { mode, uid, child }] of peers.entries()) {
      const { pid } = JSON.parse(printed[i]!) as { pid: number };
      assert.equal(pid, child.pid, 'setpriv and sh exec: the peer keeps the spawned pid');
      const id = ids[i];
      assert.ok(id, `${mode} as ${uid}: a socket was found`);
      assert.equal(id.pid, pid, `${mode} as ${uid}: pid`);
      assert.equal(id.executable, node, `${mode} as ${uid}: executable`);
      assert.equal(id.uid, uid, `${mode} as ${uid}: uid`);
      assert.equal(id.socketUid, uid, `${mode} as ${uid}: socket uid`);
      assert.equal(id.complete, true);
      // From the record (the programs copy the command line): the same as /proc/PID/cmdline.
      assert.deepEqual(
        id.commandLine,
        [node, peer, mode, String(ports[mode])],
        `${mode} as ${uid}: command line`,
      );
      child.stdin!.end('bye\n');
    }
    assert.equal(attributor.stats.recordedReads, runs.length, 'every one came from the BPF record');
    assert.equal(attributor.stats.newPidScans + attributor.stats.fullScans, 0, 'no /proc scan at all');
    const recorded = bpf.lookupSocket('tcp', 4, '127.0.0.1', 1, '127.0.0.1', 1);
    assert.equal(recorded, null, 'no socket, no record');
    for (const s of servers) s.close();
  });

  test('without BPF, or for a socket made before the programs were attached, /proc is the fallback', async () => {
    const server = net.createServer((c) => c.on('error', () => {}));
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const port = (server.address() as net.AddressInfo).port;
    // Made outside the test cgroup: the programs never see it.
    const outside = spawn(
      node,
      [
        '-e',
        `const c=require('net').connect(${port},'127.0.0.1',()=>console.log(c.localPort));setInterval(()=>{},1e9)`,
      ],
      {
        stdio: ['ignore', 'pipe', 'inherit'],
      },
    );
    children.push(outside);
    const localPort = Number(await firstLine(outside));
    const tuple: ConnectionTuple = {
      protocol: 'tcp',
      family: 4,
      direction: 'outgoing',
      localAddress: '127.0.0.1',
      localPort,
      remoteAddress: '127.0.0.1',
      remotePort: port,
    };
    assert.equal(bpf.lookupSocket('tcp', 4, '127.0.0.1', localPort, '127.0.0.1', port)?.process, undefined);
    for (const lookup of [bpf.lookupSocket, lookupSocket]) {
      const attributor = new ProcessAttributor({ socketLookup: nativeSocketLookup(lookup) });
      const id = await attributor.attribute(tuple);
      assert.equal(id?.pid, outside.pid);
      assert.equal(id?.executable, node);
      assert.equal(attributor.stats.recordedReads + attributor.stats.recordedHits, 0);
    }
    outside.kill('SIGKILL');
    server.close();
  });

  test('a TCP listener is recorded when it binds (not when its socket is made); one that listens unbound is named from /proc', async () => {
    // node binds before it listens; perl's listen() on an unbound socket picks a port itself (no bind hook).
    const listener = join(dir, 'listener.mjs');
    writeFileSync(listener, LISTENER, { mode: 0o644 });
    const bound = start(listener, []);
    const unbound = cgroup.spawn('/usr/bin/perl', ['-e', UNBOUND_LISTENER], {
      stdio: ['pipe', 'pipe', 'inherit'],
    });
    children.push(unbound);
    for (const [child, recorded] of [
      [bound, true],
      [unbound, false],
    ] as const) {
      const port = Number(await firstLine(child));
      const tuple: ConnectionTuple = {
        protocol: 'tcp',
        family: 4,
        direction: 'incoming',
        localAddress: '127.0.0.1',
        localPort: port,
        remoteAddress: '127.0.0.1',
        remotePort: 9, // no such connection: the SYN's lookup finds the listener
      };
      const attributor = new ProcessAttributor({ socketLookup: nativeSocketLookup(bpf.lookupSocket) });
      const id = await attributor.attribute(tuple);
      assert.equal(id?.pid, child.pid, `${recorded ? 'bound' : 'unbound'}: the listener's process`);
      assert.equal(id?.complete, true);
      assert.equal(attributor.stats.recordedReads, recorded ? 1 : 0, 'from the record made at bind');
      child.stdin!.end('bye\n');
    }
  });

  test('the map stays bounded: records go when sockets close, and the LRU caps sockets kept open', async () => {
    const churn = join(dir, 'churn.mjs');
    writeFileSync(churn, CHURN, { mode: 0o644 });
    const before = bpf.entries();
    const closing = start(churn, ['2000']);
    assert.equal(await firstLine(closing), 'done');
    assert.ok(
      bpf.entries() <= before + 5,
      `closed sockets leave no records (${bpf.entries()} after ${before})`,
    );
    closing.stdin!.end('bye\n');
    const keeping = start(churn, ['600', 'keep']);
    assert.equal(await firstLine(keeping), 'done');
    assert.ok(bpf.entries() <= 256, `the LRU holds at most its size (${bpf.entries()})`);
    // The kernel's LRU evicts somewhat before it is full (it frees in batches per CPU).
    assert.ok(bpf.entries() >= 100, `sockets kept open keep their records (${bpf.entries()})`);
    keeping.kill('SIGKILL');
    await new Promise<void>((r) => keeping.once('exit', () => r()));
    for (let i = 0; i < 100 && bpf.entries() > before + 5; i++) await new Promise((r) => setTimeout(r, 20));
    assert.ok(bpf.entries() <= before + 5, `a killed process's sockets are released (${bpf.entries()})`);
  });

  test('the engine chooses BPF where it can attach, else /proc with the reason (never an error)', () => {
    const warnings: string[] = [];
    const warn = (m: string) => warnings.push(m);
    const off = openAttributionPath('', warn, {});
    assert.equal(off.description, 'proc (BPF off: enforcement.bpfCgroup)');
    assert.equal(off.lookup, lookupSocket);
    assert.equal(
      openAttributionPath('/', warn, { WARDEN_BPF_CGROUP: 'off' }).description,
      'proc (BPF off: WARDEN_BPF_CGROUP)',
    );
    const missing = openAttributionPath('/warden-no-such-cgroup', warn, {});
    assert.match(
      missing.description,
      /^proc \(BPF unavailable: cannot attach .*warden-no-such-cgroup.*No such file/,
    );
    assert.equal(warnings.length, 1);
    const own = `/${cgroup.path.split('/').pop()}`;
    const path = openAttributionPath('/', warn, { WARDEN_BPF_CGROUP: own });
    try {
      assert.equal(path.description, `bpf (cgroup ${cgroup.path})`);
      assert.notEqual(path.bpf, null);
    } finally {
      path.close();
    }
  });

  test('a command line longer than the record holds (100 KiB) is read whole from /proc', async () => {
    const server = net.createServer((c) => c.on('error', () => {}));
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const port = (server.address() as net.AddressInfo).port;
    const peer = join(dir, 'peer.mjs');
    writeFileSync(peer, PEER, { mode: 0o644 });
    const long = 'x'.repeat(100_000);
    const child = start(peer, ['tcp4', String(port), long]);
    const { port: localPort } = JSON.parse(await firstLine(child)) as { port: number };
    const attributor = new ProcessAttributor({ socketLookup: nativeSocketLookup(bpf.lookupSocket) });
    const id = await attributor.attribute({
      protocol: 'tcp',
      family: 4,
      direction: 'outgoing',
      localAddress: '127.0.0.1',
      localPort,
      remoteAddress: '127.0.0.1',
      remotePort: port,
    });
    assert.deepEqual(id?.commandLine, [node, peer, 'tcp4', String(port), long]);
    const record = bpf.lookupSocket('tcp', 4, '127.0.0.1', localPort, '127.0.0.1', port)?.process;
    assert.ok(record !== undefined && record.commandLine === undefined, 'too long for the record');
    child.stdin!.end('bye\n');
    server.close();
  });
});

/** CLOCK_BOOTTIME now, in ns (from /proc/uptime: 10 ms resolution). */
function bootNs(): number {
  return Number.parseFloat(readFileSync('/proc/uptime', 'utf8')) * 1e9;
}

describe('a recorded pid names its process only while that process is the one recorded', () => {
  const owner = (pid: number, at: number, comm = 'node') => ({
    inode: 999_999_999,
    uid: 0,
    process: { pid, uid: process.getuid?.() ?? 0, bootNs: at, comm },
  });
  const sleeper = () => {
    const child = spawn(node, ['-e', 'setInterval(() => {}, 1e9)'], { stdio: 'ignore' });
    children.push(child);
    return child;
  };

  test('a live process recorded after it started is named; one that started after the record (a reused pid) is not', async () => {
    const child = sleeper();
    await new Promise((r) => setTimeout(r, 100));
    const later = bootNs() + 1e9;
    const attributor = new ProcessAttributor({ socketLookup: { find: () => null } });
    const id = await attributor.identify(owner(child.pid!, later));
    assert.equal(id.pid, child.pid);
    assert.equal(id.executable, node);
    assert.equal(id.complete, true);
    // Recorded at boot: the process now at that pid started later, so it is not the one recorded.
    const reused = await attributor.identify(owner(child.pid!, 0));
    assert.equal(reused.pid, child.pid, 'the recorded pid is kept');
    assert.equal(reused.executable, null, 'but nothing of the process now at that pid');
    assert.equal(reused.complete, false);
    child.kill('SIGKILL');
  });

  test('a process that has exited is named from what was read of it before, and only then', async () => {
    const child = sleeper();
    await new Promise((r) => setTimeout(r, 100));
    const at = bootNs() + 1e9;
    const attributor = new ProcessAttributor({ socketLookup: { find: () => null } });
    assert.equal((await attributor.identify(owner(child.pid!, at))).executable, node);
    child.kill('SIGKILL');
    await new Promise((r) => child.once('exit', r));
    const after = await attributor.identify(owner(child.pid!, at + 1e6));
    assert.equal(after.executable, node, 'seen before: still named');
    assert.equal(attributor.stats.recordedGone, 1);
    const otherName = await attributor.identify(owner(child.pid!, at + 1e6, 'curl'));
    assert.equal(otherName.executable, null, 'another name under that pid: not the process seen');
    const fresh = new ProcessAttributor({ socketLookup: { find: () => null } });
    const unseen = await fresh.identify(owner(child.pid!, at));
    assert.deepEqual([unseen.pid, unseen.executable, unseen.complete], [child.pid, null, false]);
  });
});
