/**
 * The whole engine on the packet path (needs root; runs in a throwaway namespace pair): TCP
 * connections per second and connect latency from the client namespace with no ruleset (baseline),
 * then with `wardend run` enforcing the shipped defaults there, so that every new outgoing
 * connection is queued, attributed to its program, decided, logged and accepted. Prints both, the
 * ratio and the latency the engine adds, and the decisions per second under a flood (many lanes).
 * The baseline runs in a second namespace pair at the same time, in alternating slices.
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

/** Seconds of load per setting and lane count, cut into ROUNDS slices. */
const SECONDS = Number(process.env.BENCH_SECONDS ?? 3);
const ROUNDS = 6;
const PORT = 9000;
const LANES = 16;
const FLOOD_LANES = 128;
const SELF = fileURLToPath(import.meta.url);

async function worker(lanes: number, seconds: number): Promise<void> {
  const started = performance.now();
  const f = await connectLoop(SERVER_ADDR, PORT, seconds, lanes);
  const slice: Slice = {
    count: f.latencies.length,
    seconds: (performance.now() - started) / 1000,
    latencies: lanes === 1 ? f.latencies : [],
  };
  process.stdout.write(JSON.stringify(slice));
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

interface Slice {
  /** Connections made and the seconds they took. */
  count: number;
  seconds: number;
  /** Connect latencies in ms (1 lane only). */
  latencies: number[];
}

/** Everything measured for one setting (baseline or enforced), summed over the rounds. */
class Tally {
  readonly slices = new Map<number, Slice>();
  add(lanes: number, s: Slice): void {
    const t = this.slices.get(lanes) ?? { count: 0, seconds: 0, latencies: [] };
    t.count += s.count;
    t.seconds += s.seconds;
    for (const l of s.latencies) t.latencies.push(l);
    this.slices.set(lanes, t);
  }
  rate(lanes: number): number {
    const t = this.slices.get(lanes)!;
    return t.count / t.seconds;
  }
  latency(q: number): number {
    return quantile(
      this.slices.get(1)!.latencies.sort((a, b) => a - b),
      q,
    );
  }
}

async function main(): Promise<void> {
  const reason = kernelTestsUnavailable();
  if (reason !== undefined) {
    console.log(`bench:enforcement skipped: ${reason} (it runs real packets in network namespaces)`);
    return;
  }
  // Two namespace pairs side by side, one without a ruleset (baseline) and one where wardend
  // enforces; the load alternates between them in short slices, so that what else the machine does
  // (it is shared) weighs on both alike.
  const plainPair = createNetnsPair('bp');
  const pair = createNetnsPair('be');
  const dir = mkdtempSync(join(tmpdir(), 'warden-bench-'));
  try {
    for (const p of [plainPair, pair])
      p.spawn(p.server, process.execPath, [
        '-e',
        `require('node:net').createServer((c) => c.on('error', () => {})).listen(${PORT}, 4096);`,
      ]);
    mkdirSync(join(dir, 'etc'));
    writeFileSync(join(dir, 'etc/settings.yaml'), 'enforcement:\n  floodOutgoingPerUid: 0\n');
    const profile = process.env.WARDEN_BENCH_PROF;
    const engine = profile
      ? await profiled(pair, dir, profile)
      : await startWardend(pair, pair.client, dir, 44334);
    const slice = (p: NetnsPair, lanes: number) =>
      JSON.parse(
        p.run(p.client, process.execPath, [SELF, 'worker', String(lanes), String(SECONDS / ROUNDS)]),
      ) as Slice;
    const plain = new Tally();
    const enforced = new Tally();
    for (let round = 0; round < ROUNDS; round++)
      for (const lanes of [1, LANES, FLOOD_LANES]) {
        plain.add(lanes, slice(plainPair, lanes));
        enforced.add(lanes, slice(pair, lanes));
      }
    process.kill(engine.pid!, 'SIGTERM');
    await new Promise((r) => engine.once('exit', r));
    const f = (n: number) => Math.round(n).toLocaleString('en-US');
    const ms = (n: number) => n.toFixed(2);
    const us = (n: number) => `${Math.round(n * 1000)} us`;
    console.log(`${ROUNDS} rounds of ${ms(SECONDS / ROUNDS)} s slices, baseline and engine alternating`);
    console.log(
      `                                    conn/s (${LANES} lanes)   connect p50 / p99 ms (1 lane)`,
    );
    console.log(
      `no ruleset (baseline)               ${f(plain.rate(LANES)).padStart(9)}           ${ms(plain.latency(0.5))} / ${ms(plain.latency(0.99))}`,
    );
    console.log(
      `wardend: queued, attributed, logged ${f(enforced.rate(LANES)).padStart(9)}           ${ms(enforced.latency(0.5))} / ${ms(enforced.latency(0.99))}`,
    );
    const ratio = enforced.rate(LANES) / plain.rate(LANES);
    const addedP50 = enforced.latency(0.5) - plain.latency(0.5);
    const addedP99 = enforced.latency(0.99) - plain.latency(0.99);
    console.log(
      `ratio: ${ratio.toFixed(2)}x the baseline's connections/s; added per new connection ${us(addedP50)} p50, ${us(addedP99)} p99`,
    );
    console.log(
      `flood (${FLOOD_LANES} lanes): ${f(enforced.rate(FLOOD_LANES))} decisions/s (no ruleset: ${f(plain.rate(FLOOD_LANES))} conn/s)`,
    );
    reportMeasure({
      measure: 'enforcement: connections/s, shipped defaults vs no ruleset',
      goal: '>= 0.8x',
      measured: `${f(enforced.rate(LANES))} conn/s`,
      baseline: `${f(plain.rate(LANES))} conn/s (no ruleset)`,
      ratio: formatRatio(enforced.rate(LANES), plain.rate(LANES)),
      met: ratio >= 0.8,
    });
    reportMeasure({
      measure: 'enforcement: added latency per new connection, p50',
      goal: '<= 100 us',
      measured: us(addedP50),
      baseline: `${ms(plain.latency(0.5))} ms connect (no ruleset)`,
      ratio: formatRatio(enforced.latency(0.5), plain.latency(0.5)),
      met: addedP50 <= 0.1,
    });
    reportMeasure({
      measure: 'enforcement: added latency per new connection, p99',
      goal: '<= 1 ms',
      measured: us(addedP99),
      baseline: `${ms(plain.latency(0.99))} ms connect (no ruleset)`,
      ratio: formatRatio(enforced.latency(0.99), plain.latency(0.99)),
      met: addedP99 <= 1,
    });
    reportMeasure({
      measure: `enforcement: decisions/s under a flood (${FLOOD_LANES} lanes)`,
      goal: '',
      measured: `${f(enforced.rate(FLOOD_LANES))}/s`,
      baseline: `${f(plain.rate(FLOOD_LANES))} conn/s (no ruleset)`,
      ratio: formatRatio(enforced.rate(FLOOD_LANES), plain.rate(FLOOD_LANES)),
      met: null,
    });
  } finally {
    pair.close();
    plainPair.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

if (process.argv[2] === 'worker') await worker(Number(process.argv[3]), Number(process.argv[4]));
else await main();
