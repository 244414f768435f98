/**
 * Engine memory benchmark: the resident set (RSS) of a real engine (Engine.start,
 * unprivileged: no kernel backend, so the bench also compiles the policy as the
 * kernel backend would and keeps the result) with a 10,000-rule policy and a
 * logs.db of 10,000,000 items, after start and after logs.query calls, against
 * a baseline engine with the default policy and an empty store measured in the
 * same run. Each engine runs in a child process of its own (this file, with
 * `child` as first argument), so that neither inherits the other's memory.
 * Target (issues 5 and 12): under 200 MB, after start and at the peak while starting (VmHWM).
 * Run: npm run bench:engine-memory   (BENCH_RULES=10000 BENCH_ITEMS=10000000)
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Engine, installedExecutables } from '../src/engine/daemon.js';
import { compilePolicy, internalRules } from '../src/policy/index.js';
import { logQuerySchema } from '../src/protocol/log-item.js';
import { makeLogStore, T0 } from './log-fixture.js';
import { formatRatio, reportMeasure } from './report.js';

const MB = 2 ** 20;
const fmt = (n: number, d = 0) =>
  n.toLocaleString('en-US', { maximumFractionDigits: d, minimumFractionDigits: d });

interface Figures {
  rules: number;
  items: number;
  startMs: number;
  rssStart: number;
  rssQueries: number;
  heapQueries: number;
  /** The highest RSS of the process (VmHWM: per address space, so not the parent's before exec), garbage included. */
  peak: number;
  /** VmHWM once started (policy parsed and compiled), before the queries. */
  peakStart: number;
}

/** The highest RSS of this process so far (VmHWM). */
function highWater(): number {
  return Number(/VmHWM:\s+(\d+) kB/.exec(readFileSync('/proc/self/status', 'utf8'))?.[1] ?? 0) * 1024;
}

/** A policy of `n` simple rules (as bench/ruleset.bench.ts makes them), in YAML. */
function policyText(n: number): string {
  const lines = ['version: 1', 'rules:'];
  for (let i = 0; i < n; i++) {
    lines.push(
      `  - { name: r${i}, direction: outgoing, protocol: tcp, remote: 10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}, remotePorts: ${1000 + (i % 1000)}, action: ${Math.floor(i / 1000) % 2 === 0 ? 'deny' : 'allow'} }`,
    );
  }
  return `${n === 0 ? 'version: 1\n' : lines.join('\n')}\n`;
}

/** In the child: start the engine on `dir`, measure, stop, print the figures as JSON. */
async function child(dir: string): Promise<void> {
  const collect = (globalThis as { gc?: () => void }).gc ?? (() => {});
  /** Full collections with a pause between, so that V8 gives freed pages back before RSS is read. */
  const gc = async () => {
    collect();
    await new Promise((resolve) => setTimeout(resolve, 200));
    collect();
  };
  const t0 = performance.now();
  const phases: Record<string, number> = { node: process.memoryUsage().rss };
  const engine = await Engine.start({
    configDir: join(dir, 'etc'),
    stateDir: join(dir, 'state'),
    port: 0,
    bindAddress: '127.0.0.1',
    retention: { maxAgeDays: 100_000 }, // the fixture's items are from 2026-01-01
  });
  await gc();
  phases.engine = process.memoryUsage().rss;
  const settings = engine.config.settings();
  const host = { executables: await installedExecutables(), environment: {}, etcEnvironment: '' };
  const compiled = compilePolicy(engine.config.policy(), {
    settings,
    internalRules: internalRules(settings, host, engine.config.policy()),
  });
  const startMs = performance.now() - t0;
  const peakStart = highWater();
  await gc();
  const rssStart = process.memoryUsage().rss;
  const queries = [
    { limit: 10_000 },
    { text: 'host4999.example', limit: 10_000 },
    { address: '93.184.7.9' },
    { verdict: 'deny', application: '/usr/bin/app8', since: new Date(T0 + 5_000_000).toISOString() },
    { fromSeq: Math.max(1, engine.logs.lastSeq - 100_000), limit: 10_000 },
    { text: 'connection 4242', limit: 1000 },
    { application: '/usr/bin/app7', text: 'rule-7 ', limit: 1000 },
  ];
  let seen = 0;
  for (let round = 0; round < 3; round++)
    for (const q of queries) seen += engine.logs.query(logQuerySchema.parse(q)).items.length;
  await gc();
  const usage = process.memoryUsage();
  const figures: Figures = {
    rules: compiled.rules.length,
    items: engine.logs.lastSeq,
    startMs,
    rssStart,
    rssQueries: usage.rss,
    heapQueries: usage.heapUsed,
    peak: highWater(),
    peakStart,
  };
  if (process.env.BENCH_PHASES) process.stderr.write(`${JSON.stringify(phases)}\n`);
  await engine.stop();
  process.stdout.write(`${JSON.stringify({ ...figures, seen })}\n`);
}

