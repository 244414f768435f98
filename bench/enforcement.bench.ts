/**
 * The whole engine on the packet path (needs root and cgroup2; runs in throwaway namespace pairs):
 * TCP connections per second and connect latency from a client namespace with no ruleset
 * (baseline), then with `wardend run` enforcing the shipped defaults there, so that every new
 * outgoing connection is queued, attributed to its program, decided, logged and accepted. Both
 * attribution paths are measured in the same run: /proc (WARDEN_BPF_CGROUP=off) and BPF, with the
 * programs attached to a cgroup this bench makes under the cgroup2 mount (never the root), which
 * holds the connecting clients and is removed afterwards. Prints each, the ratio and the latency the
 * engine adds, and the decisions per second under a flood (many lanes). The baseline and the two
 * engines run in namespace pairs at the same time, in alternating slices, with a pair whose only
 * ruleset is one `ct state` rule (connection tracking alone, the floor of any stateful firewall), and a pair where
 * every SYN goes through the same queue to a process that only parses and accepts it (the queue
 * alone, bench:nfqueue's consumer): the floor of any engine on this path, in the same run. The
 * engines' CPU time per connection they decided is read from /proc/PID/stat.
 *
 * The BPF engine runs twice, each on a cgroup and namespace pair of its own: without the verdict
 * cache (`bpf`: every new connection queued) and with it (`bpf+cache`, the shipped default:
 * docs/attribution.md, "Verdict cache"). The load connects again and again from one program (node)
 * to one destination, so with the cache every connection after the first is a hit decided in the
 * kernel (still logged and counted); what a first connection to a new destination costs (a miss:
 * queued, decided, inserted) is measured apart, one connection to each of 48 new ports per path.
 *
 * One setting differs from the shipped defaults: `enforcement.floodOutgoingPerUid: 0`. The flood
 * guard deliberately holds each uid to 100 new connections a second that wait for the engine; every
 * lane here runs as root, so with the guard the bench would measure that cap, not the decision path.
 *
 * Run: npm run bench:enforcement (BENCH_SECONDS=1 for a quick run; WARDEN_BENCH_PROF=DIR writes a
 * CPU profile of each engine in a folder of its own there; WARDEN_BENCH_PERF=DIR runs the 16-lane
 * clients of no ruleset, conntrack alone and the cache under `perf record -g` there, for
 * `node dist/bench/perf-diff.js DIR`: where the client's time per connection goes).
 */
import { type ChildProcess, execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { cgroupTestsUnavailable, createTestCgroup, type TestCgroup } from '../test/kernel/cgroup.js';
import {
  createNetnsPair,
  kernelTestsUnavailable,
  type NetnsPair,
  SERVER_ADDR,
} from '../test/kernel/netns.js';
import { NODE, startWardend, WARDEND } from '../test/kernel/wardend.js';
import { connectEach, connectLoop, quantile } from './connect-loop.js';
import { formatRatio, reportMeasure } from './report.js';

/** Seconds of load per setting and lane count, cut into ROUNDS slices. */
const SECONDS = Number(process.env.BENCH_SECONDS ?? 3);
const ROUNDS = 6;
const PORT = 9000;
const LANES = 16;
const FLOOD_LANES = 128;
const SELF = fileURLToPath(import.meta.url);
const NFQUEUE_BENCH = fileURLToPath(new URL('./nfqueue.bench.js', import.meta.url));

/**
 * Waits until none of the processes uses CPU for two polls in a row (at most 2 s): an engine goes
 * on writing the log items of a slice after it (the 25 ms batches), and that work fell into the
 * next setting's slice, always the same one (the verdict cache's came right after the BPF path's
 * thousands of queued decisions). Every slice now starts on a quiet engine, whatever came before.
 */
async function settle(pids: readonly number[]): Promise<void> {
  const total = () => pids.reduce((sum, pid) => sum + cpuSeconds(pid), 0);
  let last = total();
  let quiet = 0;
  for (const end = Date.now() + 2000; quiet < 2 && Date.now() < end; ) {
    await new Promise((r) => setTimeout(r, 30));
    const now = total();
    quiet = now === last ? quiet + 1 : 0;
    last = now;
  }
}

/** CPU seconds (user + system) a process has used, from /proc/PID/stat. */
function cpuSeconds(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'latin1');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) / 100; // utime, stime (fields 14, 15) in ticks
}

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

/** Ports the servers also listen on: one first connection to each measures what a cache miss costs. */
const FIRST_PORTS = 48;

