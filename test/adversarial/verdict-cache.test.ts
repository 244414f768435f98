/**
 * Attacks on the verdict cache (docs/attribution.md, "Verdict cache"; docs/security.md), performed
 * for real against `wardend run` enforcing in a namespace pair with its BPF programs on a cgroup of
 * the test's own: a program as nobody sets Warden's "decided" mark bit on its socket itself; it
 * reuses a socket the cache decided for a connection the policy refuses; and a program keeps
 * connecting while a policy change refuses it. A copy of perl in a test directory is the program.
 */
import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface, type Interface } from 'node:readline';
import { after, before, describe, test } from 'node:test';
import { cgroupTestsUnavailable, createTestCgroup, type TestCgroup } from '../kernel/cgroup.js';
import { kernelTestsUnavailable, listenOn, SERVER_ADDR } from '../kernel/netns.js';
import { PERL_CLIENT, perlScriptDir, type VerdictCacheStatus } from '../kernel/verdict-cache-client.js';
import { denyAllPolicy } from '../kernel/wardend.js';
import { type KernelEngine, startKernelEngine } from './kernel-engine.js';

const PORT = 44362;
const ALLOWED = 9031;
const REFUSED = 9032;
const MARK_DECIDED = 0x04000000;

/** Sets SO_MARK to ARGV[2] (prints whether the kernel let it), then connects to ARGV[0]:ARGV[1]. */
const FORGE = `use Socket;
my ($host, $port, $mark) = @ARGV;
socket(my $s, PF_INET, SOCK_STREAM, 6) or die "socket: $!";
print(setsockopt($s, SOL_SOCKET, 36, pack("L", $mark)) ? "mark set\\n" : "mark refused " . ($! + 0) . "\\n");
my $ok = eval { local $SIG{ALRM} = sub { die "timeout\\n" }; alarm 2;
  my $r = connect($s, pack_sockaddr_in($port, inet_aton($host))); alarm 0; $r };
print $ok ? "ok\\n" : "refused\\n";
`;

/** Connects one socket to ARGV[1], disconnects it (AF_UNSPEC) and connects it again to ARGV[2]. */
const REUSE = `use Socket;
my ($host, $first, $second) = @ARGV;
socket(my $s, PF_INET, SOCK_STREAM, 6) or die "socket: $!";
connect($s, pack_sockaddr_in($first, inet_aton($host))) or do { print "first refused\\n"; exit 0 };
print "first ok\\n";
connect($s, pack("S x14", AF_UNSPEC)) or print "disconnect: $!\\n";
my $ok = eval { local $SIG{ALRM} = sub { die "timeout\\n" }; alarm 2;
  my $r = connect($s, pack_sockaddr_in($second, inet_aton($host))); alarm 0; $r };
print $ok ? "second ok\\n" : "second refused\\n";
`;

/** Up to ARGV[2] connections in a row (1 s each at most); stops after 3 in a row that did not connect; prints "connected failed". */
const BURST = `use Socket;
my ($host, $port, $n) = @ARGV; my ($ok, $failed, $row) = (0, 0, 0);
for (1..$n) {
  socket(my $s, PF_INET, SOCK_STREAM, 6) or die "socket: $!";
  my $r = eval { local $SIG{ALRM} = sub { die "timeout\\n" }; alarm 1;
    my $c = connect($s, pack_sockaddr_in($port, inet_aton($host))); alarm 0; $c };
  if ($r) { $ok++; $row = 0 } else { $failed++; last if ++$row >= 3 }
  close $s;
}
print "$ok $failed\n";
`;

/** One connection per line read from stdin, each on a new socket; prints ok or refused. */
const LOOP = `use Socket; $| = 1;
my ($host, $port) = @ARGV;
while (my $line = <STDIN>) {
  socket(my $s, PF_INET, SOCK_STREAM, 6) or die "socket: $!";
  my $ok = eval { local $SIG{ALRM} = sub { die "timeout\\n" }; alarm 2;
    my $r = connect($s, pack_sockaddr_in($port, inet_aton($host))); alarm 0; $r };
  print(($ok ? "ok" : "refused") . "\\n");
  close $s;
}
`;

