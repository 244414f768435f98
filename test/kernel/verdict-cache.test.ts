/**
 * The verdict cache with real packets (docs/attribution.md, "Verdict cache"): `wardend run`
 * enforcing in a namespace pair with its BPF programs on a cgroup this test makes
 * (WARDEN_BPF_CGROUP; never the host's root). Copies of perl in a directory of the test's own are
 * the programs: a program's repeat connections to the same destination are decided in the kernel
 * (not queued) and still logged; another uid, a replaced executable and a rule with program
 * context are not covered; a policy change that refuses the connection holds for the very next one,
 * and one that leaves the decision as it was keeps the entry.
 */
import assert from 'node:assert/strict';
import { chmodSync, copyFileSync, readdirSync, readFileSync, renameSync, rmSync } from 'node:fs';
import { basename, join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { type KernelEngine, type LogItem, startKernelEngine } from '../adversarial/kernel-engine.js';
import { cgroupTestsUnavailable, createTestCgroup, type TestCgroup } from './cgroup.js';
import { kernelTestsUnavailable, listenOn, SERVER_ADDR, SERVER_ADDR6 } from './netns.js';
import { PERL_CLIENT, perlScriptDir, type VerdictCacheStatus } from './verdict-cache-client.js';
import { denyAllPolicy, NODE } from './wardend.js';

const PORT = 44361;
const SERVICE = 9021;
const CACHED = 'decided by the verdict cache';

/** The connections log items stand for (an item of the cache's hits counts them). */
function connections(items: readonly LogItem[]): number {
  return items.reduce((sum, i) => sum + (i.count ?? 1), 0);
}
/** One connection over an IPv6 socket to ARGV[0] (IPv6, or IPv4-mapped) port ARGV[1]. */
const V6_CLIENT = `socket(my $s, AF_INET6, SOCK_STREAM, 6) or die "socket: $!"; print connect($s, pack_sockaddr_in6($ARGV[1], inet_pton(AF_INET6, $ARGV[0]))) ? "ok\n" : "refused\n";`;
/**
 * perl-b (this script) makes and binds a socket kept across exec (the bind records perl-b), starts ARGV[0] (perl-a) connecting it to
 * ARGV[1]:ARGV[2], closes its own copy and waits; perl-a prints ok or refused (2 s for a drop).
 */
const HANDOVER = `BEGIN { $^F = 255 } use Socket; my ($exe, $host, $port) = @ARGV;
socket(my $s, PF_INET, SOCK_STREAM, 6) or die "socket: $!"; my $fd = fileno($s);
bind($s, pack_sockaddr_in(0, INADDR_ANY)) or die "bind: $!";
my $pid = fork() // die "fork: $!";
if ($pid == 0) { exec $exe, '-e', 'use Socket; open(my $s, "+<&=", $ARGV[0]) or die "fd: $!"; my $ok = eval { local $SIG{ALRM} = sub { die "timeout\\n" }; alarm 2; my $r = connect($s, pack_sockaddr_in($ARGV[2], inet_aton($ARGV[1]))); alarm 0; $r }; print $ok ? "ok\\n" : "refused\\n";', $fd, $host, $port; die "exec: $!" }
close $s; waitpid($pid, 0);`;

/** The pids below `root` (from /proc's parent links). */
function descendants(root: number): number[] {
  const parents = new Map<number, number>();
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const stat = readFileSync(`/proc/${name}/stat`, 'latin1');
      parents.set(Number(name), Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]));
    } catch {
      // gone meanwhile
    }
  }
  const out: number[] = [];
  const walk = (pid: number) => {
    for (const [child, parent] of parents) {
      if (parent !== pid) continue;
      out.push(child);
      walk(child);
    }
  };
  walk(root);
  return out;
}

function cmdline(pid: number): string {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'latin1');
  } catch {
    return '';
  }
}

/** Six connections from one process, each on a new socket. */
const REPEAT = `my @r; for (1..6) { socket(my $s, PF_INET, SOCK_STREAM, 6) or die; push @r, connect($s, pack_sockaddr_in($ARGV[1], inet_aton($ARGV[0]))) ? "ok" : "refused"; close $s } print "@r\n";`;

