/**
 * Attacks on the verdict cache's socket mark (MARK_DECIDED, docs/attribution.md "Verdict cache";
 * docs/security.md), performed for real against `wardend run` enforcing in a namespace pair with its
 * BPF programs on a cgroup of the test's own, the attacker a copy of perl as nobody:
 * - a socket the cache decided keeps the bit after connect(AF_UNSPEC); once the engine stopped
 *   (onStop keep) or was killed, the same socket connects to a destination the policy refuses;
 * - with CAP_NET_RAW only (enough to set SO_MARK since Linux 5.17), a connection the engine dropped
 *   sets the bit on its socket: the SYN sent again would be accepted. Also by the 32-bit setsockopt
 *   and socketcall system calls of a 64-bit process and an io_uring command on a ring set up by a
 *   32-bit call (compat-mark.c, compiled here), which the kernel passes to no cgroup/setsockopt
 *   program; and on a socket whose connect began before the engine (re)started.
 * With onEngineFailure closed a new connection must be dropped while no engine runs.
 */
import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { execFileSync, spawnSync } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { createInterface } from 'node:readline';
import { after, before, describe, test } from 'node:test';
import { cgroupTestsUnavailable, createTestCgroup, type TestCgroup } from '../kernel/cgroup.js';
import { kernelTestsUnavailable, listenOn, SERVER_ADDR } from '../kernel/netns.js';
import { PERL_CLIENT, perlScriptDir, type VerdictCacheStatus } from '../kernel/verdict-cache-client.js';
import { denyAllPolicy, startWardend } from '../kernel/wardend.js';
import { repoRoot } from '../repo-root.js';
import { type KernelEngine, startKernelEngine } from './kernel-engine.js';

const PORT = 44363;
const ALLOWED = 9041;
const REFUSED = 9042;
const DROPPED = 9043;
const MARK_DECIDED = 0x04000000;
/** The bound docs/security.md states for a killed engine's cache hits (the live element's timeout) plus slack. */
const CRASH_WINDOW_MS = 2000 + 1500;

/**
 * ARGV[3] sockets, each connected to ARGV[1] (a cache hit) and disconnected (AF_UNSPEC): their mark
 * keeps the bit. Prints "ready"; then per line read, the next socket connects to ARGV[2] (ARGV[4] ms
 * at most) and prints ok or refused.
 */
const STALE = `use Socket; use Time::HiRes qw(ualarm); $| = 1;
my ($host, $first, $second, $n, $ms) = @ARGV;
my @socks;
for (1..$n) {
  socket(my $s, PF_INET, SOCK_STREAM, 6) or die "socket: $!";
  connect($s, pack_sockaddr_in($first, inet_aton($host))) or do { print "first refused\\n"; exit 0 };
  connect($s, pack("S x14", AF_UNSPEC)) or die "disconnect: $!";
  push @socks, $s;
}
print "ready\\n";
while (my $line = <STDIN>) {
  my $s = shift @socks or last;
  my $ok = eval { local $SIG{ALRM} = sub { die "timeout\\n" }; ualarm($ms * 1000);
    my $r = connect($s, pack_sockaddr_in($second, inet_aton($host))); ualarm(0); $r };
  print $ok ? "ok\\n" : "refused\\n";
}
`;

/**
 * A non-blocking connect to ARGV[0]:ARGV[1] (the connect program sees a miss and clears the bit; the
 * engine drops the SYN), then SO_MARK ARGV[2] on the socket (prints whether the kernel let it); then
 * waits 3.5 s for the SYN sent again (after 1 s and 3 s) to connect.
 */
const LATE_MARK = `use Socket; use Fcntl; $| = 1;
my ($host, $port, $mark) = @ARGV;
socket(my $s, PF_INET, SOCK_STREAM, 6) or die "socket: $!";
fcntl($s, F_SETFL, fcntl($s, F_GETFL, 0) | O_NONBLOCK) or die "fcntl: $!";
connect($s, pack_sockaddr_in($port, inet_aton($host)));
print(setsockopt($s, SOL_SOCKET, 36, pack("L", $mark)) ? "mark set\\n" : "mark refused " . ($! + 0) . "\\n");
my $w = ''; vec($w, fileno($s), 1) = 1;
my $n = select(undef, my $out = $w, undef, 3.5);
my $err = unpack("i", getsockopt($s, SOL_SOCKET, SO_ERROR));
print(($n > 0 && $err == 0) ? "connected\\n" : "not connected\\n");
`;

