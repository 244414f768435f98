/**
 * The verdict cache across a policy change (src/engine/verdict-cache.ts, carryOver): a change
 * starts a new generation, and the entries of the old one that the new policy decides alike are
 * inserted anew, so the programs' next connections stay in the kernel instead of all going back
 * to the queue. This measures what that costs the engine: ENTRIES entries (programs and
 * destinations allowed by a policy of RULES rules), carried over from one policy to the next (one
 * unrelated rule added, then removed: every entry is kept), against the same run's baseline: the
 * same decisions by `decide` alone, which any way of keeping them must make. The kernel map's
 * update (one bpf system call per entry kept, about a microsecond) is not in either figure: the
 * maps here are a Map, so that the engine's own work is what is measured, without root.
 *
 * Then, as root (in a namespace pair, the BPF programs on a cgroup of this bench's own), what it is
 * for: `wardend run` with the verdict cache, one node program connecting to FIRST_PORTS
 * destinations one at a time (each an entry once known), then an unrelated rule added through the
 * administration protocol and the same connections again: their latency after the change against
 * the same connections' just before it (cache hits), and how many were queued again.
 *
 * Run: npm run bench:verdict-cache (BENCH_QUICK=1: fewer rounds)
 */
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import type { VerdictCacheOptions } from '../src/engine/verdict-cache.js';
import { VerdictCache } from '../src/engine/verdict-cache.js';
import { parseIp } from '../src/ip/index.js';
import type { RecordedProcess } from '../src/kernel/socket-lookup.js';
import {
  type CompiledPolicy,
  type ConnectionFacts,
  compilePolicy,
  decide,
  parsePolicyText,
} from '../src/policy/index.js';
import { startKernelEngine } from '../test/adversarial/kernel-engine.js';
import { cgroupTestsUnavailable, createTestCgroup } from '../test/kernel/cgroup.js';
import { kernelTestsUnavailable, SERVER_ADDR } from '../test/kernel/netns.js';
import { connectEach, quantile } from './connect-loop.js';
import { formatRatio, reportMeasure } from './report.js';

const ENTRIES = 10_000;
const RULES = 1_000;
const APPS = 200;
const ROUNDS = process.env.BENCH_QUICK === '1' ? 4 : 12;

const app = (i: number) => `/usr/bin/program-${i}`;

/** RULES allows, each for one program, a network and a port range; the default allows and logs. */
function policyText(extra: string): string {
  const lines = [
    'defaults:',
    '  incoming: { action: deny, log: true }',
    '  outgoing: { action: allow, log: true }',
    'rules:',
  ];
  for (let r = 0; r < RULES; r++)
    lines.push(
      `  - { name: r${r}, direction: outgoing, protocol: tcp, application: ${app(r % APPS)}, remote: 10.${r % 250}.0.0/16, remotePorts: "${1000 + r}-${1100 + r}", action: allow, log: true }`,
    );
  return `${lines.join('\n')}\n${extra}`;
}

/** The cache's maps as a Map (the kernel's LRU refuses a key it holds, and so does this). */
function memoryMaps(): VerdictCacheOptions['maps'] {
  const keys = new Map<string, number>();
  return {
    insert: (key, id) => {
      const text = key.toString('latin1');
      if (keys.has(text)) return false;
      keys.set(text, id);
      return true;
    },
    setGeneration: () => {},
    stats: () => ({ generation: 0, hits: 0, misses: 0, dropped: 0 }),
    drain: () => ({ events: Buffer.alloc(0), bootNs: 0 }),
  };
}

