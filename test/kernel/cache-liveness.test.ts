/**
 * The verdict cache's liveness renewer (src/engine/cache-live.ts, docs/attribution.md "Verdict
 * cache") with real processes: `wardend run` enforcing in a namespace pair with its BPF programs on
 * a cgroup of the test's own. The renewer's processes are killed by pid, as a crash or an OOM kill
 * would: the engine logs it once, starts it again, engine.status shows it, and the cache's
 * connections are decided in the kernel again (proved with the engine stopped by SIGSTOP: a queued
 * connection would wait for it and time out). A renewer that renews nothing (its nft stopped) is
 * ended and started again. A refused renewal (the table gone) is logged once, shown, and over once
 * an apply loads the table again.
 */
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { STALL_MS } from '../../src/engine/cache-live.js';
import type { VerdictCacheLiveness } from '../../src/protocol/methods.js';
import { type KernelEngine, startKernelEngine } from '../adversarial/kernel-engine.js';
import { cgroupTestsUnavailable, createTestCgroup, type TestCgroup } from './cgroup.js';
import { kernelTestsUnavailable, listenOn, SERVER_ADDR } from './netns.js';
import { PERL_CLIENT, perlScriptDir, type VerdictCacheStatus } from './verdict-cache-client.js';
import { denyAllPolicy } from './wardend.js';

const PORT = 44365;
const SERVICE = 9051;
const ENDED = "the verdict cache's liveness renewer ended";
const REFUSED = "renewing the verdict cache's liveness failed";

interface Proc {
  pid: number;
  ppid: number;
  session: number;
  comm: string;
}

/** Every process now (pid, parent, session, name), from /proc. */
function processes(): Proc[] {
  const out: Proc[] = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const stat = readFileSync(`/proc/${name}/stat`, 'utf8');
      const close = stat.lastIndexOf(')');
      const fields = stat.slice(close + 2).split(' ');
      out.push({
        pid: Number(name),
        comm: stat.slice(stat.indexOf('(') + 1, close),
        ppid: Number(fields[1]),
        session: Number(fields[3]),
      });
    } catch {
      // Ended while listed.
    }
  }
  return out;
}

/** The engine's renewer: its bash child, the loop and nft. */
function renewerOf(enginePid: number): { leader: number; nft: number; members: number[] } | null {
  const all = processes();
  const leader = all.find((p) => p.ppid === enginePid && p.comm === 'bash');
  if (leader === undefined) return null;
  // Its descendants, and its session (the engine starts it in one of its own).
  const members = all.filter((p) => p.session === leader.pid || p.pid === leader.pid);
  for (let grown = true; grown; ) {
    const more = all.filter((p) => !members.includes(p) && members.some((m) => m.pid === p.ppid));
    members.push(...more);
    grown = more.length > 0;
  }
  const nft = members.find((p) => p.comm === 'nft');
  return nft === undefined ? null : { leader: leader.pid, nft: nft.pid, members: members.map((p) => p.pid) };
}

/** A process that runs (a zombie, ended and not yet reaped, does not). */
function alive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    return false;
  }
}

function count(text: string, part: string): number {
  return text.split(part).length - 1;
}

