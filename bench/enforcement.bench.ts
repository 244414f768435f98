/**
 * The whole engine on the packet path (needs root; runs in a throwaway namespace pair): TCP
 * connections per second and connect latency from the client namespace with no ruleset (baseline),
 * then with `wardend run` enforcing the shipped defaults there, so that every new outgoing
 * connection is queued, attributed to its program, decided, logged and accepted. Prints both, the
 * ratio and the latency the engine adds, and the decisions per second under a flood (many lanes).
 *
 * One setting differs from the shipped defaults: `enforcement.floodOutgoingPerUid: 0`. The flood
 * guard deliberately holds each uid to 100 new connections a second that wait for the engine; every
 * lane here runs as root, so with the guard the bench would measure that cap, not the decision path.
 *
 * Run: npm run bench:enforcement (BENCH_SECONDS=1 for a quick run; WARDEN_BENCH_PROF=DIR writes a
 * CPU profile of the engine there).
 */
import type { ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  createNetnsPair,
  kernelTestsUnavailable,
  type NetnsPair,
  SERVER_ADDR,
} from '../test/kernel/netns.js';
import { NODE, startWardend, WARDEND } from '../test/kernel/wardend.js';
import { connectLoop, quantile } from './connect-loop.js';
import { formatRatio, reportMeasure } from './report.js';

const SECONDS = Number(process.env.BENCH_SECONDS ?? 3);
const PORT = 9000;
const LANES = 16;
const FLOOD_LANES = 128;
const SELF = fileURLToPath(import.meta.url);

async function worker(lanes: number): Promise<void> {
  const f = await connectLoop(SERVER_ADDR, PORT, SECONDS, lanes);
  process.stdout.write(
    JSON.stringify({ rate: f.rate, p50: quantile(f.latencies, 0.5), p99: quantile(f.latencies, 0.99) }),
  );
}

/** wardend as startWardend runs it, under `node --cpu-prof` (node refuses that flag in NODE_OPTIONS). */
async function profiled(pair: NetnsPair, dir: string, profileDir: string): Promise<ChildProcess> {
  const args = [
    'run',
    '--config-dir',
    join(dir, 'etc'),
    '--state-dir',
    join(dir, 'state'),
    '--port',
    '44334',
  ];
  const child = pair.spawn(
    pair.client,
    NODE,
    ['--cpu-prof', `--cpu-prof-dir=${profileDir}`, WARDEND, ...args],
    {
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  let out = '';
  child.stdout!.on('data', (d) => (out += d));
  child.stderr!.on('data', (d) => (out += d));
  const end = Date.now() + 10_000;
  while (!out.includes('listening on port')) {
    if (Date.now() > end || child.exitCode !== null) throw new Error(`wardend did not start: ${out}`);
    await new Promise((r) => setTimeout(r, 20));
  }
  return child;
}

async function main(): Promise<void> {
  const reason = kernelTestsUnavailable();
  if (reason !== undefined) {
    console.log(`bench:enforcement skipped: ${reason} (it runs real packets in network namespaces)`);
    return;
  }
  const pair = createNetnsPair('be');
  const dir = mkdtempSync(join(tmpdir(), 'warden-bench-'));
  try {
    pair.spawn(pair.server, process.execPath, [
      '-e',
      `require('node:net').createServer((c) => c.on('error', () => {})).listen(${PORT}, 4096);`,
    ]);
    await new Promise((r) => setTimeout(r, 300));
    type Figures = { rate: number; p50: number; p99: number };
    const run = (lanes: number) =>
      JSON.parse(pair.run(pair.client, process.execPath, [SELF, 'worker', String(lanes)])) as Figures;
    const plain = { one: run(1), many: run(LANES), flood: run(FLOOD_LANES) };
    mkdirSync(join(dir, 'etc'));
    writeFileSync(join(dir, 'etc/settings.yaml'), 'enforcement:\n  floodOutgoingPerUid: 0\n');
    const profile = process.env.WARDEN_BENCH_PROF;
    const engine = profile
      ? await profiled(pair, dir, profile)
      : await startWardend(pair, pair.client, dir, 44334);
    const enforced = { one: run(1), many: run(LANES), flood: run(FLOOD_LANES) };
    process.kill(engine.pid!, 'SIGTERM');
    await new Promise((r) => engine.once('exit', r));
    const f = (n: number) => Math.round(n).toLocaleString('en-US');
    const ms = (n: number) => n.toFixed(2);
    const us = (n: number) => `${Math.round(n * 1000)} us`;
    console.log(
      `                                    conn/s (${LANES} lanes)   connect p50 / p99 ms (1 lane)`,
    );
    console.log(
      `no ruleset (baseline)               ${f(plain.many.rate).padStart(9)}           ${ms(plain.one.p50)} / ${ms(plain.one.p99)}`,
    );
    console.log(
      `wardend: queued, attributed, logged ${f(enforced.many.rate).padStart(9)}           ${ms(enforced.one.p50)} / ${ms(enforced.one.p99)}`,
    );
    const ratio = enforced.many.rate / plain.many.rate;
    const addedP50 = enforced.one.p50 - plain.one.p50;
    const addedP99 = enforced.one.p99 - plain.one.p99;
    console.log(
      `ratio: ${ratio.toFixed(2)}x the baseline's connections/s; added per new connection ${us(addedP50)} p50, ${us(addedP99)} p99`,
    );
    console.log(
      `flood (${FLOOD_LANES} lanes): ${f(enforced.flood.rate)} decisions/s (no ruleset: ${f(plain.flood.rate)} conn/s)`,
    );
    reportMeasure({
      measure: 'enforcement: connections/s, shipped defaults vs no ruleset',
      goal: '>= 0.8x',
      measured: `${f(enforced.many.rate)} conn/s`,
      baseline: `${f(plain.many.rate)} conn/s (no ruleset)`,
      ratio: formatRatio(enforced.many.rate, plain.many.rate),
      met: ratio >= 0.8,
    });
    reportMeasure({
      measure: 'enforcement: added latency per new connection, p50',
      goal: '<= 100 us',
      measured: us(addedP50),
      baseline: `${ms(plain.one.p50)} ms connect (no ruleset)`,
      ratio: formatRatio(enforced.one.p50, plain.one.p50),
      met: addedP50 <= 0.1,
    });
    reportMeasure({
      measure: 'enforcement: added latency per new connection, p99',
      goal: '<= 1 ms',
      measured: us(addedP99),
      baseline: `${ms(plain.one.p99)} ms connect (no ruleset)`,
      ratio: formatRatio(enforced.one.p99, plain.one.p99),
      met: addedP99 <= 1,
    });
    reportMeasure({
      measure: `enforcement: decisions/s under a flood (${FLOOD_LANES} lanes)`,
      goal: '',
      measured: `${f(enforced.flood.rate)}/s`,
      baseline: `${f(plain.flood.rate)} conn/s (no ruleset)`,
      ratio: formatRatio(enforced.flood.rate, plain.flood.rate),
      met: null,
    });
  } finally {
    pair.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

if (process.argv[2] === 'worker') await worker(Number(process.argv[3]));
else await main();