const RULES = (perl: string) => `  - name: perl to the allowed port
    direction: outgoing
    protocol: tcp
    application: ${perl}
    remote: ${SERVER_ADDR}
    remotePorts: ${ALLOWED}
    action: allow
  - name: perl to the refused port
    direction: outgoing
    protocol: tcp
    application: ${perl}
    remote: ${SERVER_ADDR}
    remotePorts: ${REFUSED}
    action: reject
  - name: perl to the dropped port
    direction: outgoing
    protocol: tcp
    application: ${perl}
    remote: ${SERVER_ADDR}
    remotePorts: ${DROPPED}
    action: deny
`;

const SETTINGS = 'enforcement:\n  onEngineFailure: closed\n  onStop: keep\n';

/**
 * compat-mark.c compiled with gcc in a directory nobody can read (the attacker runs as nobody), after
 * checking that this kernel takes 32-bit system calls; or why the attack cannot be made here.
 */
function buildCompatMark(): { dir: string; exe: string } | string {
  if (process.arch !== 'x64')
    return `32-bit system calls by int $0x80 are an x86-64 attack (${process.arch} here)`;
  if (process.getuid?.() !== 0) return 'needs root';
  const dir = mkdtempSync(join(tmpdir(), 'warden-compat-mark-'));
  chmodSync(dir, 0o755);
  const exe = join(dir, 'compat-mark');
  const source = join(repoRoot(import.meta.url), 'test/adversarial/compat-mark.c');
  try {
    execFileSync('gcc', ['-O2', '-Wall', '-o', exe, source], { stdio: 'pipe' });
  } catch (e) {
    rmSync(dir, { recursive: true, force: true });
    return `cannot compile ${source} with gcc: ${(e as Error).message}`;
  }
  chmodSync(exe, 0o755);
  const probe = spawnSync(exe, ['probe'], { encoding: 'utf8' });
  if (probe.stdout.trim() !== 'ia32') {
    rmSync(dir, { recursive: true, force: true });
    return `this kernel takes no 32-bit system calls (CONFIG_IA32_EMULATION off, or ia32_emulation=0 on its command line): the probe ended with ${probe.signal ?? probe.status}`;
  }
  return { dir, exe };
}
const unavailable = kernelTestsUnavailable() ?? cgroupTestsUnavailable();
const compatMark = unavailable === null ? buildCompatMark() : unavailable;

