/**
 * Kernel addon benchmark (needs root; runs in a throwaway namespace pair): TCP connections per second
 * from the client namespace without a queue (baseline) and with every SYN queued to NFQUEUE and
 * accepted synchronously from JS; then sock_diag exact lookups per second against finding the same
 * socket by parsing /proc/net/tcp (baseline). Prints the figures and their ratios.
 * Run: npm run bench:nfqueue
 */
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { fileURLToPath } from 'node:url';
import { lookupSocket, openQueue } from '../src/kernel/native.js';
import { parsePacket } from '../src/kernel/packet.js';
import { createNetnsPair, kernelTestsUnavailable, SERVER_ADDR } from '../test/kernel/netns.js';
import { connectLoop, quantile } from './connect-loop.js';
import { formatRatio, reportMeasure } from './report.js';

const SECONDS = Number(process.env.BENCH_SECONDS ?? 3);
/** The separate-process settings alternate in this many slices of SECONDS / ROUNDS each. */
const ROUNDS = 6;
const CONCURRENCY = 32;
const PORT = 9000;
const SELF = fileURLToPath(import.meta.url);

/** Finds a socket's inode the /proc way: read and scan /proc/net/tcp for its local and remote ends. */
function procNetLookup(localPort: number, remotePort: number): number | null {
  const hex = (n: number) => n.toString(16).toUpperCase().padStart(4, '0');
  const want = `:${hex(localPort)} `;
  const remote = `:${hex(remotePort)} `;
  for (const line of readFileSync('/proc/net/tcp', 'utf8').split('\n')) {
    if (line.includes(want) && line.includes(remote)) return Number(line.trim().split(/\s+/)[9]);
  }
  return null;
}

async function lookupBench(): Promise<{ diag: number; proc: number }> {
  const sockets: Socket[] = [];
  for (let i = 0; i < 100; i++) {
    const s = connect(PORT, SERVER_ADDR);
    await new Promise((r) => s.once('connect', r));
    sockets.push(s);
  }
  const target = sockets[50]!;
  const time = (n: number, fn: () => unknown) => {
    const t = process.hrtime.bigint();
    for (let i = 0; i < n; i++) fn();
    return n / (Number(process.hrtime.bigint() - t) / 1e9);
  };
  const diag = time(100_000, () =>
    lookupSocket('tcp', 4, target.localAddress!, target.localPort!, SERVER_ADDR, PORT),
  );
  const proc = time(300, () => procNetLookup(target.localPort!, PORT));
  for (const s of sockets) s.destroy();
  return { diag, proc };
}

/**
 * A separate verdict process, as the engine is: every queued SYN is parsed (packet.ts) and accepted
 * from the callback. What it adds to a connection is the floor of the engine's decision path.
 */
function consumer(number: number): void {
  const queue = openQueue(number, { maxLength: 8192 }, (p) => {
    if (parsePacket(p.payload).ok) queue.verdict(p.id, 'accept');
    else queue.verdict(p.id, 'drop');
  });
  process.on('SIGTERM', () => {
    queue.close();
    process.exit(0);
  });
  console.log('ready');
}

/** Runs inside the client namespace: `worker plain|queue|lookup|lanes N`. */
async function worker(mode: string): Promise<void> {
  if (mode === 'lookup') {
    process.stdout.write(JSON.stringify(await lookupBench()));
    return;
  }
  if (mode === 'lanes') {
    const lanes = Number(process.argv[4]);
    const started = performance.now();
    const f = await connectLoop(SERVER_ADDR, PORT, Number(process.argv[5]), lanes);
    const slice = {
      count: f.latencies.length,
      seconds: (performance.now() - started) / 1000,
      latencies: lanes === 1 ? f.latencies : [],
    };
    process.stdout.write(JSON.stringify(slice));
    return;
  }
  const queue = mode === 'queue' ? openQueue(0, {}, (p) => queue!.verdict(p.id, 'accept')) : undefined;
  const { rate } = await connectLoop(SERVER_ADDR, PORT, SECONDS, CONCURRENCY);
  const stats = queue?.stats();
  queue?.close();
  process.stdout.write(JSON.stringify({ rate, stats }));
}

