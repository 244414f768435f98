/**
 * Policy evaluation benchmark: the indexed evaluator against the linear
 * reference, measured in the same run on the same rules and connections, for
 * 10 to 100,000 rules. Prints decisions per second, median ns per decision,
 * their ratio, and how the indexed cost grows from 100 to 100,000 rules.
 * Two traffic patterns: "uniform" (20,000 distinct connections in random
 * order: every decision starts from cold memory, the worst case) and "zipf"
 * (the same connections with Zipf-distributed popularity, as on a real host).
 * Compiling is timed after a full garbage collection: the YAML parse of the rules just before it
 * leaves its garbage (hundreds of megabytes at 100,000 rules), whose collection is the parse's
 * cost, and fell inside the compile's time when it came due there.
 * Run: npm run bench:policy   (BENCH_SIZES=10,1000 to pick sizes; BENCH_QUICK=1: 100 and 100,000
 * rules with short timing budgets)
 */
import { performance } from 'node:perf_hooks';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import type { ConnectionFacts } from '../src/policy/index.js';
import {
  type CompiledPolicy,
  compilePolicy,
  findFirstMatch,
  findFirstMatchLinear,
} from '../src/policy/index.js';
import { generateConnections, generateRuleset, zipfSequence } from './corpus/ruleset.js';
import { formatRatio, reportMeasure } from './report.js';

interface Measure {
  perSecond: number;
  medianNs: number;
}

/** Times `decideOne` over the connections in batches; the median is over per-batch averages. */
function measure(
  decideOne: (f: ConnectionFacts) => number,
  conns: readonly ConnectionFacts[],
  budgetMs: number,
): Measure {
  // Warm up so the JIT has compiled the hot path.
  let sink = 0;
  const warmEnd = performance.now() + Math.min(200, budgetMs / 4);
  for (let i = 0; performance.now() < warmEnd; i++) sink += decideOne(conns[i % conns.length]!);
  const samples: number[] = [];
  let total = 0;
  let count = 0;
  let batch = 16;
  const end = performance.now() + budgetMs;
  let i = 0;
  while (performance.now() < end || samples.length < 5) {
    const t0 = performance.now();
    for (let k = 0; k < batch; k++) sink += decideOne(conns[i++ % conns.length]!);
    const dt = performance.now() - t0;
    samples.push((dt * 1e6) / batch);
    total += dt;
    count += batch;
    if (dt < 0.5 && batch < 65536) batch *= 2;
  }
  if (sink === Number.MIN_SAFE_INTEGER) console.log(sink);
  samples.sort((a, b) => a - b);
  return { perSecond: (count / total) * 1000, medianNs: samples[Math.floor(samples.length / 2)]! };
}

/**
 * This machine's time for one load that depends on the one before, from a random cache line of
 * `bytes` of memory (a pointer chase over a random cycle of lines): what one cache miss of a
 * decision costs when the index no longer fits in the caches. Median of three passes.
 */
function dependentLoadNs(bytes: number): number {
  const LINE = 16; // Int32 slots in a 64-byte line
  const lines = bytes / 64;
  const order = new Int32Array(lines);
  for (let i = 0; i < lines; i++) order[i] = i;
  let seed = 12345;
  for (let i = lines - 1; i > 0; i--) {
    seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
    const j = seed % (i + 1);
    const t = order[i]!;
    order[i] = order[j]!;
    order[j] = t;
  }
  const next = new Int32Array(lines * LINE);
  for (let i = 0; i < lines; i++) next[order[i]! * LINE] = order[(i + 1) % lines]! * LINE;
  const STEPS = 2_000_000;
  const passes: number[] = [];
  let at = 0;
  for (let pass = 0; pass < 4; pass++) {
    const t0 = performance.now();
    for (let i = 0; i < STEPS; i++) at = next[at]!;
    // The first pass brings the pages in; it is not counted.
    if (pass > 0) passes.push(((performance.now() - t0) * 1e6) / STEPS);
  }
  if (at === -1) console.log(at);
  passes.sort((a, b) => a - b);
  return passes[1]!;
}

function fmt(n: number, digits = 0): string {
  return n.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: digits });
}

setFlagsFromString('--expose-gc');
/** A full garbage collection (V8's `gc`, exposed at run time). */
const collectGarbage = runInNewContext('gc') as () => void;

const QUICK = process.env.BENCH_QUICK === '1';
const sizes = (process.env.BENCH_SIZES ?? (QUICK ? '100,100000' : '10,100,1000,10000,100000'))
  .split(',')
  .map(Number);
for (const n of sizes)
  if (!Number.isInteger(n) || n <= 0) throw new Error(`BENCH_SIZES: ${n} is not a rule count`);
/** Timing budget per measure, and for the (slow) linear scan at 100k rules. */
const BUDGET_MS = QUICK ? 300 : 1500;
const LINEAR_BIG_MS = QUICK ? 600 : 4000;
const DISTINCT = 20_000;
const conns = (shapes: Parameters<typeof generateConnections>[0]) => generateConnections(shapes, DISTINCT);
const zipf = zipfSequence(DISTINCT, 200_000);