describe("the verdict cache's liveness renewer", {
  skip: kernelTestsUnavailable() ?? cgroupTestsUnavailable() ?? undefined,
}, () => {
  let k: KernelEngine;
  let cgroup: TestCgroup;
  let dir: string;
  let perl: string;

  before(async () => {
    dir = perlScriptDir('warden-live-', { 'client.pl': PERL_CLIENT });
    perl = join(dir, 'perl');
    cgroup = createTestCgroup('live');
    k = await startKernelEngine(
      'live',
      PORT,
      denyAllPolicy(
        PORT,
        `  - name: perl to the service
    direction: outgoing
    protocol: tcp
    application: ${perl}
    remote: ${SERVER_ADDR}
    remotePorts: ${SERVICE}
    action: allow
`,
      ),
      '',
      cgroup,
    );
    await listenOn(k.pair, k.pair.server, [SERVICE]);
  });

  after(async () => {
    if (k?.engine.pid !== undefined && k.engine.exitCode === null) process.kill(k.engine.pid, 'SIGCONT');
    k?.close();
    await cgroup?.remove();
    rmSync(dir, { recursive: true, force: true });
  });

  function connectOnce(): Promise<string> {
    const child = cgroup.spawn(
      'nsenter',
      [`--net=${k.pair.path(k.pair.client)}`, perl, join(dir, 'client.pl'), SERVER_ADDR, String(SERVICE)],
      { stdio: ['ignore', 'pipe', 'inherit'] },
    );
    let out = '';
    child.stdout!.on('data', (d) => (out += d));
    return new Promise((resolve, reject) => {
      child.once('error', reject);
      child.once('close', () => resolve(out.trim())); // 'exit' may come before the last output is read
    });
  }

  async function cacheStatus(): Promise<VerdictCacheStatus & { liveness?: VerdictCacheLiveness }> {
    return ((await k.call('engine.status', {})) as { verdictCache: VerdictCacheStatus }).verdictCache;
  }

  async function waitFor(what: string, ok: (l: VerdictCacheLiveness) => boolean, ms = 15_000) {
    const until = Date.now() + ms;
    for (;;) {
      const l = (await cacheStatus()).liveness;
      if (l !== undefined && ok(l)) return l;
      if (Date.now() > until) assert.fail(`${what}: ${JSON.stringify(l)}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  /** With the engine stopped, a connection the cache decides connects (a queued one would time out). */
  async function decidedInKernel(): Promise<void> {
    const before = (await cacheStatus()).hits!;
    for (let i = 0; i < 6; i++) {
      assert.equal(await connectOnce(), 'ok');
      if ((await cacheStatus()).hits! > before) break;
    }
    const pid = k.engine.pid!;
    process.kill(pid, 'SIGSTOP');
    try {
      assert.equal(await connectOnce(), 'ok', 'decided in the kernel while the engine is stopped');
    } finally {
      process.kill(pid, 'SIGCONT');
    }
  }

  function liveElement(): string {
    return k.pair.run(k.pair.client, 'nft', ['list', 'set', 'inet', 'warden', 'warden_live']);
  }

  test('a renewer killed by pid is logged once and started again, and the cache decides in the kernel again', async () => {
    const first = await waitFor('renewing at start', (l) => l.state === 'renewing' && l.live);
    assert.equal(first.restarts, 0);
    await decidedInKernel();
    const old = renewerOf(k.engine.pid!);
    assert.ok(old, 'the engine has a renewer (bash and nft)');

    // The process doing the renewals: the loop ends on its broken pipe, then bash.
    const killed = Date.now();
    process.kill(old.nft, 'SIGKILL');
    const restarted = await waitFor('restarted', (l) => l.restarts >= 1 && l.state === 'renewing' && l.live);
    console.log(`renewing again ${Date.now() - killed} ms after the kill (status polled every 100 ms)`);
    assert.match(restarted.lastError ?? '', /the renewer ended/);
    assert.match(liveElement(), /elements = \{ tcp expires /);
    const now = renewerOf(k.engine.pid!);
    assert.ok(now && now.leader !== old.leader, 'a new renewer');
    for (const pid of old.members) assert.equal(alive(pid), false, `process ${pid} of the old renewer ended`);
    await decidedInKernel();

    // The group's leader: the loop and nft would live on and renew without it; they are ended too.
    process.kill(now.leader, 'SIGKILL');
    await waitFor('restarted again', (l) => l.restarts >= 2 && l.state === 'renewing' && l.live);
    for (const pid of now.members)
      assert.equal(alive(pid), false, `process ${pid} of the killed renewer ended`);
    assert.match(liveElement(), /elements = \{ tcp expires /);
    await decidedInKernel();
    // One line per episode: two kills, two lines.
    assert.equal(count(k.engine.output(), ENDED), 2, k.engine.output());
  });

  test('an engine stopped for longer than a stall keeps its renewer: the renewals that waited in the pipe count', async () => {
    const before = await waitFor('renewing', (l) => l.state === 'renewing' && l.live);
    const r = renewerOf(k.engine.pid!);
    assert.ok(r, 'the engine has a renewer');
    const stalls = count(k.engine.output(), 'ending and starting it again');
    const pid = k.engine.pid!;
    process.kill(pid, 'SIGSTOP');
    try {
      await new Promise((resolve) => setTimeout(resolve, STALL_MS + 1500));
    } finally {
      process.kill(pid, 'SIGCONT');
    }
    // The stall check comes due at once, late; the lines the renewer wrote meanwhile are read first.
    await new Promise((resolve) => setTimeout(resolve, 2500));
    const after = await waitFor('renewing', (l) => l.state === 'renewing' && l.live);
    assert.equal(after.restarts, before.restarts, JSON.stringify(after));
    assert.ok(after.renewals > before.renewals, JSON.stringify(after));
    for (const member of r.members) assert.ok(alive(member), `process ${member} of the renewer still runs`);
    assert.equal(count(k.engine.output(), 'ending and starting it again'), stalls, k.engine.output());
  });

  test('a renewer that renews nothing (its nft stopped) is ended and started again', async () => {
    const before = await waitFor('renewing', (l) => l.state === 'renewing' && l.live);
    const r = renewerOf(k.engine.pid!);
    assert.ok(r, 'the engine has a renewer');
    process.kill(r.nft, 'SIGSTOP');
    await waitFor('failing', (l) => l.state === 'failing' && !l.live);
    const back = await waitFor(
      'restarted',
      (l) => l.restarts > before.restarts && l.state === 'renewing' && l.live,
      STALL_MS + 10_000,
    );
    assert.match(back.lastError ?? '', /renewed nothing for 10 s/);
    for (const pid of r.members)
      assert.equal(alive(pid), false, `process ${pid} of the stalled renewer ended`);
    assert.equal(count(k.engine.output(), 'ending and starting it again'), 1, k.engine.output());
    await decidedInKernel();
  });

  test('a renewal nft refuses is logged once per episode and shown, and renewing resumes after an apply', async () => {
    const before = await waitFor('renewing', (l) => l.state === 'renewing');
    // The table gone (as another tool flushing the ruleset would do): every renewal is refused.
    k.pair.run(k.pair.client, 'nft', ['delete', 'table', 'inet', 'warden']);
    const failing = await waitFor('failing', (l) => l.state === 'failing' && !l.live);
    assert.ok(failing.failures >= before.failures + 3, JSON.stringify(failing));
    assert.match(failing.lastError ?? '', /nft refused a renewal: /);
    assert.equal(failing.restarts, before.restarts, 'the renewer itself lives on');
    assert.equal(count(k.engine.output(), REFUSED), 1, k.engine.output());
    // An apply loads the table again (a rule added), and the renewals are taken again.
    await k.call('rules.add', {
      rule: { name: 'another', direction: 'outgoing', protocol: 'tcp', remotePorts: '9999', action: 'deny' },
    });
    await waitFor('renewing again', (l) => l.state === 'renewing' && l.live);
    assert.match(k.engine.output(), /the verdict cache's liveness is renewed again/);
    await decidedInKernel();
  });
});
