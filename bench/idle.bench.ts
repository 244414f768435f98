/**
 * An idle engine (root): how often wardend wakes, and the CPU it uses, while nothing connects.
 * The engine as shipped (BPF attribution with the verdict cache, its programs on a cgroup this
 * bench makes) against the same engine on the /proc path (no BPF, no cache), one after the other in
 * the same run, each in a namespace of its own with the shipped settings and a deny-all policy,
 * measured over IDLE_SECONDS after SETTLE_SECONDS. Wake-ups are the context switches of all its
 * threads; CPU is their time on a CPU (schedstat, ns). The verdict cache's ring is watched rather
 * than read on a timer (src/engine/hit-drain.ts), so the difference is what else wakes it (the
 * cache's liveness renewer: docs/attribution.md).
 * Run: npm run bench:idle   (BENCH_QUICK=1: 3 s instead of 10)
 */
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { cgroupTestsUnavailable, createTestCgroup } from '../test/kernel/cgroup.js';
import { createNetnsPair, kernelTestsUnavailable } from '../test/kernel/netns.js';
import { denyAllPolicy, startWardend } from '../test/kernel/wardend.js';
import { formatRatio, reportMeasure } from './report.js';

const SETTLE_SECONDS = 5;
const IDLE_SECONDS = process.env.BENCH_QUICK === '1' ? 3 : 10;
const PORT = 7443;

interface Idle {
  wakeUps: number;
  cpuMs: number;
  kernel: string;
}

/** Context switches and ns on a CPU of every thread of `pid` now. */
function threads(pid: number): { switches: number; ns: number } {
  let switches = 0;
  let ns = 0;
  for (const t of readdirSync(`/proc/${pid}/task`)) {
    const status = readFileSync(`/proc/${pid}/task/${t}/status`, 'utf8');
    for (const m of status.matchAll(/^(?:non)?voluntary_ctxt_switches:\s+(\d+)$/gm)) switches += Number(m[1]);
    ns += Number(readFileSync(`/proc/${pid}/task/${t}/schedstat`, 'utf8').split(' ')[0]);
  }
  return { switches, ns };
}

/** Starts an engine (BPF on `cgroup`, or the /proc path without one), lets it settle, measures it idle. */
async function idleEngine(cgroup: string | undefined): Promise<Idle> {
  const pair = createNetnsPair('idle');
  const dir = mkdtempSync(join(tmpdir(), 'warden-bench-idle-'));
  const before = process.env.WARDEN_BPF_CGROUP;
  try {
    mkdirSync(join(dir, 'etc'));
    writeFileSync(join(dir, 'etc/policy.yaml'), denyAllPolicy(PORT));
    // The namespace's spawn gives the engine WARDEN_BPF_CGROUP=off unless this process has one.
    if (cgroup !== undefined) process.env.WARDEN_BPF_CGROUP = cgroup;
    const engine = await startWardend(pair, pair.client, dir, PORT);
    if (before === undefined) delete process.env.WARDEN_BPF_CGROUP;
    else process.env.WARDEN_BPF_CGROUP = before;
    const started = /"kernel":"([^"]*)"/.exec(engine.output())?.[1] ?? '';
    await new Promise((r) => setTimeout(r, SETTLE_SECONDS * 1000));
    const a = threads(engine.pid!);
    await new Promise((r) => setTimeout(r, IDLE_SECONDS * 1000));
    const b = threads(engine.pid!);
    return {
      wakeUps: (b.switches - a.switches) / IDLE_SECONDS,
      cpuMs: (b.ns - a.ns) / 1e6 / IDLE_SECONDS,
      kernel: started.replace(/.*; attribution /, 'attribution '),
    };
  } finally {
    pair.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

const unavailable = kernelTestsUnavailable() ?? cgroupTestsUnavailable();
if (unavailable) {
  console.log(`idle benchmark skipped: ${unavailable}`);
  process.exit(0);
}
const cgroup = createTestCgroup('bench-idle');
let shipped: Idle;
let proc: Idle;
try {
  // WARDEN_BPF_CGROUP is a path under the cgroup2 mount.
  shipped = await idleEngine(`/${cgroup.path.split('/').pop()}`);
  proc = await idleEngine(undefined);
} finally {
  await cgroup.remove();
}
const fmt = (n: number) => n.toFixed(2);
console.log(`idle engine, ${IDLE_SECONDS} s after ${SETTLE_SECONDS} s of settling:`);
console.log(
  `  as shipped (${shipped.kernel}): ${fmt(shipped.wakeUps)} wake-ups/s, ${fmt(shipped.cpuMs)} ms CPU/s`,
);
console.log(`  /proc path (${proc.kernel}): ${fmt(proc.wakeUps)} wake-ups/s, ${fmt(proc.cpuMs)} ms CPU/s`);
reportMeasure({
  measure: 'idle engine (BPF attribution + verdict cache): wake-ups per second',
  goal: '',
  measured: `${fmt(shipped.wakeUps)}/s (${fmt(shipped.cpuMs)} ms CPU/s)`,
  baseline: `${fmt(proc.wakeUps)}/s, ${fmt(proc.cpuMs)} ms CPU/s (the /proc path)`,
  ratio: formatRatio(shipped.wakeUps, proc.wakeUps),
  met: null,
});
