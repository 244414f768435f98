/**
 * Connect-time slots (native/bpf_tuple.c, docs/attribution.md "Connect-time slots") against real
 * processes: a TCP connection's socket and process are read from the slot its connect filled (no
 * sock_diag, no map lookup), give the same answer sock_diag and the record map give, and where the
 * slot cannot hold the connection (its socket closed, another network namespace) sock_diag answers.
 * The programs are attached only to a cgroup this test makes; loopback and namespaces of its own.
 */
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { chmodSync, mkdtempSync, realpathSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { after, before, describe, test } from 'node:test';
import { nativeSocketLookup, ProcessAttributor } from '../../src/kernel/attribution.js';
import { type BpfAttribution, openBpfAttribution, readProcess } from '../../src/kernel/native.js';
import { cgroupTestsUnavailable, createTestCgroup, type TestCgroup } from './cgroup.js';
import { fixture } from './fixture-process.js';
import {
  CLIENT_ADDR,
  createNetnsPair,
  kernelTestsUnavailable,
  listenOn,
  type NetnsPair,
  SERVER_ADDR,
} from './netns.js';

/** Connects (argv: host, port, local port or 0, family), prints {pid, port}; exits on stdin or when closed. */
export const CONNECT = `
import net from 'node:net';
const [host, port, localPort, family] = process.argv.slice(2);
const options = { host, port: Number(port), family: Number(family) };
if (Number(localPort) > 0) options.localPort = Number(localPort);
const c = net.connect(options, () => process.stdout.write(JSON.stringify({ pid: process.pid, port: c.localPort }) + '\\n'));
c.on('error', (e) => { process.stderr.write(String(e) + '\\n'); process.exit(1); });
c.on('end', () => c.end());
c.on('close', () => process.exit(0));
process.stdin.once('data', () => process.exit(0));
`;

/**
 * Two sockets from CLIENT_ADDR:ARGV[2] to ARGV[0]:ARGV[1], the first bound to device wd0, the
 * second to wd2 (TCP lets sockets bound to different devices share a four-tuple); each made after a
 * line on stdin, each printing "DEVICE ok" or "DEVICE no ERRNO" (the second may never connect).
 */
const TWO_DEVICES = `use Socket; $| = 1;
my ($host, $port, $local) = @ARGV; my @kept;
for my $dev ('wd0', 'wd2') {
  <STDIN>;
  socket(my $s, PF_INET, SOCK_STREAM, 6) or die "socket: $!";
  setsockopt($s, SOL_SOCKET, SO_REUSEADDR, 1) or die "reuseaddr: $!";
  setsockopt($s, SOL_SOCKET, 25, pack("Z*", $dev)) or die "bindtodevice: $!";
  bind($s, pack_sockaddr_in($local, inet_aton('${CLIENT_ADDR}'))) or die "bind: $!";
  my $ok = eval { local $SIG{ALRM} = sub { die "timeout\\n" }; alarm 1;
    my $r = connect($s, pack_sockaddr_in($port, inet_aton($host))); alarm 0; $r };
  print "$dev " . ($ok ? "ok" : "no " . ($! + 0)) . "\\n";
  push @kept, $s;
}
<STDIN>;
# The first socket closes (a reset: no TIME_WAIT) while the second lives; a third takes the first's place.
my $first = shift @kept;
setsockopt($first, SOL_SOCKET, SO_LINGER, pack("ii", 1, 0)); close $first;
socket(my $t, PF_INET, SOCK_STREAM, 6) or die "socket: $!";
setsockopt($t, SOL_SOCKET, SO_REUSEADDR, 1) or die "reuseaddr: $!";
setsockopt($t, SOL_SOCKET, 25, pack("Z*", 'wd0')) or die "bindtodevice: $!";
bind($t, pack_sockaddr_in($local, inet_aton('${CLIENT_ADDR}'))) or die "bind: $!";
my $ok = eval { local $SIG{ALRM} = sub { die "timeout\n" }; alarm 1;
  my $r = connect($t, pack_sockaddr_in($port, inet_aton($host))); alarm 0; $r };
print "wd0 again " . ($ok ? "ok" : "no " . ($! + 0)) . "\n";
push @kept, $t;
<STDIN>;
`;

const unavailable = cgroupTestsUnavailable() ?? kernelTestsUnavailable() ?? null;
const node = realpathSync(process.execPath);
const NOBODY = 65534;

let cgroup: TestCgroup;
let bpf: BpfAttribution;
let dir: string;
let script: string;
const children: ChildProcess[] = [];

export function firstLine(child: ChildProcess): Promise<{ pid: number; port: number }> {
  return new Promise((resolve, reject) => {
    child.once('error', reject);
    child.once('exit', (code) => reject(new Error(`peer exited (${code}) before printing`)));
    createInterface({ input: child.stdout! }).once('line', (l) => resolve(JSON.parse(l)));
  });
}

/** The connect script as `uid`, in the test cgroup or outside it; `ns`: in that network namespace. */
function connect(args: readonly string[], uid: number, inCgroup: boolean, ns?: string): ChildProcess {
  const command = [
    ...(ns !== undefined ? ['/usr/bin/nsenter', `--net=${ns}`] : []),
    ...(uid === 0 ? [] : ['/usr/bin/setpriv', `--reuid=${uid}`, `--regid=${uid}`, '--clear-groups']),
    node,
    script,
    ...args,
  ];
  const options = { stdio: ['pipe', 'pipe', 'inherit'] as ('pipe' | 'inherit')[] };
  const child = inCgroup
    ? cgroup.spawn(command[0]!, command.slice(1), options)
    : spawn(command[0]!, command.slice(1), options); // not in the cgroup: the programs never see its sockets
  children.push(child);
  return child;
}

async function server(host: string): Promise<{ server: net.Server; port: number; sockets: net.Socket[] }> {
  const sockets: net.Socket[] = [];
  const s = net.createServer((c) => {
    c.on('error', () => {});
    sockets.push(c);
  });
  await new Promise<void>((r) => s.listen(0, host, r));
  return { server: s, port: (s.address() as net.AddressInfo).port, sockets };
}

// With the verdict cache, the slots' program includes the cache's sock_ops guard (one program per callback).
for (const cacheEntries of [0, 1024])
  describe(`connect-time slots${cacheEntries > 0 ? ' (with the verdict cache: its guard in the same program)' : ''}`, {
    skip: unavailable ?? false,
  }, () => {
    before(() => {
      cgroup = createTestCgroup(`bpf-slots-${cacheEntries}`);
      bpf = openBpfAttribution(cgroup.path, { maxEntries: 4096, cacheEntries });
      dir = realpathSync(mkdtempSync(join(tmpdir(), 'warden-slots-')));
      chmodSync(dir, 0o755);
      script = join(dir, 'connect.mjs');
      writeFileSync(script, CONNECT, { mode: 0o644 });
    });

    after(async () => {
      for (const child of children)
        if (child.exitCode === null && child.signalCode === null && child.pid)
          process.kill(child.pid, 'SIGKILL');
      bpf?.close();
      await cgroup?.remove();
      if (dir) rmSync(dir, { recursive: true, force: true });
    });

    test('TCP over IPv4, IPv6 and IPv4 on a dual-stack socket, as root and nobody: read from the slot, exact, the same answer as sock_diag', async () => {
      assert.equal(bpf.lookups().slots, 'on');
      const v4 = await server('127.0.0.1');
      const v6 = await server('::1');
      const kinds = [
        { name: 'tcp4', host: '127.0.0.1', family: 4, srv: v4, local: '127.0.0.1' },
        { name: 'tcp6', host: '::1', family: 6, srv: v6, local: '::1' },
        { name: 'mapped', host: '::ffff:127.0.0.1', family: 6, srv: v4, local: '127.0.0.1' },
      ] as const;
      const runs = kinds.flatMap((k) => [0, NOBODY, 0, NOBODY].map((uid) => ({ ...k, uid })));
      const peers = runs.map((r) =>
        connect([r.host, String(r.srv.port), '0', String(r.family)], r.uid, true),
      );
      const printed = await Promise.all(peers.map(firstLine));
      const before = bpf.lookups();
      const attributor = new ProcessAttributor({
        socketLookup: nativeSocketLookup(bpf.lookupSocket),
        readProcess,
      });
      for (const [i, run] of runs.entries()) {
        const { pid, port } = printed[i]!;
        // The packet's family: IPv4 for the dual-stack socket's connection to a mapped address.
        const family = run.name === 'tcp6' ? 6 : 4;
        const args = ['tcp', family, run.local, port, run.local, run.srv.port] as const;
        const slot = bpf.lookupSocket(...args);
        const diag = bpf.lookupSocketByDiag(...args);
        assert.ok(slot?.process && diag?.process, `${run.name} as ${run.uid}: found both ways`);
        assert.equal(slot.inode, diag.inode, `${run.name}: inode`);
        assert.equal(slot.uid, diag.uid, `${run.name}: socket owner`);
        assert.equal(slot.cookie, diag.cookie, `${run.name}: cookie`);
        assert.deepEqual(slot.process, diag.process, `${run.name}: the record`);
        const id = await attributor.attribute({
          protocol: 'tcp',
          family,
          direction: 'outgoing',
          localAddress: run.local,
          localPort: port,
          remoteAddress: run.local,
          remotePort: run.srv.port,
        });
        assert.equal(id?.pid, pid, `${run.name} as ${run.uid}: pid`);
        assert.equal(id?.executable, node, `${run.name} as ${run.uid}: executable`);
        assert.equal(id?.uid, run.uid, `${run.name} as ${run.uid}: uid`);
        assert.equal(id?.socketUid, run.uid, `${run.name} as ${run.uid}: socket uid`);
        assert.equal(id?.inode, diag.inode);
      }
      const now = bpf.lookups();
      // Each run: one lookupSocket above and one in attribute(), both from the slot.
      assert.equal(now.fromSlots - before.fromSlots, 2 * runs.length, JSON.stringify(now));
      assert.equal(now.bySockDiag, before.bySockDiag, 'sock_diag was not asked');
      for (const p of peers) p.stdin!.end('bye\n');
      v4.server.close();
      v6.server.close();
    });

    test('a closed connection empties its slot: a socket outside the cgroup with the same four-tuple is found by sock_diag', async () => {
      const srv = await server('127.0.0.1');
      const first = connect(['127.0.0.1', String(srv.port), '0', '4'], 0, true);
      const { port } = await firstLine(first);
      const args = ['tcp', 4, '127.0.0.1', port, '127.0.0.1', srv.port] as const;
      assert.equal(bpf.lookupSocket(...args)?.process?.pid, first.pid, 'in its slot while it lives');
      // The server closes first (its end keeps the TIME_WAIT), the client follows and exits.
      for (const s of srv.sockets) s.end();
      await new Promise((r) => first.once('exit', r));
      const before = bpf.lookups();
      const outside = connect(['127.0.0.1', String(srv.port), String(port), '4'], 0, false);
      const again = await firstLine(outside);
      assert.equal(again.port, port, 'the same four-tuple');
      const found = bpf.lookupSocket(...args);
      assert.equal(found?.process, undefined, 'no record: the programs never saw this socket');
      const attributor = new ProcessAttributor({
        socketLookup: nativeSocketLookup(bpf.lookupSocket),
        readProcess,
      });
      const id = await attributor.attribute({
        protocol: 'tcp',
        family: 4,
        direction: 'outgoing',
        localAddress: '127.0.0.1',
        localPort: port,
        remoteAddress: '127.0.0.1',
        remotePort: srv.port,
      });
      assert.equal(id?.pid, outside.pid, 'the process that holds the tuple now');
      const now = bpf.lookups();
      assert.equal(now.fromSlots, before.fromSlots, 'never from the slot');
      assert.ok(
        now.slotMisses.empty + now.slotMisses.other > before.slotMisses.empty + before.slotMisses.other,
      );
      outside.stdin!.end('bye\n');
      srv.server.close();
    });

    test('a connection in another network namespace is never taken for this one with the same tuple', async () => {
      let pair: NetnsPair | null = null;
      try {
        pair = createNetnsPair('slots');
        // A listener and a client in the namespace (its own loopback), the client in the cgroup.
        const listener = pair.spawn(pair.client, node, [
          '-e',
          `const s=require('net').createServer(c=>c.on('error',()=>{})).listen(0,'127.0.0.1',()=>console.log(JSON.stringify({pid:process.pid,port:s.address().port})));`,
        ]);
        listener.stdout!.setEncoding('utf8');
        children.push(listener);
        const { port: inner } = await firstLine(listener);
        const before = bpf.lookups();
        const client = connect(['127.0.0.1', String(inner), '0', '4'], 0, true, pair.path(pair.client));
        const { port } = await firstLine(client);
        const found = bpf.lookupSocket('tcp', 4, '127.0.0.1', port, '127.0.0.1', inner);
        assert.equal(found, null, 'no such connection in this namespace');
        const now = bpf.lookups();
        assert.equal(now.fromSlots, before.fromSlots);
        assert.equal(now.bySockDiag, before.bySockDiag + 1, 'sock_diag answered (nothing)');
        client.stdin!.end('bye\n');
      } finally {
        pair?.close();
      }
    });

    test('two live sockets with one four-tuple (bound to different devices): the slot is poisoned, given to neither', {
      timeout: 60_000,
    }, async () => {
      let pair: NetnsPair | null = null;
      let lookup: ReturnType<typeof fixture> | null = null;
      try {
        pair = createNetnsPair('slotdev');
        // A second link between the namespaces, routed only for sockets bound to it.
        pair.run(pair.client, 'ip', [
          'link',
          'add',
          'wd2',
          'type',
          'veth',
          'peer',
          'name',
          'wd3',
          'netns',
          pair.server,
        ]);
        pair.run(pair.client, 'ip', ['addr', 'add', '10.200.1.1/24', 'dev', 'wd2']);
        pair.run(pair.server, 'ip', ['addr', 'add', '10.200.1.2/24', 'dev', 'wd3']);
        pair.run(pair.client, 'ip', ['link', 'set', 'wd2', 'up']);
        pair.run(pair.server, 'ip', ['link', 'set', 'wd3', 'up']);
        pair.run(pair.client, 'ip', ['rule', 'add', 'oif', 'wd2', 'table', '100']);
        pair.run(pair.client, 'ip', ['route', 'add', `${SERVER_ADDR}/32`, 'dev', 'wd2', 'table', '100']);
        const port = 9051;
        const local = 47351;
        await listenOn(pair, pair.server, [port]);
        lookup = fixture(pair, pair.client, 'slot-lookup.js', [cgroup.path]);
        await lookup.next((l) => l.event === 'ready', 'ready', 15_000);
        const perl = cgroup.spawn(
          'nsenter',
          [
            `--net=${pair.path(pair.client)}`,
            '/usr/bin/perl',
            '-e',
            TWO_DEVICES,
            SERVER_ADDR,
            String(port),
            String(local),
          ],
          { stdio: ['pipe', 'pipe', 'inherit'] },
        );
        children.push(perl);
        const lines = createInterface({ input: perl.stdout! })[Symbol.asyncIterator]();
        const tuple = {
          protocol: 'tcp',
          family: 4,
          src: CLIENT_ADDR,
          sport: local,
          dst: SERVER_ADDR,
          dport: port,
        };
        const ask = async (id: number) => {
          lookup!.send(JSON.stringify({ id, ...tuple }));
          return (await lookup!.next((l) => l.id === id, `lookup ${id}`)) as {
            pid: number | null;
            lookups: { fromSlots: number; slotMisses: { poisoned: number } };
          };
        };
        perl.stdin!.write('\n');
        assert.equal((await lines.next()).value, 'wd0 ok');
        const first = await ask(1);
        assert.equal(first.pid, perl.pid, 'one socket with the tuple: read from its slot');
        assert.equal(first.lookups.fromSlots, 1);
        perl.stdin!.write('\n');
        assert.match(String((await lines.next()).value), /^wd2 /, 'the second socket connected (or tried)');
        const second = await ask(2);
        assert.equal(second.lookups.fromSlots, 1, 'not from the slot');
        assert.equal(second.lookups.slotMisses.poisoned, 1, JSON.stringify(second.lookups));
        // The first closes while the second lives, and a third connects with the tuple: still neither's.
        perl.stdin!.write('\n');
        assert.equal((await lines.next()).value, 'wd0 again ok');
        const third = await ask(3);
        assert.equal(third.lookups.fromSlots, 1, `not from the slot: ${JSON.stringify(third.lookups)}`);
        assert.equal(third.lookups.slotMisses.poisoned, 2, JSON.stringify(third.lookups));
        perl.stdin!.end('\n');
      } finally {
        lookup?.close();
        pair?.close();
      }
    });
  });