async function main(): Promise<void> {
  const reason = kernelTestsUnavailable();
  if (reason !== undefined) {
    console.log(`bench:nfqueue skipped: ${reason} (it runs real packets in network namespaces)`);
    return;
  }
  const pair = createNetnsPair('bq');
  try {
    pair.spawn(pair.server, process.execPath, [
      '-e',
      `require('node:net').createServer((c) => c.on('error', () => {})).listen(${PORT}, () => console.log('ready'));`,
    ]);
    execFileSync('sleep', ['0.3']);
    const run = (mode: string) =>
      JSON.parse(pair.run(pair.client, process.execPath, [SELF, 'worker', mode])) as unknown;
    const plain = run('plain') as { rate: number };
    pair.run(pair.client, 'iptables-nft', [
      '-A',
      'OUTPUT',
      '-p',
      'tcp',
      '--syn',
      '-d',
      SERVER_ADDR,
      '-j',
      'NFQUEUE',
      '--queue-num',
      '0',
    ]);
    const queued = run('queue') as { rate: number; stats: { verdicts: number; enobufs: number } };
    type Slice = { count: number; seconds: number; latencies: number[] };
    const slice = (n: number) =>
      JSON.parse(
        pair.run(pair.client, process.execPath, [
          SELF,
          'worker',
          'lanes',
          String(n),
          String(SECONDS / ROUNDS),
        ]),
      ) as Slice;
    // Both verdict processes run throughout; only the rule changes between slices, which alternate
    // (the machine is shared: its load weighs on every setting alike).
    pair.run(pair.client, 'iptables-nft', ['-F', 'OUTPUT']);
    const children = [0, 1].map((q) =>
      pair.spawn(pair.client, process.execPath, [SELF, 'consumer', String(q)], {
        stdio: ['ignore', 'pipe', 'inherit'],
      }),
    );
    await Promise.all(children.map((c) => new Promise((r) => c.stdout!.once('data', r))));
    const settings = {
      plain: [] as string[],
      // One queue, one verdict process: the floor of the engine's path.
      one: ['--queue-num', '0'],
      // Two queues, the kernel choosing by the CPU that queues the packet: does a second verdict process help on 2 cores?
      two: ['--queue-balance', '0:1', '--queue-cpu-fanout'],
    };
    const tallies = new Map<string, Map<number, Slice>>();
    for (let round = 0; round < ROUNDS; round++)
      for (const [name, target] of Object.entries(settings)) {
        pair.run(pair.client, 'iptables-nft', ['-F', 'OUTPUT']);
        if (target.length > 0)
          pair.run(pair.client, 'iptables-nft', [
            '-A',
            'OUTPUT',
            '-p',
            'tcp',
            '--syn',
            '-d',
            SERVER_ADDR,
            '-j',
            'NFQUEUE',
            ...target,
          ]);
        for (const n of [1, 16]) {
          const s = slice(n);
          const t = tallies.get(name) ?? new Map<number, Slice>();
          const sum = t.get(n) ?? { count: 0, seconds: 0, latencies: [] };
          sum.count += s.count;
          sum.seconds += s.seconds;
          sum.latencies.push(...s.latencies);
          t.set(n, sum);
          tallies.set(name, t);
        }
      }
    for (const c of children) c.kill('SIGTERM');
    pair.run(pair.client, 'iptables-nft', ['-F', 'OUTPUT']);
    const figures = (name: string) => {
      const t = tallies.get(name)!;
      const one = t.get(1)!.latencies.sort((a, b) => a - b);
      return {
        rate: t.get(16)!.count / t.get(16)!.seconds,
        p50: quantile(one, 0.5),
        p99: quantile(one, 0.99),
      };
    };
    const plainLanes = figures('plain');
    const queuedLanes = figures('one');
    const balanced = figures('two');
    const lookup = run('lookup') as { diag: number; proc: number };
    const f = (n: number) => Math.round(n).toLocaleString('en-US');
    console.log(`connections/s, no queue (baseline):        ${f(plain.rate)}`);
    console.log(
      `connections/s, NFQUEUE + sync JS verdict:  ${f(queued.rate)}  (${(queued.rate / plain.rate).toFixed(2)}x baseline; ${f(queued.stats.verdicts)} verdicts, ${queued.stats.enobufs} ENOBUFS)`,
    );
    const us = (n: number) => `${Math.round(n * 1000)} us`;
    console.log(
      `separate verdict process (parse + accept), 16 lanes: ${f(queuedLanes.rate)} conn/s against ${f(plainLanes.rate)} (${(queuedLanes.rate / plainLanes.rate).toFixed(2)}x); 1 lane adds ${us(queuedLanes.p50 - plainLanes.p50)} p50, ${us(queuedLanes.p99 - plainLanes.p99)} p99`,
    );
    console.log(
      `two queues (--queue-balance 0:1 --queue-cpu-fanout), two verdict processes, 16 lanes: ${f(balanced.rate)} conn/s (${(balanced.rate / plainLanes.rate).toFixed(2)}x); 1 lane adds ${us(balanced.p50 - plainLanes.p50)} p50, ${us(balanced.p99 - plainLanes.p99)} p99`,
    );
    console.log(`socket lookups/s, /proc/net/tcp (baseline): ${f(lookup.proc)}`);
    console.log(
      `socket lookups/s, sock_diag exact:          ${f(lookup.diag)}  (${(lookup.diag / lookup.proc).toFixed(0)}x baseline, ${(1e6 / lookup.diag).toFixed(1)} us each)`,
    );
    // The queue's own floor for goal 1 of issue 12: what the queue round trip alone costs.
    reportMeasure({
      measure: 'nfqueue: queue alone (verdict process parses + accepts), 16 lanes',
      goal: '',
      measured: `${f(queuedLanes.rate)} conn/s; 1 lane +${us(queuedLanes.p50 - plainLanes.p50)} p50`,
      baseline: `${f(plainLanes.rate)} conn/s (no queue)`,
      ratio: formatRatio(queuedLanes.rate, plainLanes.rate),
      met: null,
    });
    reportMeasure({
      measure: 'nfqueue: socket lookup by sock_diag',
      goal: '',
      measured: `${(1e6 / lookup.diag).toFixed(1)} us`,
      baseline: `${(1e6 / lookup.proc).toFixed(0)} us (/proc/net/tcp)`,
      ratio: formatRatio(lookup.proc, lookup.diag),
      met: null,
    });
  } finally {
    pair.close();
  }
}

if (process.argv[2] === 'worker') await worker(process.argv[3]!);
else if (process.argv[2] === 'consumer') consumer(Number(process.argv[3] ?? 0));
else await main();