function carryCost(): void {
  const base = compilePolicy(parsePolicyText(policyText('')));
  const changed = compilePolicy(
    parsePolicyText(
      policyText(
        '  - { name: unrelated, direction: outgoing, protocol: tcp, application: /usr/bin/another, action: deny }\n',
      ),
    ),
  );
  let inForce: CompiledPolicy = base;
  const cache = new VerdictCache({
    maps: memoryMaps(),
    capacity: 65_536,
    node: '/usr/bin/node',
    parts: [],
    policy: () => inForce,
    log: () => {},
  });
  const facts: ConnectionFacts[] = [];
  for (let i = 0; i < ENTRIES; i++) {
    const r = i % RULES;
    const f: ConnectionFacts = {
      direction: 'outgoing',
      protocol: 'tcp',
      application: app(r % APPS),
      uid: 1000,
      user: 'alice',
      localAddress: parseIp('10.200.0.1'),
      localPort: 40000 + (i % 20000),
      // Half inside their rule's network and ports, half decided by the default.
      remoteAddress: parseIp(
        i % 2 === 0 ? `10.${r % 250}.${(i >> 8) & 255}.${i & 255}` : `192.0.${(i >> 8) & 255}.${i & 255}`,
      ),
      remotePort: i % 2 === 0 ? 1000 + r + (i % 100) : 443,
      remoteHosts: [],
      now: Date.now(),
    };
    const record: RecordedProcess = {
      pid: 1000 + (r % APPS),
      uid: 1000,
      bootNs: 1,
      comm: 'program',
      hook: 'connect',
      euid: 1000,
      executable: {
        id: `42:2049:${100000 + (r % APPS)}:7:1700000000.123456789:deadbeefcafef00d`,
        mount: 42,
        inode: String(100000 + (r % APPS)),
        fsMagic: 0xef53,
      },
    };
    const decision = decide(base, f);
    if (
      !cache.offer(
        { verdict: 'accept', decision, facts: f, process: { executable: f.application! } },
        record,
        base,
      )
    )
      throw new Error(`entry ${i} not inserted: ${JSON.stringify(cache.status().skipped)}`);
    facts.push(f);
  }
  const carryMs: number[] = [];
  const decideMs: number[] = [];
  let sink = 0;
  for (let round = 0; round < ROUNDS; round++) {
    // The change and back, each carrying every entry over; the decisions alone in between.
    inForce = inForce === base ? changed : base;
    const t0 = performance.now();
    cache.clear();
    while (cache.carryOver(128, inForce));
    carryMs.push(performance.now() - t0);
    const t1 = performance.now();
    for (const f of facts) sink += decide(inForce, { ...f, now: Date.now() }).ruleIndex;
    decideMs.push(performance.now() - t1);
  }
  if (sink === Number.MIN_SAFE_INTEGER) console.log(sink);
  const s = cache.status();
  if (s.carried !== ENTRIES * ROUNDS || s.notCarried !== 0)
    throw new Error(`expected every entry kept: ${JSON.stringify(s)}`);
  // The first rounds warm the JIT: the median of the rest.
  const median = (a: number[]) => a.slice(2).sort((x, y) => x - y)[Math.floor((a.length - 2) / 2)]!;
  const carry = median(carryMs);
  const alone = median(decideMs);
  const us = (ms: number) => ((ms * 1000) / ENTRIES).toFixed(2);
  console.log(
    `${ENTRIES.toLocaleString('en-US')} entries of ${APPS} programs, ${RULES.toLocaleString('en-US')} rules, ${ROUNDS} changes (median of the last ${ROUNDS - 2})`,
  );
  console.log(`carried over: ${carry.toFixed(1)} ms a change, ${us(carry)} us an entry (all kept)`);
  console.log(`the decisions alone: ${alone.toFixed(1)} ms, ${us(alone)} us an entry`);
  reportMeasure({
    measure: `verdict cache: entries kept across a policy change (${ENTRIES.toLocaleString('en-US')} entries, ${RULES.toLocaleString('en-US')} rules), per entry, without the map's system call`,
    goal: '',
    measured: `${us(carry)} us`,
    baseline: `${us(alone)} us (the decision alone)`,
    ratio: formatRatio(carry, alone),
    met: null,
  });
}

/** Destinations a program knows (its entries) in the kernel part, and the servers' first port. */
const FIRST_PORTS = 48;
const PORT = 9000;
const SELF = fileURLToPath(import.meta.url);