function measure(dir: string): Figures {
  const out = execFileSync(process.execPath, ['--expose-gc', fileURLToPath(import.meta.url), 'child', dir], {
    encoding: 'utf8',
  });
  return JSON.parse(out.trim().split('\n').at(-1)!) as Figures;
}

if (process.argv[2] === 'child') {
  await child(process.argv[3]!);
} else {
  const rules = Number(process.env.BENCH_RULES ?? 10_000);
  const items = Number(process.env.BENCH_ITEMS ?? 10_000_000);
  const root = mkdtempSync(join(tmpdir(), 'warden-bench-memory-'));
  try {
    const setup = (name: string, n: number) => {
      const dir = join(root, name);
      mkdirSync(join(dir, 'etc'), { recursive: true });
      mkdirSync(join(dir, 'state'), { recursive: true, mode: 0o700 });
      writeFileSync(join(dir, 'etc', 'policy.yaml'), policyText(n));
      return dir;
    };
    const empty = setup('empty', 0);
    const loaded = setup('loaded', rules);
    const t0 = performance.now();
    await makeLogStore(join(loaded, 'state', 'logs.db'), items);
    console.log(`made a logs.db of ${fmt(items)} items in ${fmt((performance.now() - t0) / 1000, 1)} s`);
    const base = measure(empty);
    const big = measure(loaded);
    const row = (label: string, f: Figures) =>
      console.log(
        `${label.padEnd(44)} start ${fmt(f.startMs).padStart(6)} ms   RSS after start ${fmt(f.rssStart / MB, 1).padStart(6)} MB   after queries ${fmt(f.rssQueries / MB, 1).padStart(6)} MB (JS heap ${fmt(f.heapQueries / MB, 1)} MB)   peak ${fmt(f.peakStart / MB, 1)} MB while starting, ${fmt(f.peak / MB, 1)} MB in all`,
      );
    row(`baseline: default policy, empty store`, base);
    row(`${fmt(big.rules)} compiled rules, ${fmt(big.items)} items`, big);
    const steady = Math.max(big.rssStart, big.rssQueries);
    console.log(
      `difference (after queries):                  ${fmt((big.rssQueries - base.rssQueries) / MB, 1)} MB`,
    );
    console.log(
      `ratio to baseline:                           ${fmt(big.rssQueries / base.rssQueries, 2)}x; target under 200 MB: ${steady < 200 * MB ? 'met' : 'MISSED'} (${fmt(steady / MB, 1)} MB after start and after queries; peak while starting ${fmt(big.peakStart / MB, 1)} MB, with the queries ${fmt(big.peak / MB, 1)} MB)`,
    );
    reportMeasure({
      measure: `engine RSS with ${fmt(big.rules)} rules and ${fmt(big.items)} log items`,
      goal: '< 200 MB',
      measured: `${fmt(steady / MB, 1)} MB`,
      baseline: `${fmt(Math.max(base.rssStart, base.rssQueries) / MB, 1)} MB (default policy, empty store)`,
      ratio: formatRatio(steady, Math.max(base.rssStart, base.rssQueries)),
      met: steady < 200 * MB,
    });
    reportMeasure({
      measure: `engine start-up peak RSS (VmHWM) with ${fmt(big.rules)} rules and ${fmt(big.items)} log items`,
      goal: '< 200 MB',
      measured: `${fmt(big.peakStart / MB, 1)} MB`,
      baseline: `${fmt(base.peakStart / MB, 1)} MB (default policy, empty store)`,
      ratio: formatRatio(big.peakStart, base.peakStart),
      met: big.peakStart < 200 * MB,
    });
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
}