/** One connection to each of `count` ports from PORT + `from`, one at a time: new destinations, each a first connection. */
async function firstWorker(from: number, count: number): Promise<void> {
  process.stdout.write(JSON.stringify(await connectEach(SERVER_ADDR, PORT + from, count)));
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
  return Object.assign(child, { output: () => out });
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

/** One way of running the engine, measured against the same baseline. */
interface Path {
  /** Short name in the table: 'proc' or 'bpf'. */
  name: string;
  /** What the human line says. */
  label: string;
  pair: NetnsPair;
  engine: ChildProcess;
  /** Runs one worker slice in this path's client namespace (and cgroup, for bpf). */
  slice(lanes: number): Slice;
  /** Connect latencies (ms) of one first connection to each of `count` new destinations from PORT + `from`. */
  first(from: number, count: number): number[];
  tally: Tally;
}

/** Starts wardend in `pair`'s client namespace with WARDEN_BPF_CGROUP set to `bpfCgroup` ('off' for the proc path). */
async function startEngine(
  pair: NetnsPair,
  dir: string,
  bpfCgroup: string,
  verdictCache = false,
): Promise<ChildProcess> {
  mkdirSync(join(dir, 'etc'), { recursive: true });
  writeFileSync(
    join(dir, 'etc/settings.yaml'),
    `enforcement:\n  floodOutgoingPerUid: 0\n  verdictCache: ${verdictCache}\n`,
  );
  const profile = process.env.WARDEN_BENCH_PROF;
  // pair.spawn reads the environment at the call; the harness's default is 'off'.
  process.env.WARDEN_BPF_CGROUP = bpfCgroup;
  try {
    return profile
      ? await profiled(pair, dir, join(profile, basename(dir)))
      : await startWardend(pair, pair.client, dir, 44334);
  } finally {
    delete process.env.WARDEN_BPF_CGROUP;
  }
}

/** WARDEN_BENCH_PERF: the 16-lane slices recorded, with the connections each made (bench/perf-diff.ts). */
const PERF_DIR = process.env.WARDEN_BENCH_PERF;
const PERF_SETTINGS = ['none', 'conntrack', 'bpf+cache'];
const perfSlices: { setting: string; file: string; connections: number }[] = [];

/**
 * Runs a slice: `run` gets the words its client's command starts with, `perf record ...` when
 * WARDEN_BENCH_PERF asks for this setting's 16-lane slices (then noted with its connections), else none.
 */
function perfSlice(setting: string | undefined, lanes: number, run: (prefix: string[]) => Slice): Slice {
  if (PERF_DIR === undefined || setting === undefined || lanes !== LANES || !PERF_SETTINGS.includes(setting))
    return run([]);
  mkdirSync(PERF_DIR, { recursive: true });
  const file = join(PERF_DIR, `${setting.replace('+', '-')}-${perfSlices.length}.data`);
  const slice = run(['perf', 'record', '-q', '-g', '-o', file, '--']);
  perfSlices.push({ setting, file, connections: slice.count });
  return slice;
}

function workerArgs(lanes: number): string[] {
  return [SELF, 'worker', String(lanes), String(SECONDS / ROUNDS)];
}

async function main(): Promise<void> {
  const reason = kernelTestsUnavailable() ?? cgroupTestsUnavailable() ?? undefined;
  if (reason !== undefined) {
    console.log(`bench:enforcement skipped: ${reason} (it runs real packets in network namespaces)`);
    return;
  }
  // Three namespace pairs side by side: one without a ruleset (baseline), one where wardend
  // enforces and attributes through /proc, one where it attributes by BPF on a cgroup of this
  // bench's own (never the root) that holds the connecting clients. The load alternates between
  // them in short slices, so that what else the machine does (it is shared) weighs on all alike.
  const plainPair = createNetnsPair('bp');
  const procPair = createNetnsPair('be');
  const bpfPair = createNetnsPair('bb');
  const queuePair = createNetnsPair('bn');
  const trackPair = createNetnsPair('bk');
  const cachePair = createNetnsPair('bc');
  const cgroup = createTestCgroup('bench');
  const cacheGroup = createTestCgroup('bench-cache');
  const dirs: string[] = [];
  const paths: Path[] = [];
  try {
    for (const p of [plainPair, procPair, bpfPair, queuePair, cachePair, trackPair])
      p.spawn(p.server, process.execPath, [
        '-e',
        `const net = require('node:net'); for (let p = ${PORT}; p <= ${PORT + FIRST_PORTS}; p++) net.createServer((c) => c.on('error', () => {})).listen(p, 4096);`,
      ]);
    const run = (p: NetnsPair, lanes: number, setting?: string) =>
      perfSlice(setting, lanes, (prefix) => {
        const [command, ...args] = [...prefix, process.execPath, ...workerArgs(lanes)];
        return JSON.parse(p.run(p.client, command!, args)) as Slice;
      });
    const procDir = mkdtempSync(join(tmpdir(), 'warden-bench-proc-'));
    dirs.push(procDir);
    paths.push({
      name: 'proc',
      label: 'wardend, /proc attribution',
      pair: procPair,
      engine: await startEngine(procPair, procDir, 'off'),
      slice: (lanes) => run(procPair, lanes),
      first: (from, count) =>
        JSON.parse(
          procPair.run(procPair.client, process.execPath, [SELF, 'first', String(from), String(count)]),
        ) as number[],
      tally: new Tally(),
    });
    // Two BPF engines, each on a cgroup of its own: without the verdict cache (every new connection
    // queued) and with it (the shipped defaults: a repeat (program, destination) is decided in the kernel).
    const bpfPath = async (
      name: string,
      label: string,
      pair: NetnsPair,
      group: TestCgroup,
      cache: boolean,
    ) => {
      const dir = mkdtempSync(join(tmpdir(), `warden-bench-${name.replace('+', '-')}-`));
      dirs.push(dir);
      const engine = await startEngine(pair, dir, `/${basename(group.path)}`, cache);
      const inGroup = (args: string[]) =>
        execFileSync(
          '/bin/sh',
          [
            '-c',
            `echo $$ > '${join(group.path, 'cgroup.procs')}' && exec "$0" "$@"`,
            'nsenter',
            `--net=${pair.path(pair.client)}`,
            ...args,
          ],
          { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] },
        );
      paths.push({
        name,
        label,
        pair,
        engine,
        // The worker moves itself into the path's cgroup before exec'ing, so its connections are
        // seen by the attribution programs attached there.
        slice: (lanes) =>
          perfSlice(
            name,
            lanes,
            (prefix) => JSON.parse(inGroup([...prefix, process.execPath, ...workerArgs(lanes)])) as Slice,
          ),
        first: (from, count) =>
          JSON.parse(inGroup([process.execPath, SELF, 'first', String(from), String(count)])) as number[],
        tally: new Tally(),
      });
      return engine;
    };
    const bpfEngine = await bpfPath('bpf', 'wardend, BPF attribution', bpfPair, cgroup, false);
    const cacheEngine = await bpfPath(
      'bpf+cache',
      'wardend, BPF + verdict cache',
      cachePair,
      cacheGroup,
      true,
    );
    // The queue alone: every SYN to the server queued as the engine's ruleset does, parsed and accepted.
    const consumer = queuePair.spawn(queuePair.client, process.execPath, [NFQUEUE_BENCH, 'consumer', '0'], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    await new Promise((r) => consumer.stdout!.once('data', r));
    queuePair.run(queuePair.client, 'iptables-nft', [
      ...['-A', 'OUTPUT', '-p', 'tcp', '--syn', '-d', SERVER_ADDR],
      ...['-j', 'NFQUEUE', '--queue-num', '0'],
    ]);
    const queueAlone = new Tally();
    // Connection tracking alone: a table that only accepts, with the one `ct state` rule any stateful
    // firewall has (conntrack then tracks every connection of the namespace): the floor of this path.
    trackPair.run(
      trackPair.client,
      'nft',
      ['-f', '-'],
      'table inet floor {\n chain o { type filter hook output priority 0; ct state established,related accept; accept; }\n chain i { type filter hook input priority 0; ct state established,related accept; accept; }\n}\n',
    );
    const trackAlone = new Tally();
    const plain = new Tally();
    const cpuBefore = paths.map((p) => cpuSeconds(p.engine.pid!));
    const consumerBefore = cpuSeconds(consumer.pid!);
    const busy = [consumer.pid!, ...paths.map((p) => p.engine.pid!)];
    for (let round = 0; round < ROUNDS; round++)
      for (const lanes of [1, LANES, FLOOD_LANES]) {
        await settle(busy);
        plain.add(lanes, run(plainPair, lanes, 'none'));
        await settle(busy);
        queueAlone.add(lanes, run(queuePair, lanes));
        await settle(busy);
        trackAlone.add(lanes, run(trackPair, lanes, 'conntrack'));
        for (const p of paths) {
          await settle(busy);
          p.tally.add(lanes, p.slice(lanes));
        }
      }
    // New destinations: each path's first connection to each is queued (a cache miss, then inserted).
    // After a pause, so that the engines have written the log items of the load before.
    await new Promise((r) => setTimeout(r, 3000));
    // In groups of 8 ports, baseline and paths alternating (the machine is shared).
    const plainFirst: number[] = [];
    const firsts: number[][] = paths.map(() => []);
    for (let from = 1; from <= FIRST_PORTS; from += 8) {
      const args = [SELF, 'first', String(from), '8'];
      plainFirst.push(...(JSON.parse(plainPair.run(plainPair.client, process.execPath, args)) as number[]));
      for (const [i, p] of paths.entries()) firsts[i]!.push(...p.first(from, 8));
    }
    plainFirst.sort((a, b) => a - b);
    for (const f of firsts) f.sort((a, b) => a - b);
    const cpuPerConnection = paths.map((p, i) => {
      const connections = [...p.tally.slices.values()].reduce((sum, t) => sum + t.count, 0);
      return ((cpuSeconds(p.engine.pid!) - cpuBefore[i]!) / connections) * 1e6;
    });
    const queueConnections = [...queueAlone.slices.values()].reduce((sum, t) => sum + t.count, 0);
    const consumerCpu = ((cpuSeconds(consumer.pid!) - consumerBefore) / queueConnections) * 1e6;
    consumer.kill('SIGTERM');
    for (const p of paths) {
      process.kill(p.engine.pid!, 'SIGTERM');
      await new Promise((r) => p.engine.once('exit', r));
    }
    if (!/attribution bpf/.test((bpfEngine as { output?: () => string }).output?.() ?? 'attribution bpf'))
      throw new Error('the BPF engine did not say it attributes by BPF');
    // Without captured output (WARDEN_BENCH_PROF starts the engine another way) nothing is checked, as above.
    const cacheOutput = (cacheEngine as { output?: () => string }).output?.() ?? 'verdict cache on';
    if (!/verdict cache on/.test(cacheOutput))
      throw new Error(`the cache engine has no verdict cache: ${cacheOutput}`);
    const cacheStop = /verdict cache at stop.*?"hits":(\d+).*?"misses":(\d+).*?"skipped":(\{[^}]*\})/.exec(
      cacheOutput,
    );
    const f = (n: number) => Math.round(n).toLocaleString('en-US');
    const ms = (n: number) => n.toFixed(2);
    const us = (n: number) => `${Math.round(n * 1000)} us`;
    console.log(`${ROUNDS} rounds of ${ms(SECONDS / ROUNDS)} s slices, baseline and engines alternating`);
    console.log(
      `                                    conn/s (${LANES} lanes)   connect p50 / p99 ms (1 lane)`,
    );
    const line = (label: string, t: Tally) =>
      console.log(
        `${label.padEnd(36)}${f(t.rate(LANES)).padStart(9)}           ${ms(t.latency(0.5))} / ${ms(t.latency(0.99))}`,
      );
    line('no ruleset (baseline)', plain);
    line('queue alone (parse + accept)', queueAlone);
    line('conntrack alone (ct state rule)', trackAlone);
    for (const p of paths) line(p.label, p.tally);
    const queueRatio = queueAlone.rate(LANES) / plain.rate(LANES);
    console.log(
      `queue alone: ${queueRatio.toFixed(2)}x the baseline's connections/s; added per new connection ${us(queueAlone.latency(0.5) - plain.latency(0.5))} p50, ${us(queueAlone.latency(0.99) - plain.latency(0.99))} p99; its process's CPU ${Math.round(consumerCpu)} us per connection (the verdict's sendto carries the packet on through the kernel)`,
    );
    reportMeasure({
      measure: 'enforcement: the queue alone (a process parses and accepts each SYN), same run',
      goal: '',
      measured: `${f(queueAlone.rate(LANES))} conn/s; 1 lane +${us(queueAlone.latency(0.5) - plain.latency(0.5))} p50; ${Math.round(consumerCpu)} us CPU per connection`,
      baseline: `${f(plain.rate(LANES))} conn/s (no ruleset)`,
      ratio: formatRatio(queueAlone.rate(LANES), plain.rate(LANES)),
      met: null,
    });
    console.log(
      `conntrack alone: ${(trackAlone.rate(LANES) / plain.rate(LANES)).toFixed(2)}x the baseline's connections/s (what any stateful firewall's connection tracking costs on this path)`,
    );
    reportMeasure({
      measure: 'enforcement: connection tracking alone (a table with one ct state rule, no engine), same run',
      goal: '',
      measured: `${f(trackAlone.rate(LANES))} conn/s`,
      baseline: `${f(plain.rate(LANES))} conn/s (no ruleset)`,
      ratio: formatRatio(trackAlone.rate(LANES), plain.rate(LANES)),
      met: null,
    });
    if (cacheStop !== null)
      console.log(
        `bpf+cache: the bench connects again and again from one program (node) to one destination: after the first connection, queued and decided (as in the bpf row), every connection is a cache hit decided in the kernel (logged and counted by the engine from the ring buffer): ${f(Number(cacheStop[1]))} hits, ${f(Number(cacheStop[2]))} misses (queued); queued allows not inserted, by reason: ${cacheStop[3]}`,
      );
    for (const [i, { name }] of paths.entries()) {
      const added = quantile(firsts[i]!, 0.5) - quantile(plainFirst, 0.5);
      console.log(
        `${name}: first connection to a new destination (${FIRST_PORTS}, one at a time): ${ms(quantile(firsts[i]!, 0.5))} ms p50, +${us(added)} over no ruleset (${ms(quantile(plainFirst, 0.5))} ms)`,
      );
      reportMeasure({
        measure: `enforcement (${name}): added latency of a first connection to a new destination, p50`,
        goal: '',
        measured: us(added),
        baseline: `${ms(quantile(plainFirst, 0.5))} ms connect (no ruleset)`,
        ratio: formatRatio(quantile(firsts[i]!, 0.5), quantile(plainFirst, 0.5)),
        met: null,
      });
    }
    for (const [i, { name, tally: t }] of paths.entries()) {
      console.log(
        `${name}: ${t.rate(LANES) >= queueAlone.rate(LANES) ? 'at' : `${(t.rate(LANES) / queueAlone.rate(LANES)).toFixed(2)}x`} the queue alone's connections/s; engine CPU ${Math.round(cpuPerConnection[i]!)} us per connection decided`,
      );
      reportMeasure({
        measure: `enforcement (${name}): engine CPU per connection decided`,
        goal: '',
        measured: `${Math.round(cpuPerConnection[i]!)} us`,
        baseline: '',
        ratio: '',
        met: null,
      });
      const ratio = t.rate(LANES) / plain.rate(LANES);
      const addedP50 = t.latency(0.5) - plain.latency(0.5);
      const addedP99 = t.latency(0.99) - plain.latency(0.99);
      console.log(
        `${name}: ${ratio.toFixed(2)}x the baseline's connections/s; added per new connection ${us(addedP50)} p50, ${us(addedP99)} p99; flood (${FLOOD_LANES} lanes) ${f(t.rate(FLOOD_LANES))} decisions/s (no ruleset: ${f(plain.rate(FLOOD_LANES))} conn/s)`,
      );
      reportMeasure({
        measure: `enforcement (${name}): connections/s, shipped defaults vs no ruleset`,
        goal: '>= 0.8x',
        measured: `${f(t.rate(LANES))} conn/s`,
        baseline: `${f(plain.rate(LANES))} conn/s (no ruleset)`,
        ratio: formatRatio(t.rate(LANES), plain.rate(LANES)),
        met: ratio >= 0.8,
      });
      reportMeasure({
        measure: `enforcement (${name}): added latency per new connection, p50`,
        goal: '<= 100 us',
        measured: us(addedP50),
        baseline: `${ms(plain.latency(0.5))} ms connect (no ruleset)`,
        ratio: formatRatio(t.latency(0.5), plain.latency(0.5)),
        met: addedP50 <= 0.1,
      });
      reportMeasure({
        measure: `enforcement (${name}): added latency per new connection, p99`,
        goal: '<= 1 ms',
        measured: us(addedP99),
        baseline: `${ms(plain.latency(0.99))} ms connect (no ruleset)`,
        ratio: formatRatio(t.latency(0.99), plain.latency(0.99)),
        met: addedP99 <= 1,
      });
      reportMeasure({
        measure: `enforcement (${name}): decisions/s under a flood (${FLOOD_LANES} lanes)`,
        goal: '',
        measured: `${f(t.rate(FLOOD_LANES))}/s`,
        baseline: `${f(plain.rate(FLOOD_LANES))} conn/s (no ruleset)`,
        ratio: formatRatio(t.rate(FLOOD_LANES), plain.rate(FLOOD_LANES)),
        met: null,
      });
    }
  } finally {
    for (const p of [plainPair, procPair, bpfPair, queuePair, cachePair, trackPair]) p.close();
    await cgroup.remove();
    await cacheGroup.remove();
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
    if (PERF_DIR !== undefined) writeFileSync(join(PERF_DIR, 'manifest.json'), JSON.stringify(perfSlices));
  }
}

if (process.argv[2] === 'worker') await worker(Number(process.argv[3]), Number(process.argv[4]));
else if (process.argv[2] === 'first') await firstWorker(Number(process.argv[3]), Number(process.argv[4]));
else await main();