describe('the verdict cache', {
  skip: kernelTestsUnavailable() ?? cgroupTestsUnavailable() ?? undefined,
}, () => {
  let k: KernelEngine;
  let cgroup: TestCgroup;
  let dir: string;
  let perlA: string;
  let perlB: string;
  let script: string;

  before(async () => {
    // Readable by nobody: the programs run as nobody too.
    dir = perlScriptDir('warden-vcache-', { 'client.pl': PERL_CLIENT }, ['perl-a', 'perl-b']);
    perlA = join(dir, 'perl-a');
    perlB = join(dir, 'perl-b');
    script = join(dir, 'client.pl');
    cgroup = createTestCgroup('vcache');
    k = await startKernelEngine(
      'vcache',
      PORT,
      denyAllPolicy(
        PORT,
        `  - name: perl-a to the service
    direction: outgoing
    protocol: tcp
    application: ${perlA}
    remote: ${SERVER_ADDR}
    remotePorts: ${SERVICE}
    action: allow
    log: true
  - name: perl-a to the service over IPv6
    direction: outgoing
    protocol: tcp
    application: ${perlA}
    remote: "${SERVER_ADDR6}"
    remotePorts: ${SERVICE}
    action: allow
    log: true
  - name: perl-b from node to the service
    direction: outgoing
    protocol: tcp
    application: ${perlB}
    parent: ${NODE}
    remote: ${SERVER_ADDR}
    remotePorts: ${SERVICE}
    action: allow
    log: true
`,
      ),
      '',
      cgroup,
    );
    await listenOn(k.pair, k.pair.server, [SERVICE]);
  });

  after(async () => {
    k?.close();
    await cgroup?.remove();
    rmSync(dir, { recursive: true, force: true });
  });

  /** Runs `exe` (a perl) with the client script in the test cgroup and the client namespace as `user`. */
  function connectOnce(user: 'root' | 'nobody', exe: string): Promise<string> {
    const asUser = user === 'nobody' ? ['--reuid=65534', '--regid=65534', '--clear-groups'] : [];
    const child = cgroup.spawn(
      'nsenter',
      [
        `--net=${k.pair.path(k.pair.client)}`,
        'setpriv',
        ...asUser,
        exe,
        script,
        SERVER_ADDR,
        String(SERVICE),
      ],
      { stdio: ['ignore', 'pipe', 'inherit'] },
    );
    let out = '';
    child.stdout!.on('data', (d) => (out += d));
    return new Promise((resolve, reject) => {
      child.once('error', reject);
      child.once('close', () => resolve(out.trim())); // 'exit' may come before the last output is read
    });
  }

  async function cacheStatus(): Promise<VerdictCacheStatus> {
    const s = (await k.call('engine.status', {})) as { verdictCache?: VerdictCacheStatus };
    assert.ok(s.verdictCache, 'engine.status has verdictCache');
    return s.verdictCache;
  }

  /**
   * The connection items of `exe`, once they stand for `count` connections (hits are logged within
   * 100 ms; the hits of one entry in one drain are one item with their `count`).
   */
  async function itemsOf(exe: string, count: number): Promise<LogItem[]> {
    for (let attempt = 0; ; attempt++) {
      const items = await k.logs({ kind: 'connection', application: exe });
      if (connections(items) >= count || attempt >= 50) return items;
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  test('a program connecting again to the same destination is decided in the kernel, logged and counted', async () => {
    const status = await cacheStatus();
    assert.equal(status.inUse, true, JSON.stringify(status));
    // The output chain accepts the bit of a new connection at its second rule, before the policy's.
    const chain = k.pair.run(k.pair.client, 'nft', ['list', 'chain', 'inet', 'warden', 'output']);
    assert.match(
      chain,
      /policy accept;\n\s*ct state established meta l4proto != udp accept\n\s*meta l4proto tcp ct state new meta mark & 0x04000000 == 0x04000000 meta l4proto @warden_live accept\n/,
      chain,
    );
    // The engine keeps the liveness element the rule requires (renewed, 2 s timeout).
    const live = k.pair.run(k.pair.client, 'nft', ['list', 'set', 'inet', 'warden', 'warden_live']);
    assert.match(live, /elements = \{ tcp expires /, live);
    const before = status.hits!;
    for (let i = 0; i < 4; i++) assert.equal(await connectOnce('root', perlA), 'ok', `connection ${i + 1}`);
    const after = await cacheStatus();
    // The first connection reads the new executable from /proc; the second is named from its record
    // alone and inserted; from the third on the kernel decides.
    assert.ok(after.hits! - before >= 2, `hits ${before} -> ${after.hits}`);
    const items = await itemsOf(perlA, 4);
    assert.equal(connections(items), 4, JSON.stringify(items));
    const cached = items.filter((i) => i.message.includes(CACHED));
    assert.ok(connections(cached) >= 2, JSON.stringify(items));
    // Read because the ring's watch fired (native/bpf_cache.c), not on the fallback timer.
    assert.doesNotMatch(k.engine.output(), /hits are read every|watching the verdict cache's hits failed/);
    for (const item of items) {
      assert.equal(item.verdict, 'allow');
      assert.equal(item.user, 'root');
      assert.equal(item.remote, `${SERVER_ADDR}:${SERVICE}`);
    }
    assert.match(
      cached[0]!.message,
      /rule "perl-a to the service".*\((\d+ connections in \d+ ms, the first )?pid \d+, socket \d+/,
    );
    // The rule's counter counts the cache's hits like queued decisions.
    const listed = (await k.call('rules.list', { internal: false })) as {
      rules: { name: string; matches: number }[];
    };
    assert.equal(
      listed.rules.find((r) => r.name === 'perl-a to the service')?.matches,
      4,
      JSON.stringify(listed),
    );
    // The hits are decisions in engine.status's rate too (the fleet's decisions per minute).
    const rate = ((await k.call('engine.status', {})) as { decisionsPerMinute: number }).decisionsPerMinute;
    assert.ok(rate >= 4, `decisionsPerMinute ${rate}`);
  });

  test('the hits of one entry are logged with their number: every connection counted, the first and last named', async () => {
    const before = await cacheStatus();
    const items0 = (await itemsOf(perlA, 0)).length;
    const child = cgroup.spawn(
      'nsenter',
      [`--net=${k.pair.path(k.pair.client)}`, perlA, '-MSocket', '-e', REPEAT, SERVER_ADDR, String(SERVICE)],
      { stdio: ['ignore', 'pipe', 'inherit'] },
    );
    let out = '';
    child.stdout!.on('data', (d) => (out += d));
    await new Promise((resolve) => child.once('exit', resolve));
    assert.equal(out.trim(), 'ok ok ok ok ok ok');
    const hits = (await cacheStatus()).hits! - before.hits!;
    assert.ok(hits >= 5, 'decided in the kernel');
    let items: LogItem[] = [];
    for (let attempt = 0; attempt < 50 && connections(items) < 6; attempt++) {
      await new Promise((r) => setTimeout(r, 100));
      items = (await itemsOf(perlA, 0)).slice(items0);
    }
    assert.equal(connections(items), 6, JSON.stringify(items));
    const cached = items.filter((i) => i.message.includes(CACHED));
    assert.equal(connections(cached), hits, JSON.stringify(items));
    // Six connections a few microseconds apart: one drain takes them, one item (or two, cut by a drain).
    assert.ok(cached.length < hits, JSON.stringify(items));
    for (const item of cached) {
      const n = item.count ?? 1;
      if (n === 1) assert.match(item.message, /\(pid \d+, socket \d+\)$/, item.message);
      else {
        const m =
          /\((\d+) connections in (\d+) ms, the first pid (\d+), socket (\d+), the last pid (\d+), socket (\d+)\)$/.exec(
            item.message,
          );
        assert.ok(m, item.message);
        assert.equal(Number(m[1]), n, 'the message says the count');
        assert.equal(m[3], m[5], 'one process');
        assert.ok(BigInt(m[6]!) > BigInt(m[4]!), 'the last socket is a newer one');
      }
    }
  });

  test('IPv6, and IPv4 connected from an IPv6 socket (::ffff:a.b.c.d), are looked up by the address the packet carries', async () => {
    const v6 = (address: string) =>
      new Promise<string>((resolve, reject) => {
        const child = cgroup.spawn(
          'nsenter',
          [
            `--net=${k.pair.path(k.pair.client)}`,
            perlA,
            '-MSocket=:all',
            '-e',
            V6_CLIENT,
            address,
            String(SERVICE),
          ],
          { stdio: ['ignore', 'pipe', 'inherit'] },
        );
        let out = '';
        child.stdout!.on('data', (d) => (out += d));
        child.once('error', reject);
        child.once('close', () => resolve(out.trim())); // 'exit' may come before the last output is read
      });
    const before = await cacheStatus();
    // The entry of the IPv4 tests above decides a mapped address at once.
    assert.equal(await v6(`::ffff:${SERVER_ADDR}`), 'ok');
    const mapped = await cacheStatus();
    assert.equal(mapped.hits, before.hits! + 1, 'the IPv4 entry decided the mapped address');
    for (let i = 0; i < 3; i++) assert.equal(await v6(SERVER_ADDR6), 'ok', `IPv6 connection ${i + 1}`);
    assert.ok((await cacheStatus()).hits! > mapped.hits!, 'IPv6 repeats are decided in the kernel');
  });

  test('another uid is not covered by the entry of root', async () => {
    const before = await cacheStatus();
    assert.equal(await connectOnce('nobody', perlA), 'ok');
    const after = await cacheStatus();
    assert.equal(after.hits, before.hits, 'no hit for nobody');
    const items = (await itemsOf(perlA, 5)).filter((i) => i.user === 'nobody');
    assert.equal(items.length, 1, JSON.stringify(items));
    assert.ok(!items[0]!.message.includes(CACHED), items[0]!.message);
  });

  test('a replaced executable is not covered by the entry of the file it replaced', async () => {
    assert.equal(await connectOnce('root', perlA), 'ok');
    const before = await cacheStatus();
    // A package update's way: a new file renamed over the old path (a new inode and change time).
    copyFileSync('/usr/bin/perl', `${perlA}.new`);
    chmodSync(`${perlA}.new`, 0o755);
    renameSync(`${perlA}.new`, perlA);
    assert.equal(await connectOnce('root', perlA), 'ok');
    const after = await cacheStatus();
    assert.equal(after.hits, before.hits, 'the replaced file is queued and decided');
  });

  test('a program whose rules use program context is never cached', async () => {
    const before = await cacheStatus();
    for (let i = 0; i < 4; i++) assert.equal(await connectOnce('root', perlB), 'ok', `connection ${i + 1}`);
    const after = await cacheStatus();
    assert.equal(after.hits, before.hits);
    assert.equal(after.inserted, before.inserted, 'nothing inserted');
    const items = await itemsOf(perlB, 4);
    assert.equal(items.length, 4, 'queued decisions: one item each');
    assert.ok(
      items.every((i) => !i.message.includes(CACHED)),
      JSON.stringify(items),
    );
  });

  test('a hit queued after all (no liveness) is named as the process that connected, not the one that made the socket', async () => {
    // perl-a's destination is in the cache. perl-b makes and binds a socket (its bind records
    // perl-b) and hands it to a perl-a it starts (kept across exec: $^F), then closes its own copy
    // and waits: perl-a's connect is a hit, and its SYN is queued because the liveness element
    // expired. A hit stores no record and deletes the socket's earlier one, so the engine names the
    // socket's holder from /proc: perl-a, allowed. Had perl-b's record been left, the engine would
    // have named perl-b (alive, same socket), which no rule allows.
    for (let i = 0; i < 3; i++) assert.equal(await connectOnce('root', perlA), 'ok');
    const renewers = descendants(k.engine.pid!).filter((pid) => cmdline(pid).includes('warden_live'));
    assert.ok(renewers.length > 0, 'the engine renews the liveness element');
    for (const pid of renewers) process.kill(pid, 'SIGSTOP');
    try {
      const gone = Date.now() + 5000;
      while (
        /elements = /.test(k.pair.run(k.pair.client, 'nft', ['list', 'set', 'inet', 'warden', 'warden_live']))
      ) {
        assert.ok(Date.now() < gone, 'the liveness element expires');
        await new Promise((r) => setTimeout(r, 100));
      }
      const before = await cacheStatus();
      const since = (await k.logs({ kind: 'connection', application: perlA })).length;
      const ofB = (await k.logs({ kind: 'connection', application: perlB })).length;
      const out = await new Promise<string>((resolve, reject) => {
        const child = cgroup.spawn(
          'nsenter',
          [`--net=${k.pair.path(k.pair.client)}`, perlB, '-e', HANDOVER, perlA, SERVER_ADDR, String(SERVICE)],
          { stdio: ['ignore', 'pipe', 'inherit'] },
        );
        let text = '';
        child.stdout!.on('data', (d) => (text += d));
        child.once('error', reject);
        child.once('close', () => resolve(text.trim())); // 'exit' may come before the last output is read
      });
      assert.equal(out, 'ok');
      assert.ok((await cacheStatus()).hits! > before.hits!, 'the connect was a hit');
      // The queued decision's item (the hit's own item from the ring may be there too: both are logged).
      let queued: LogItem[] = [];
      for (let attempt = 0; queued.length === 0 && attempt < 50; attempt++) {
        if (attempt > 0) await new Promise((r) => setTimeout(r, 100));
        const items = (await k.logs({ kind: 'connection', application: perlA })).slice(since);
        queued = items.filter((i) => !i.message.includes(CACHED));
      }
      assert.equal(queued.length, 1, JSON.stringify(queued));
      assert.equal(queued[0]!.verdict, 'allow');
      assert.match(queued[0]!.message, /^allow by rule "perl-a to the service" \(pid \d+\)$/);
      assert.equal((await k.logs({ kind: 'connection', application: perlB })).length, ofB, 'none of perl-b');
    } finally {
      for (const pid of renewers) process.kill(pid, 'SIGCONT');
    }
    const back = Date.now() + 5000;
    while (
      !/elements = /.test(k.pair.run(k.pair.client, 'nft', ['list', 'set', 'inet', 'warden', 'warden_live']))
    ) {
      assert.ok(Date.now() < back, 'the liveness element is renewed again');
      await new Promise((r) => setTimeout(r, 100));
    }
  });

  test('a change that leaves its decision as it was keeps the entry: the next connection is a hit', async () => {
    for (let i = 0; i < 3; i++) assert.equal(await connectOnce('root', perlA), 'ok');
    const before = await cacheStatus();
    assert.equal(await connectOnce('root', perlA), 'ok');
    assert.ok((await cacheStatus()).hits! > before.hits!, 'the entry decides');
    await k.call('rules.add', {
      rule: {
        name: 'wget nowhere',
        direction: 'outgoing',
        protocol: 'tcp',
        application: '/usr/bin/wget',
        action: 'deny',
      },
    });
    const changed = await cacheStatus();
    assert.ok(changed.generation! > before.generation!, 'a new generation');
    assert.ok(changed.carried! > before.carried!, JSON.stringify(changed));
    assert.equal(await connectOnce('root', perlA), 'ok');
    const after = await cacheStatus();
    assert.equal(after.misses, changed.misses, 'not queued');
    assert.ok(after.hits! > changed.hits!, 'a hit of the entry kept');
    const items = await k.logs({ kind: 'connection', application: perlA });
    assert.match(
      items.at(-1)!.message,
      /^allow by rule "perl-a to the service", decided by the verdict cache/,
    );
  });

  test('a policy change that refuses the connection holds for the very next connection', async () => {
    for (let i = 0; i < 3; i++) assert.equal(await connectOnce('root', perlA), 'ok');
    const warm = await cacheStatus();
    assert.equal(await connectOnce('root', perlA), 'ok');
    assert.ok((await cacheStatus()).hits! > warm.hits!, 'the entry decides');
    await k.call('rules.update', {
      name: 'perl-a to the service',
      rule: {
        name: 'perl-a to the service',
        direction: 'outgoing',
        protocol: 'tcp',
        application: perlA,
        remote: [SERVER_ADDR],
        remotePorts: [SERVICE],
        action: 'reject',
      },
    });
    assert.equal(await connectOnce('root', perlA), 'refused');
    const after = await cacheStatus();
    assert.ok(after.generation! > warm.generation!, 'a new generation');
  });
});

describe('without the verdict cache', {
  skip: kernelTestsUnavailable() ?? cgroupTestsUnavailable() ?? undefined,
}, () => {
  for (const { label, bpf, settings, why } of [
    {
      label: 'with /proc attribution',
      bpf: false,
      settings: '',
      why: /^no BPF attribution: proc \(BPF off: WARDEN_BPF_CGROUP\)/,
    },
    {
      label: 'turned off by the setting',
      bpf: true,
      settings: 'enforcement:\n  verdictCache: false\n',
      why: /^off: enforcement\.verdictCache$/,
    },
  ])
    test(`${label}: engine.status says why, and the ruleset queues every connection`, async () => {
      const cgroup = createTestCgroup('vcache-off');
      if (bpf) process.env.WARDEN_BPF_CGROUP = `/${basename(cgroup.path)}`;
      let k: KernelEngine | undefined;
      try {
        k = await startKernelEngine('vcoff', PORT + 1, denyAllPolicy(PORT + 1), settings);
        const s = (await k.call('engine.status', {})) as {
          verdictCache: VerdictCacheStatus;
          attribution: string;
        };
        assert.equal(s.verdictCache.inUse, false);
        assert.match(s.verdictCache.why ?? '', why, JSON.stringify(s));
        for (const name of ['output', 'queue_output']) {
          const chain = k.pair.run(k.pair.client, 'nft', ['list', 'chain', 'inet', 'warden', name]);
          assert.doesNotMatch(chain, /0x04000000/, chain);
        }
      } finally {
        delete process.env.WARDEN_BPF_CGROUP;
        k?.close();
        await cgroup.remove();
      }
    });
});