console.log(`policy evaluation benchmark (node ${process.version}, ${new Date().toISOString()})`);
console.log(
  'indexed = compiled evaluator the engine uses; linear = reference scan; same rules and connections, same run;',
);
console.log(
  "compile ms: after a full garbage collection of the rules' YAML parse (wall; the CPU time beside it at 100,000)\n",
);
const header = [
  'rules',
  'compile ms',
  'indexed dec/s',
  'indexed ns (median)',
  'linear dec/s',
  'linear ns (median)',
  'speed-up',
  'zipf indexed ns',
  'zipf linear ns',
  'zipf speed-up',
  'matched',
];
console.log(header.join(' | '));
console.log(header.map((h) => '-'.repeat(h.length)).join('-|-'));
const indexedNs = new Map<number, number>();
const zipfNs = new Map<number, number>();
const compileMsAt = new Map<number, { wall: number; cpu: number }>();
for (const size of sizes) {
  const { policy, shapes } = generateRuleset(size);
  collectGarbage();
  const t0 = performance.now();
  const cpu0 = process.cpuUsage();
  const compiled: CompiledPolicy = compilePolicy(policy);
  const compileMs = performance.now() - t0;
  const cpu = process.cpuUsage(cpu0);
  compileMsAt.set(size, { wall: compileMs, cpu: (cpu.user + cpu.system) / 1000 });
  const cs = conns(shapes);
  // Both evaluators must agree before their speed means anything.
  let matched = 0;
  for (let i = 0; i < 2000; i++) {
    const f = cs[i]!;
    const a = findFirstMatch(compiled, f);
    if (a !== findFirstMatchLinear(compiled, f))
      throw new Error(`evaluators disagree at ${size} rules, connection ${i}`);
    if (a >= 0) matched++;
  }
  const linearMs = size >= 100_000 ? LINEAR_BIG_MS : BUDGET_MS;
  const indexed = measure((f) => findFirstMatch(compiled, f), cs, BUDGET_MS);
  const linear = measure((f) => findFirstMatchLinear(compiled, f), cs, linearMs);
  const zipfConns = Array.from(zipf, (i) => cs[i]!);
  const zIndexed = measure((f) => findFirstMatch(compiled, f), zipfConns, BUDGET_MS);
  const zLinear = measure((f) => findFirstMatchLinear(compiled, f), zipfConns, linearMs);
  indexedNs.set(size, indexed.medianNs);
  zipfNs.set(size, zIndexed.medianNs);
  console.log(
    [
      fmt(size),
      fmt(compileMs, 1),
      fmt(indexed.perSecond),
      fmt(indexed.medianNs, 1),
      fmt(linear.perSecond),
      fmt(linear.medianNs, 1),
      `${fmt(linear.medianNs / indexed.medianNs, 1)}x`,
      fmt(zIndexed.medianNs, 1),
      fmt(zLinear.medianNs, 1),
      `${fmt(zLinear.medianNs / zIndexed.medianNs, 1)}x`,
      `${fmt((matched / 2000) * 100, 0)}%`,
    ].join(' | '),
  );
}
for (const [pattern, m] of [
  ['uniform', indexedNs],
  ['zipf', zipfNs],
] as const) {
  const small = m.get(100);
  const big = m.get(100_000);
  if (small === undefined || big === undefined) continue;
  reportMeasure({
    measure: `policy: decision at 100,000 rules, ${pattern}`,
    goal: '<= 2x the 100-rule cost',
    measured: `${fmt(big, 0)} ns`,
    baseline: `${fmt(small, 0)} ns (100 rules)`,
    ratio: formatRatio(big, small),
    met: big / small <= 2,
  });
}
const big = compileMsAt.get(100_000);
if (big !== undefined) {
  reportMeasure({
    measure: 'policy: compile 100,000 rules',
    goal: '<= 1 s',
    measured: `${fmt(big.wall, 0)} ms (${fmt(big.cpu, 0)} ms CPU)`,
    baseline: '',
    ratio: '',
    met: big.wall <= 1000,
  });
}
// What the decision's growth is made of here: at 100,000 rules the index is tens of megabytes and a
// decision's few dependent loads come from memory, each costing about what this prints.
const small = indexedNs.get(100);
const loadNs = dependentLoadNs(64 * 1024 * 1024);
console.log(
  `\none dependent load from a random line of 64 MB on this machine: ${fmt(loadNs, 1)} ns${small === undefined ? '' : ` (the whole decision at 100 rules: ${fmt(small, 1)} ns)`}`,
);
reportMeasure({
  measure: 'policy: one dependent load from memory (64 MB), this machine',
  goal: '',
  measured: `${fmt(loadNs, 1)} ns`,
  baseline: small === undefined ? '' : `${fmt(small, 0)} ns (a whole decision at 100 rules)`,
  ratio: small === undefined ? '' : formatRatio(loadNs, small),
  met: null,
});
const growth = (m: Map<number, number>) => {
  const small = m.get(100);
  const big = m.get(100_000);
  return small === undefined || big === undefined ? 'n/a' : `${fmt(big / small, 2)}x`;
};
console.log(
  `\nindexed cost growth 100 -> 100,000 rules: uniform ${growth(indexedNs)}, zipf ${growth(zipfNs)} (target <= 2x)`,
);
const at10k = indexedNs.get(10_000);
const zAt10k = zipfNs.get(10_000);
if (at10k !== undefined && zAt10k !== undefined) {
  console.log(
    `indexed median at 10,000 rules: uniform ${fmt(at10k, 1)} ns, zipf ${fmt(zAt10k, 1)} ns (target <= 1,000 ns)`,
  );
}