describe("attacks on the verdict cache's socket mark", {
  skip: unavailable ?? undefined,
}, () => {
  let cgroup: TestCgroup;
  let dir: string;
  let perl: string;
  const engines: KernelEngine[] = [];

  before(() => {
    dir = perlScriptDir('warden-mark-attack-', {
      'client.pl': PERL_CLIENT,
      'stale.pl': STALE,
      'late-mark.pl': LATE_MARK,
    });
    perl = join(dir, 'perl');
    cgroup = createTestCgroup('mark-attack');
  });

  after(async () => {
    for (const k of engines) k.close();
    await cgroup?.remove();
    rmSync(dir, { recursive: true, force: true });
    if (typeof compatMark === 'object') rmSync(compatMark.dir, { recursive: true, force: true });
  });

  /** An engine in a namespace pair of its own, with both ports listening on the server side. */
  async function engine(label: string, port: number): Promise<KernelEngine> {
    const k = await startKernelEngine(label, port, denyAllPolicy(port, RULES(perl)), SETTINGS, cgroup);
    engines.push(k);
    await listenOn(k.pair, k.pair.server, [ALLOWED, REFUSED, DROPPED]);
    return k;
  }

  /** `argv` as nobody (with `caps` as ambient capabilities) in the client namespace and the test cgroup. */
  function spawnNobody(k: KernelEngine, argv: readonly string[], caps = ''): ChildProcess {
    const capArgs = caps === '' ? [] : [`--inh-caps=+${caps}`, `--ambient-caps=+${caps}`];
    return cgroup.spawn(
      'nsenter',
      [
        `--net=${k.pair.path(k.pair.client)}`,
        'setpriv',
        '--reuid=65534',
        '--regid=65534',
        '--clear-groups',
        ...capArgs,
        ...argv,
      ],
      { stdio: ['pipe', 'pipe', 'inherit'] },
    );
  }

  /** perl as nobody, running `script` of the test's directory. */
  function spawnPerl(
    k: KernelEngine,
    script: string,
    args: readonly (string | number)[],
    caps = '',
  ): ChildProcess {
    return spawnNobody(k, [perl, join(dir, script), ...args.map(String)], caps);
  }

  function runPerl(
    k: KernelEngine,
    script: string,
    args: readonly (string | number)[],
    caps = '',
  ): Promise<string> {
    return outputOf(spawnPerl(k, script, args, caps));
  }

  /** Closes the child's stdin; resolves with its output, trimmed, once it exits. */
  function outputOf(child: ChildProcess): Promise<string> {
    child.stdin!.end();
    let out = '';
    child.stdout!.on('data', (d) => (out += d));
    return new Promise((resolve, reject) => {
      child.once('error', reject);
      child.once('close', () => resolve(out.trim())); // 'exit' may come before the last output is read
    });
  }

  async function cacheStatus(k: KernelEngine): Promise<VerdictCacheStatus> {
    return ((await k.call('engine.status', {})) as { verdictCache: VerdictCacheStatus }).verdictCache;
  }

  /** Connects as nobody to the allowed port until the cache decides. */
  async function warm(k: KernelEngine): Promise<void> {
    assert.equal((await cacheStatus(k)).inUse, true);
    for (let i = 0; i < 6; i++) {
      const before = (await cacheStatus(k)).hits!;
      assert.equal(await runPerl(k, 'client.pl', [SERVER_ADDR, ALLOWED]), 'ok');
      if ((await cacheStatus(k)).hits! > before) return;
    }
    assert.fail(`the cache never decided: ${JSON.stringify(await cacheStatus(k))}`);
  }

  /** Stale sockets as nobody: resolves once they are ready; `probe()` connects the next one. */
  async function staleSockets(k: KernelEngine, count: number, ms: number) {
    const hitsBefore = (await cacheStatus(k)).hits!;
    const child = spawnPerl(k, 'stale.pl', [SERVER_ADDR, ALLOWED, REFUSED, count, ms]);
    const lines: string[] = [];
    const waiting: ((line: string) => void)[] = [];
    const rl = createInterface({ input: child.stdout! });
    rl.on('line', (l) => {
      const w = waiting.shift();
      if (w) w(l);
      else lines.push(l);
    });
    const next = () =>
      lines.length > 0 ? Promise.resolve(lines.shift()!) : new Promise<string>((r) => waiting.push(r));
    assert.equal(await next(), 'ready');
    // Each socket's first connect was decided by the cache: its mark has the bit.
    const hits = (await cacheStatus(k)).hits! - hitsBefore;
    assert.ok(hits >= count, `${hits} of ${count} stale sockets were cache hits`);
    return {
      probe(): Promise<string> {
        child.stdin!.write('go\n');
        return next();
      },
      close() {
        child.stdin!.end();
        rl.close();
      },
    };
  }

  function exited(k: KernelEngine): Promise<void> {
    return k.engine.exitCode !== null || k.engine.signalCode !== null
      ? Promise.resolve()
      : new Promise((resolve) => k.engine.once('exit', () => resolve()));
  }

  /**
   * Runs `attack` with an engine of its own, stopped when it ends however it ends: the programs of an
   * engine still running on the shared cgroup would clear the bit of the next test's sockets.
   */
  async function withEngine(label: string, port: number, attack: (k: KernelEngine) => Promise<void>) {
    const k = await engine(label, port);
    try {
      await attack(k);
    } finally {
      if (k.engine.exitCode === null && k.engine.signalCode === null) k.engine.kill('SIGTERM');
      await exited(k);
    }
  }

  test('with CAP_NET_RAW only, a dropped connection cannot set the decided bit for its next SYN', async () => {
    await withEngine('mkraw', PORT, async (k) => {
      await warm(k);
      // CAP_NET_RAW lets nobody set a mark (Linux >= 5.17): another bit is let.
      assert.equal(
        await runPerl(k, 'late-mark.pl', [SERVER_ADDR, DROPPED, 1], 'net_raw'),
        'mark set\nnot connected',
      );
      assert.equal(
        await runPerl(k, 'late-mark.pl', [SERVER_ADDR, DROPPED, MARK_DECIDED], 'net_raw'),
        'mark refused 1\nnot connected',
      );
      const items = await k.logs({ kind: 'connection', verdict: 'deny', application: perl });
      assert.ok(
        items.some((i) => i.user === 'nobody' && i.remote === `${SERVER_ADDR}:${DROPPED}`),
        `the engine decided it: ${JSON.stringify(items)}`,
      );
    });
  });

  test('with CAP_NET_RAW only, a 32-bit setsockopt or socketcall, or io_uring on a 32-bit ring (not seen by the setsockopt guard), cannot set the decided bit for the next SYN', {
    skip: typeof compatMark === 'string' ? compatMark : false,
  }, async () => {
    const exe = (compatMark as { exe: string }).exe;
    await withEngine('mkcompat', PORT + 3, async (k) => {
      await warm(k);
      const attack = (how: string) =>
        outputOf(spawnNobody(k, [exe, SERVER_ADDR, String(DROPPED), String(MARK_DECIDED), how], 'net_raw'));
      // At once (each on its own socket). The native call and an io_uring command on a native ring:
      // refused by the setsockopt guard. The 32-bit calls, and a command on a ring set up by one, pass
      // no cgroup/setsockopt program (the kernel runs them for native calls only): the mark is set,
      // and the sock_ops guard clears the bit before the SYN is sent again.
      const ways = ['native', 'uring', 'compat', 'socketcall', 'uring-compat'];
      const results = await Promise.all(ways.map(attack));
      // Its mark after the SYNs sent again: the bit was taken off.
      assert.deepEqual(Object.fromEntries(ways.map((w, i) => [w, results[i]])), {
        native: 'mark refused 1\nnot connected\nmark 0',
        uring: 'mark refused 1\nnot connected\nmark 0',
        compat: 'mark set\nnot connected\nmark 0',
        socketcall: 'mark set\nnot connected\nmark 0',
        'uring-compat': 'mark set\nnot connected\nmark 0',
      });
      // The SYNs sent again were queued: the engine decided them.
      const items = await k.logs({ kind: 'connection', verdict: 'deny', application: exe });
      assert.ok(
        items.filter((i) => i.user === 'nobody' && i.remote === `${SERVER_ADDR}:${DROPPED}`).length > 0,
        `the engine decided them: ${JSON.stringify(items)}`,
      );
    });
  });

  test('a socket connecting since before the engine started cannot be given the decided bit for its next SYN', {
    skip: typeof compatMark === 'string' ? compatMark : false,
  }, async () => {
    const exe = (compatMark as { exe: string }).exe;
    const port = PORT + 4;
    const k = await engine('mkwin', port);
    const dir2 = mkdtempSync(join(tmpdir(), 'warden-mkwin-'));
    let second: (ChildProcess & { output: () => string }) | undefined;
    let attacker: ChildProcess | undefined;
    try {
      // The first engine stops (onStop keep): its programs are detached, new connections dropped.
      k.engine.kill('SIGTERM');
      await exited(k);
      // A connect begins with no guard attached; its SYN is dropped and sent again after 1, 3, 7, 15 s.
      attacker = spawnNobody(
        k,
        [exe, SERVER_ADDR, String(DROPPED), String(MARK_DECIDED), 'compat', '12000', 'hold'],
        'net_raw',
      );
      const lines: string[] = [];
      const waiting: ((line: string) => void)[] = [];
      createInterface({ input: attacker.stdout! }).on('line', (l) =>
        (waiting.shift() ?? ((x) => lines.push(x)))(l),
      );
      const next = () =>
        lines.length > 0 ? Promise.resolve(lines.shift()!) : new Promise<string>((r) => waiting.push(r));
      assert.equal(await next(), 'connecting');
      // Another engine with the cache starts in the same namespace (the same policy and settings).
      mkdirSync(join(dir2, 'etc'));
      writeFileSync(join(dir2, 'etc/policy.yaml'), denyAllPolicy(port, RULES(perl)));
      writeFileSync(join(dir2, 'etc/settings.yaml'), SETTINGS);
      process.env.WARDEN_BPF_CGROUP = `/${basename(cgroup.path)}`;
      try {
        second = await startWardend(k.pair, k.pair.client, dir2, port);
      } finally {
        delete process.env.WARDEN_BPF_CGROUP;
      }
      // Now the socket gets the bit (a 32-bit call: the setsockopt guard does not see it).
      attacker.stdin!.write('go\n');
      assert.equal(await next(), 'mark set');
      assert.equal(await next(), 'not connected', 'the SYN sent again was queued and dropped');
      assert.equal(await next(), `mark 0x${MARK_DECIDED.toString(16)}`, 'no guard cleared this one');
      const out = second.output();
      assert.match(out, /waits for [1-9]\d* TCP connections begun before its mark guards were attached/, out);
      // Once the socket is closed, the cache's connections are accepted again.
      for (
        let i = 0;
        i < 50 && !second.output().includes('connections begun before its guards are over');
        i++
      )
        await new Promise((r) => setTimeout(r, 100));
      assert.match(second.output(), /connections begun before its guards are over/);
    } finally {
      if (attacker?.exitCode === null) attacker.kill('SIGKILL');
      if (second !== undefined && second.exitCode === null) {
        const gone = new Promise((r) => second!.once('exit', r));
        second.kill('SIGTERM');
        await gone;
      }
      rmSync(dir2, { recursive: true, force: true });
    }
  });

  test('a socket the cache decided does not connect past the policy once the engine stopped (onStop keep)', async () => {
    await withEngine('mkstop', PORT + 1, async (k) => {
      await warm(k);
      const stale = await staleSockets(k, 2, 2000);
      try {
        k.engine.kill('SIGTERM');
        await exited(k);
        assert.equal(await stale.probe(), 'refused', 'the SYN to the refused port was dropped');
        assert.equal(await stale.probe(), 'refused');
      } finally {
        stale.close();
      }
    });
  });

  test(`a socket the cache decided does not connect past the policy ${CRASH_WINDOW_MS} ms after the engine was killed`, async () => {
    await withEngine('mkkill', PORT + 2, async (k) => {
      await warm(k);
      const stale = await staleSockets(k, 40, 300);
      try {
        k.engine.kill('SIGKILL');
        await exited(k);
        const killed = Date.now();
        const results: string[] = [];
        let closedAfter = -1;
        while (Date.now() - killed < CRASH_WINDOW_MS + 3000 && results.length < 36) {
          const at = Date.now() - killed;
          const r = await stale.probe();
          results.push(`${at}:${r}`);
          if (r === 'refused' && closedAfter < 0) closedAfter = at;
          if (r === 'ok') closedAfter = -1;
          if (closedAfter >= 0 && Date.now() - killed > CRASH_WINDOW_MS + 1000) break;
          await new Promise((r) => setTimeout(r, 100));
        }
        console.log(`after SIGKILL: ${results.join(' ')}`);
        assert.ok(
          closedAfter >= 0 && closedAfter <= CRASH_WINDOW_MS,
          `refused from ${closedAfter} ms: ${results.join(' ')}`,
        );
      } finally {
        stale.close();
      }
    });
  });
});
