/**
 * The cost of sha256-pinned rules (issue 14 item 1) through the real Enforcer and ExeHasher, on real
 * running processes (copies of sleep padded to 1 MB and 50 MB, run from a temporary directory):
 * - a first connection of a file version not hashed yet (a fresh hasher each time, so the version is
 *   hashed again; the page cache is warm, as it is for a program that runs);
 * - a later connection of the same version (cached: a stat and a readlink of /proc/PID/exe);
 * - an unpinned connection while a 50 MB file is being hashed (the hash runs on its own thread);
 * each against the same-run baseline: the decision of a connection no pinned rule names.
 *
 * Run: npm run bench:rule-pin (BENCH_QUICK=1: fewer rounds).
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { copyFileSync, mkdtempSync, readFileSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AskDesk } from '../src/engine/asks.js';
import { Enforcer, type ProcessInfo } from '../src/engine/enforcer.js';
import { ExeHasher } from '../src/engine/exe-hash.js';
import { compilePolicy, parsePolicyText } from '../src/policy/index.js';
import { formatRatio, reportMeasure } from './report.js';

const quick = process.env.BENCH_QUICK === '1';
const ROUNDS = quick ? 5 : 20;
const CACHED = quick ? 2000 : 20000;

const dir = mkdtempSync(join(tmpdir(), 'warden-pin-bench-'));
const children: ChildProcess[] = [];

/** A copy of sleep padded with trailing bytes to `bytes` (it still runs), started; its pid and hash. */
async function program(name: string, bytes: number): Promise<{ path: string; pid: number; sha: string }> {
  const path = join(dir, name);
  copyFileSync('/bin/sleep', path);
  const body = readFileSync(path);
  const padded = Buffer.concat([body, Buffer.alloc(Math.max(0, bytes - body.length), 0x5a)]);
  writeFileSync(path, padded, { mode: 0o755 });
  const child = spawn(path, ['600'], { stdio: 'ignore' });
  children.push(child);
  await new Promise<void>((resolve, reject) => {
    child.once('spawn', () => resolve());
    child.once('error', reject);
  });
  return { path, pid: child.pid!, sha: createHash('sha256').update(padded).digest('hex') };
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

const us = (ms: number) => `${(ms * 1000).toFixed(1)} µs`;

async function main(): Promise<void> {
  const small = await program('app-1mb', 1024 * 1024);
  const large = await program('app-50mb', 50 * 1024 * 1024);
  const policy = compilePolicy(
    parsePolicyText(`
defaults: { incoming: { action: deny }, outgoing: { action: deny } }
rules:
  - { name: small, direction: outgoing, application: ${small.path}, sha256: ${small.sha}, action: allow }
  - { name: large, direction: outgoing, application: ${large.path}, sha256: ${large.sha}, action: allow }
  - { name: web, direction: outgoing, protocol: tcp, remotePorts: 443, application: /usr/bin/curl, action: allow }
`),
  );
  const processes: Record<number, ProcessInfo> = {
    1: { pid: small.pid, executable: small.path, uid: 0 },
    2: { pid: large.pid, executable: large.path, uid: 0 },
    3: { pid: process.pid, executable: '/usr/bin/curl', uid: 0 },
  };
  const hasher = new ExeHasher();
  const enforcer = new Enforcer({
    policy: () => policy,
    identify: async (t) => processes[t.sourcePort ?? 0] ?? null,
    hostsOf: () => [],
    asks: new AskDesk({ timeoutMs: () => 50, consoles: () => 0, notify: () => {} }),
    log: () => {},
    executables: { engine: '/x/e', console: '/x/c', assistant: '/x/a' },
    pins: { ofProcess: (pid, path) => hasher.ofProcess(pid, path) },
    pinDeadlineMs: 30_000,
  });
  const tuple = (port: number) =>
    ({
      protocol: 'tcp',
      source: '10.0.0.1',
      destination: '10.0.0.2',
      sourcePort: port,
      destinationPort: 443,
    }) as const;
  const judge = async (port: number, expect: string): Promise<number> => {
    const t0 = performance.now();
    const j = await enforcer.judge(tuple(port), 'outgoing');
    const ms = performance.now() - t0;
    if (j.decision.ruleName !== expect)
      throw new Error(`port ${port}: ${j.decision.ruleName}, not ${expect}`);
    return ms;
  };

  // Baseline: a connection of a program no pinned rule names (never hashed).
  for (let i = 0; i < 2000; i++) await judge(3, 'web');
  const base: number[] = [];
  for (let i = 0; i < CACHED; i++) base.push(await judge(3, 'web'));
  const baseline = median(base);
  console.log(`unpinned decision (baseline): median ${us(baseline)}`);

  for (const [port, name, label] of [
    [1, 'small', '1 MB'],
    [2, 'large', '50 MB'],
  ] as const) {
    const first: number[] = [];
    const path = port === 1 ? small.path : large.path;
    for (let i = 0; i <= ROUNDS; i++) {
      // A new mtime is a new file version (same inode, the running process's file): hashed again.
      utimesSync(path, new Date(), new Date(Date.now() + (i + 1) * 1000));
      first.push(await judge(port, name));
    }
    const cold = median(first.slice(1)); // the very first also starts the hash thread
    console.log(
      `first connection, ${label}: median ${cold.toFixed(2)} ms (the first one, starting the hash thread: ${first[0]!.toFixed(2)} ms)`,
    );
    reportMeasure({
      measure: `pin: first connection of a ${label} binary (hash)`,
      goal: '',
      measured: `${cold.toFixed(2)} ms`,
      baseline: `${us(baseline)} (unpinned)`,
      ratio: formatRatio(cold, baseline),
      met: null,
    });
  }

  const cached: number[] = [];
  for (let i = 0; i < CACHED; i++) cached.push(await judge(2, 'large'));
  if (hasher.hashed !== 2 * (ROUNDS + 1))
    throw new Error(`hashed ${hasher.hashed} times, not once per version`);
  const warm = median(cached);
  console.log(`later connection (cached hash): median ${us(warm)}`);
  reportMeasure({
    measure: 'pin: later connection (hash cached)',
    goal: 'no hashing: stat + readlink of /proc/PID/exe only',
    measured: us(warm),
    baseline: `${us(baseline)} (unpinned)`,
    ratio: formatRatio(warm, baseline),
    met: warm < 1, // well under a millisecond: no file read
  });

  // Other connections do not wait while a 50 MB file is hashed.
  utimesSync(large.path, new Date(), new Date(Date.now() + 3_600_000));
  const during: number[] = [];
  let hashing = true;
  const cold = judge(2, 'large').finally(() => {
    hashing = false;
  });
  while (hashing) {
    during.push(await judge(3, 'web'));
    await new Promise(setImmediate); // as real attribution does I/O: the event loop turns between decisions
  }
  const hashMs = await cold;
  const busy = median(during);
  console.log(
    `unpinned decisions while a 50 MB file is hashed (${hashMs.toFixed(1)} ms): ${during.length}, median ${us(busy)}`,
  );
  reportMeasure({
    measure: 'pin: unpinned decision during a 50 MB hash',
    goal: '<= 2x the unpinned decision (hashing is off the event loop)',
    measured: us(busy),
    baseline: `${us(baseline)} (unpinned, idle)`,
    ratio: formatRatio(busy, baseline),
    met: busy <= 2 * baseline,
  });
  await hasher.close();
}

try {
  await main();
} finally {
  for (const c of children) c.kill('SIGKILL');
  rmSync(dir, { recursive: true, force: true });
}
