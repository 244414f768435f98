/**
 * Attacks on the connect-time slots (docs/attribution.md, "Connect-time slots"), performed for real
 * against `wardend run` enforcing in a namespace pair with its BPF programs on a cgroup of the
 * test's own. The policy allows one program (a copy of perl, "trusted") to one port. Another
 * program (/usr/bin/perl, as root or as nobody) reuses the four-tuple of a connection the trusted program just made and closed (same
 * local port, same destination), from outside the cgroup (the programs never see its connect, so
 * the slot still held the trusted program's record unless its close emptied it) and from inside it:
 * the engine must judge the attacker's own program, and refuse it.
 * On the code before the slots this holds by sock_diag alone; it fails when the slot of a closed
 * connection is not emptied (checked by disabling that part of native/bpf_tuple.c).
 */
import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { cgroupTestsUnavailable, createTestCgroup, type TestCgroup } from '../kernel/cgroup.js';
import { kernelTestsUnavailable, listenOn, SERVER_ADDR } from '../kernel/netns.js';
import { perlScriptDir } from '../kernel/verdict-cache-client.js';
import { denyAllPolicy } from '../kernel/wardend.js';
import { type KernelEngine, startKernelEngine } from './kernel-engine.js';

const PORT = 44371;
const ALLOWED = 9041;
const LOCAL_PORTS = [47311, 47312, 47313];

/** Connects from local port ARGV[2] to ARGV[0]:ARGV[1] (SO_REUSEADDR), reads to the end; prints "ok" or "refused ERRNO". */
const CONNECT_FROM = `use Socket;
my ($host, $port, $local) = @ARGV;
socket(my $s, PF_INET, SOCK_STREAM, 6) or die "socket: $!";
setsockopt($s, SOL_SOCKET, SO_REUSEADDR, 1) or die "reuseaddr: $!";
bind($s, pack_sockaddr_in($local, INADDR_ANY)) or do { print "bind " . ($! + 0) . "\\n"; exit 0 };
my $ok = eval { local $SIG{ALRM} = sub { die "timeout\\n" }; alarm 2;
  my $r = connect($s, pack_sockaddr_in($port, inet_aton($host))); alarm 0; $r };
if ($ok) { my $b; while (sysread($s, $b, 100)) {} print "ok\\n" } else { print "refused " . ($! + 0) . "\\n" }
close $s;
`;

describe('attacks on the connect-time slots', {
  skip: kernelTestsUnavailable() ?? cgroupTestsUnavailable() ?? undefined,
}, () => {
  let k: KernelEngine;
  let cgroup: TestCgroup;
  let dir: string;
  let trusted: string;

  before(async () => {
    dir = perlScriptDir('warden-slots-attack-', { 'connect-from.pl': CONNECT_FROM });
    trusted = join(dir, 'perl');
    cgroup = createTestCgroup('slots-attack');
    const rules = `  - name: the trusted program to its port
    direction: outgoing
    protocol: tcp
    application: ${trusted}
    remote: ${SERVER_ADDR}
    remotePorts: ${ALLOWED}
    action: allow
    log: true
`;
    k = await startKernelEngine('slotatk', PORT, denyAllPolicy(PORT, rules), '', cgroup);
    // The server closes first: the client's end of each connection closes for good (no TIME_WAIT),
    // so its local port can be bound again at once for the same destination.
    await listenOn(k.pair, k.pair.server, [ALLOWED]);
  });

  after(async () => {
    k?.close();
    await cgroup?.remove();
    rmSync(dir, { recursive: true, force: true });
  });

  /** Runs perl (the trusted copy or /usr/bin/perl) as `user`, in the test cgroup or not; its output. */
  function run(program: string, user: 'root' | 'nobody', inCgroup: boolean, local: number): Promise<string> {
    const args = [join(dir, 'connect-from.pl'), SERVER_ADDR, String(ALLOWED), String(local)];
    let child: ChildProcess;
    if (inCgroup) {
      const asUser = user === 'nobody' ? ['--reuid=65534', '--regid=65534', '--clear-groups'] : [];
      child = cgroup.spawn(
        'nsenter',
        [`--net=${k.pair.path(k.pair.client)}`, 'setpriv', ...asUser, program, ...args],
        {
          stdio: ['ignore', 'pipe', 'inherit'],
        },
      );
    } else {
      child = k.spawnAs(user, program, args);
    }
    let out = '';
    child.stdout!.on('data', (d) => (out += d));
    return new Promise((resolve, reject) => {
      child.once('error', reject);
      child.once('close', () => resolve(out.trim())); // 'exit' may come before the last output is read
    });
  }

  async function lookups(): Promise<{ fromSlots: number; bySockDiag: number }> {
    const status = (await k.call('engine.status', {})) as {
      attributionLookups?: { fromSlots: number; bySockDiag: number };
    };
    assert.ok(status.attributionLookups, 'engine.status says which way sockets were found');
    return status.attributionLookups;
  }

  // Another uid is also caught by the engine's check of the socket's uid against the packet's, so
  // root running another program is the attack the emptied slot alone stops.
  const attacks = [
    { user: 'root', inCgroup: false },
    { user: 'nobody', inCgroup: false },
    { user: 'nobody', inCgroup: true },
  ] as const;
  for (const [i, { user, inCgroup }] of attacks.entries()) {
    test(`${user} reusing the trusted program's closed four-tuple ${inCgroup ? 'inside' : 'outside'} the cgroup is judged as its own program`, async () => {
      const local = LOCAL_PORTS[i]!;
      const before = await lookups();
      assert.equal(await run(trusted, 'root', true, local), 'ok', 'the trusted program is allowed');
      // Its first connection is queued and read from its slot; later ones the verdict cache may decide.
      if (i === 0) {
        const now = await lookups();
        assert.ok(now.fromSlots > before.fromSlots, `read from its slot: ${JSON.stringify(now)}`);
      }
      const seen = (await k.logs({ kind: 'connection' })).length;
      const attack = await run('/usr/bin/perl', user, inCgroup, local);
      assert.match(attack, /^refused/, 'the attacker is refused');
      const items = (await k.logs({ kind: 'connection' })).slice(seen);
      const attacker = items.filter((x) => x.local === `10.200.0.1:${local}`);
      assert.ok(
        attacker.length > 0,
        `the engine decided the attacker's connection: ${JSON.stringify(items)}`,
      );
      for (const item of attacker) {
        assert.equal(item.application, '/usr/bin/perl', `named as its own program: ${JSON.stringify(item)}`);
        assert.equal(item.user, user);
        assert.notEqual(item.verdict, 'allow');
      }
      // The four-tuple can be reused: the trusted program connects from it again, allowed.
      assert.equal(await run(trusted, 'root', true, local), 'ok');
    });
  }
});