const RULES = (perl: string) => `  - name: perl to the allowed port
    direction: outgoing
    protocol: tcp
    application: ${perl}
    remote: ${SERVER_ADDR}
    remotePorts: ${ALLOWED}
    action: allow
    log: true
  - name: perl to the refused port
    direction: outgoing
    protocol: tcp
    application: ${perl}
    remote: ${SERVER_ADDR}
    remotePorts: ${REFUSED}
    action: reject
`;

describe('attacks on the verdict cache', {
  skip: kernelTestsUnavailable() ?? cgroupTestsUnavailable() ?? undefined,
}, () => {
  let k: KernelEngine;
  let cgroup: TestCgroup;
  let dir: string;
  let perl: string;

  before(async () => {
    dir = perlScriptDir('warden-vcache-attack-', {
      'client.pl': PERL_CLIENT,
      'forge.pl': FORGE,
      'reuse.pl': REUSE,
      'loop.pl': LOOP,
      'burst.pl': BURST,
    });
    perl = join(dir, 'perl');
    cgroup = createTestCgroup('vcache-attack');
    k = await startKernelEngine('vcatk', PORT, denyAllPolicy(PORT, RULES(perl)), '', cgroup);
    // Both ports listen: a connection the engine let through would connect.
    await listenOn(k.pair, k.pair.server, [ALLOWED, REFUSED]);
  });

  after(async () => {
    k?.close();
    await cgroup?.remove();
    rmSync(dir, { recursive: true, force: true });
  });

  function spawnPerl(
    user: 'root' | 'nobody',
    script: string,
    args: readonly (string | number)[],
  ): ChildProcess {
    const asUser = user === 'nobody' ? ['--reuid=65534', '--regid=65534', '--clear-groups'] : [];
    return cgroup.spawn(
      'nsenter',
      [
        `--net=${k.pair.path(k.pair.client)}`,
        'setpriv',
        ...asUser,
        perl,
        join(dir, script),
        ...args.map(String),
      ],
      { stdio: ['pipe', 'pipe', 'inherit'] },
    );
  }

  function runPerl(
    user: 'root' | 'nobody',
    script: string,
    args: readonly (string | number)[],
  ): Promise<string> {
    const child = spawnPerl(user, script, args);
    child.stdin!.end();
    let out = '';
    child.stdout!.on('data', (d) => (out += d));
    return new Promise((resolve, reject) => {
      child.once('error', reject);
      child.once('close', () => resolve(out.trim())); // 'exit' may come before the last output is read
    });
  }

  async function cacheStatus(): Promise<VerdictCacheStatus> {
    return ((await k.call('engine.status', {})) as { verdictCache: VerdictCacheStatus }).verdictCache;
  }

  /** Connects as `user` to the allowed port until the cache decides (the third connection at the latest). */
  async function warm(user: 'root' | 'nobody'): Promise<void> {
    for (let i = 0; i < 6; i++) {
      const before = (await cacheStatus()).hits!;
      assert.equal(await runPerl(user, 'client.pl', [SERVER_ADDR, ALLOWED]), 'ok');
      if ((await cacheStatus()).hits! > before) return;
    }
    assert.fail(`the cache never decided for ${user}: ${JSON.stringify(await cacheStatus())}`);
  }

  test("nobody cannot set Warden's decided bit: the connection is queued and refused", async () => {
    assert.equal((await cacheStatus()).inUse, true);
    await warm('nobody');
    const out = await runPerl('nobody', 'forge.pl', [SERVER_ADDR, REFUSED, MARK_DECIDED]);
    assert.equal(out, 'mark refused 1\nrefused', 'EPERM, then the policy refuses');
    const items = await k.logs({ kind: 'connection', verdict: 'reject', application: perl });
    assert.ok(
      items.some((i) => i.user === 'nobody' && i.remote === `${SERVER_ADDR}:${REFUSED}`),
      `the engine decided it: ${JSON.stringify(items)}`,
    );
  });

  test('a socket the cache decided keeps no verdict for its next connect', async () => {
    await warm('nobody');
    const before = (await cacheStatus()).hits!;
    const out = await runPerl('nobody', 'reuse.pl', [SERVER_ADDR, ALLOWED, REFUSED]);
    assert.ok((await cacheStatus()).hits! > before, 'the first connect was a hit');
    assert.equal(out, 'first ok\nsecond refused');
  });

  test('a flood of cache hits while the engine is behind leaves no connection unlogged', async () => {
    await warm('nobody');
    // The warm-up's last hit is logged by the next drain (every 100 ms): counted before, not in the burst.
    await new Promise((r) => setTimeout(r, 400));
    const before = await cacheStatus();
    // The connections logged: the hits of one entry in one drain are one item with their count.
    const logged = async () =>
      (await k.logs({ kind: 'connection', application: perl }))
        .filter((i) => i.message.includes('verdict cache'))
        .reduce((sum, i) => sum + (i.count ?? 1), 0);
    const loggedBefore = await logged();
    // The engine stopped: nothing drains the ring (about 13,000 events). Hits go on until it is
    // full; then connections are queued, and wait there for the stopped engine.
    process.kill(k.engine.pid!, 'SIGSTOP');
    let out: string;
    try {
      out = await runPerl('nobody', 'burst.pl', [SERVER_ADDR, ALLOWED, 20_000]);
    } finally {
      process.kill(k.engine.pid!, 'SIGCONT');
    }
    const [connected, failed] = out.split(' ').map(Number);
    assert.ok(failed! >= 1, `the burst stopped at a full ring: ${out}`);
    const after = await cacheStatus();
    assert.ok(after.dropped! > before.dropped!, JSON.stringify(after));
    const hits = after.hits! - before.hits!;
    assert.ok(hits <= 13_200 && connected! <= hits + 5, `connected ${connected}, hits ${hits}`);
    // Every hit is logged once the engine drains (within a few seconds at this size).
    let n = 0;
    for (let attempt = 0; attempt < 40 && n < loggedBefore + hits; attempt++) {
      await new Promise((r) => setTimeout(r, 250));
      n = await logged();
    }
    assert.equal(n - loggedBefore, hits, 'every hit logged');
  });

  test('a change that refuses the connection holds from the very next connection, while one program keeps connecting', async () => {
    const loop = spawnPerl('nobody', 'loop.pl', [SERVER_ADDR, ALLOWED]);
    const lines: Interface = createInterface({ input: loop.stdout! });
    const results: string[] = [];
    const waiting: ((line: string) => void)[] = [];
    lines.on('line', (l) => {
      const w = waiting.shift();
      if (w) w(l);
      else results.push(l);
    });
    const next = (): Promise<string> => {
      loop.stdin!.write('go\n');
      return new Promise((resolve) => waiting.push(resolve));
    };
    try {
      for (let i = 0; i < 3; i++) assert.equal(await next(), 'ok');
      const warmHits = (await cacheStatus()).hits!;
      assert.equal(await next(), 'ok');
      assert.ok((await cacheStatus()).hits! > warmHits, 'the loop is decided by the cache');
      // Connections go on while the change is made; from its answer on, every one is refused.
      const change = k.call('rules.update', {
        name: 'perl to the allowed port',
        rule: {
          name: 'perl to the allowed port',
          direction: 'outgoing',
          protocol: 'tcp',
          application: perl,
          remote: [SERVER_ADDR],
          remotePorts: [ALLOWED],
          action: 'reject',
        },
      });
      let done = false;
      void change.finally(() => {
        done = true;
      });
      while (!done) await next();
      await change;
      for (let i = 0; i < 5; i++)
        assert.equal(await next(), 'refused', `connection ${i + 1} after the change`);
    } finally {
      loop.stdin!.end();
      lines.close();
    }
  });
});