/** One connection to each of `count` ports from PORT, one at a time: latencies in ms, on stdout. */
async function connectWorker(count: number): Promise<void> {
  process.stdout.write(JSON.stringify(await connectEach(SERVER_ADDR, PORT, count)));
}

interface CacheCounts {
  readonly hits: number;
  readonly misses: number;
  readonly carried: number;
}

async function acrossAChange(): Promise<void> {
  const why = kernelTestsUnavailable() ?? cgroupTestsUnavailable() ?? undefined;
  if (why !== undefined) {
    console.log(`connections after a change: skipped (${why})`);
    return;
  }
  const group = createTestCgroup('bench-carry');
  const k = await startKernelEngine(
    'bv',
    44378,
    'version: 1\ndefaults:\n  incoming: { action: deny, log: true }\n  outgoing: { action: allow, log: true }\nrules: []\n',
    'enforcement:\n  floodOutgoingPerUid: 0\n',
    group,
  );
  try {
    k.pair.spawn(k.pair.server, process.execPath, [
      '-e',
      `const net = require('node:net'); for (let p = ${PORT}; p < ${PORT + FIRST_PORTS}; p++) net.createServer((c) => c.on('error', () => {})).listen(p, 4096);`,
    ]);
    await new Promise((r) => setTimeout(r, 500));
    // The worker moves itself into the cgroup before exec'ing, so the engine's programs see it.
    const connectAll = () =>
      (
        JSON.parse(
          execFileSync(
            '/bin/sh',
            [
              '-c',
              `echo $$ > '${join(group.path, 'cgroup.procs')}' && exec "$0" "$@"`,
              'nsenter',
              `--net=${k.pair.path(k.pair.client)}`,
              process.execPath,
              SELF,
              'connect',
              String(FIRST_PORTS),
            ],
            { encoding: 'utf8' },
          ),
        ) as number[]
      ).sort((a, b) => a - b);
    const counts = async () =>
      ((await k.call('engine.status', {})) as { verdictCache: CacheCounts }).verdictCache;
    // The first run names node from /proc, the second inserts each destination.
    connectAll();
    connectAll();
    const before: number[] = [];
    const after: number[] = [];
    const start = await counts();
    const rounds = process.env.BENCH_QUICK === '1' ? 2 : 6;
    for (let round = 0; round < rounds; round++) {
      before.push(...connectAll());
      await k.call('rules.add', {
        rule: {
          name: `unrelated ${round}`,
          direction: 'outgoing',
          protocol: 'tcp',
          application: '/usr/bin/wget',
          action: 'deny',
        },
      });
      after.push(...connectAll());
    }
    const end = await counts();
    before.sort((a, b) => a - b);
    after.sort((a, b) => a - b);
    const ms = (q: number, a: number[]) => quantile(a, q).toFixed(3);
    const connections = rounds * FIRST_PORTS;
    console.log(
      `a program's ${FIRST_PORTS} destinations, ${rounds} changes: just before each change p50 ${ms(0.5, before)} ms, p90 ${ms(0.9, before)} ms; just after p50 ${ms(0.5, after)} ms, p90 ${ms(0.9, after)} ms`,
    );
    console.log(
      `entries kept: ${end.carried - start.carried} of ${connections}; queued: ${end.misses - start.misses} of the ${2 * connections} connections, hits ${end.hits - start.hits}`,
    );
    reportMeasure({
      measure: `verdict cache: a program's connections to its ${FIRST_PORTS} known destinations right after a policy change, p50 (queued again: ${end.misses - start.misses} of ${2 * connections})`,
      goal: '',
      measured: `${ms(0.5, after)} ms`,
      baseline: `${ms(0.5, before)} ms (just before the change)`,
      ratio: formatRatio(quantile(after, 0.5), quantile(before, 0.5)),
      met: null,
    });
  } finally {
    k.close();
    await group.remove();
  }
}

if (process.argv[2] === 'connect') await connectWorker(Number(process.argv[3]));
else {
  carryCost();
  await acrossAChange();
}
