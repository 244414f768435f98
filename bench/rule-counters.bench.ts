/**
 * Rule counters benchmark (issue 14 item 4): reading the kernel's counters of 10,000
 * kernel-decided rules the way the engine does (readRuleCounters: netlink dumps of the counter
 * objects and of the counted sets' elements on a thread of the libuv pool, each element mapped
 * back to its rule by its key), in a process inside a throwaway namespace
 * (test/kernel/fixtures/ruleset-agent.ts), against a same-run baseline: nft listing the same,
 * `nft -j list table inet warden` (nft reads element counters only with the set). Every rule is
 * first matched by a connection attempt, so every counter is above 0 (the dump leaves out those
 * at 0): the worst case of the read. Measured: the read's duration and the longest the event loop
 * waited meanwhile (a 1 ms timer's worst lateness; goal <= 2 ms: the read must not block the
 * engine's verdicts), against the same wait over an idle loop and over an idle loop while another
 * thread of the process computes as long as the read took (on a loaded 2-core machine a busy
 * thread alone delays the loop's timers: that part is the machine's, not the read's JS). The engine reads every 30 s and on rules.list. Also the engine-side count
 * per decision (RuleCounters.hit, a typed array).
 * Needs root (test/kernel/netns.ts); the kernel part is skipped otherwise.
 * Run: npm run bench:rule-counters (BENCH_RULES=1000 for a quick run)
 */
import { execFileSync } from 'node:child_process';
import { performance } from 'node:perf_hooks';
import { RuleCounters } from '../src/engine/rule-counters.js';
import { compilePolicy, validatePolicy } from '../src/policy/index.js';
import { fixture } from '../test/kernel/fixture-process.js';
import { createNetnsPair, kernelTestsUnavailable } from '../test/kernel/netns.js';
import { formatRatio, reportMeasure } from './report.js';

const RULES = Number(process.env.BENCH_RULES ?? (process.env.BENCH_QUICK === '1' ? 1000 : 10_000));
const RUNS = Number(process.env.BENCH_RUNS ?? 15);

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

const address = (i: number) => `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`;
const rules = Array.from({ length: RULES }, (_, i) => ({
  name: `r${i}`,
  direction: 'outgoing',
  protocol: 'tcp',
  remote: address(i),
  remotePorts: 1000 + (i % 1000),
  action: Math.floor(i / 1000) % 2 === 0 ? 'deny' : 'allow',
}));
const policy = compilePolicy(validatePolicy({ rules }));

/** One connection attempt per rule from the namespace (not waited for: the SYN is what counts). */
const touchEveryRule = `const net = require('node:net'); const n = ${RULES}; let left = n;
  const addr = (i) => '10.' + ((i >> 16) & 255) + '.' + ((i >> 8) & 255) + '.' + (i & 255);
  for (let i = 0; i < n; i++) {
    const s = net.connect({ host: addr(i), port: 1000 + (i % 1000) });
    const done = () => { s.destroy(); if (--left === 0) process.exit(0); };
    s.on('error', done); s.setTimeout(200, done); s.on('connect', done);
  }`;

const skip = kernelTestsUnavailable();
if (skip !== undefined) {
  console.log(`rule counters: kernel part skipped (${skip})`);
} else {
  const pair = createNetnsPair('bc');
  const agent = fixture(pair, pair.client, 'ruleset-agent.js', []);
  try {
    await agent.next((l) => l.event === 'ready', 'ready');
    let id = 0;
    const ask = async (request: Record<string, unknown>) => {
      const n = ++id;
      agent.send(JSON.stringify({ id: n, ...request }));
      const answer = await agent.next((l) => l.id === n, `answer ${n}`, 60_000);
      if (answer.error !== undefined) throw new Error(String(answer.error));
      return answer;
    };
    await ask({ rules });
    // The rules' addresses are routed out of the namespace (nothing answers; the SYN is counted).
    pair.run(pair.client, 'ip', ['route', 'add', '10.0.0.0/8', 'via', '10.200.0.2']);
    pair.run(pair.client, process.execPath, ['-e', touchEveryRule]);
    const ms: number[] = [];
    const blocked: number[] = [];
    const idle: number[] = [];
    const spun: number[] = [];
    let counted = 0;
    for (let i = 0; i < RUNS; i++) {
      const r = await ask({ read: true });
      ms.push(r.ms as number);
      blocked.push(r.blockedMs as number);
      counted = Object.keys(r.counts as object).length;
      // The same wait with nothing to do: what the shared machine alone costs a 1 ms timer.
      idle.push((await ask({ idleMs: Math.ceil(r.ms as number) })).blockedMs as number);
      // And with another thread busy that long, the event loop idle: what the dump's thread costs it.
      spun.push((await ask({ spinMs: r.ms as number })).blockedMs as number);
    }
    if (counted !== RULES) throw new Error(`read ${counted} rules' counters above 0, expected ${RULES}`);
    const fresh: number[] = [];
    for (let i = 0; i < RUNS; i++) {
      const t = performance.now();
      execFileSync(
        'nsenter',
        [`--net=${pair.path(pair.client)}`, 'nft', '-j', 'list', 'table', 'inet', 'warden'],
        {
          maxBuffer: 64 << 20,
        },
      );
      fresh.push(performance.now() - t);
    }
    const read = median(ms);
    const stall = median(blocked);
    const idleStall = median(idle);
    const spinStall = median(spun);
    const base = median(fresh);
    console.log(
      `rule counters: ${counted} rules' kernel counters (all above 0) read in ${read.toFixed(2)} ms by netlink ` +
        `dumps off the event loop, ${base.toFixed(1)} ms by a new nft process (median of ${RUNS}); the event ` +
        `loop waited at most ${stall.toFixed(2)} ms meanwhile (median; worst ${Math.max(...blocked).toFixed(2)} ms; ` +
        `idle for as long: ${idleStall.toFixed(2)} ms, worst ${Math.max(...idle).toFixed(2)} ms; ` +
        `another thread busy for as long: ${spinStall.toFixed(2)} ms, worst ${Math.max(...spun).toFixed(2)} ms)`,
    );
    reportMeasure({
      measure: `rule counters: kernel read at ${RULES.toLocaleString('en')} rules`,
      goal: '',
      measured: `${read.toFixed(2)} ms`,
      baseline: `${base.toFixed(1)} ms (nft -j list table)`,
      ratio: formatRatio(read, base),
      met: null,
    });
    reportMeasure({
      measure: `rule counters: event loop blocked by a read at ${RULES.toLocaleString('en')} rules`,
      goal: '<= 2 ms',
      measured: `${stall.toFixed(2)} ms`,
      baseline: `${read.toFixed(2)} ms (the whole read, as a synchronous read blocked); idle ${idleStall.toFixed(2)} ms; a busy thread beside the loop ${spinStall.toFixed(2)} ms`,
      ratio: formatRatio(stall, read),
      met: stall <= 2,
    });
  } finally {
    agent.close();
    pair.close();
  }
}

// The engine's count per queued decision: one typed-array increment, against an empty loop.
const engine = new RuleCounters();
engine.bind(policy);
const N = 20_000_000;
let t = performance.now();
for (let i = 0; i < N; i++) engine.hit(i % RULES, i);
const hitNs = ((performance.now() - t) * 1e6) / N;
let sink = 0;
t = performance.now();
for (let i = 0; i < N; i++) sink += i % RULES;
const loopNs = ((performance.now() - t) * 1e6) / N;
if (engine.snapshot().get('user r0')?.matches === 0 || sink < 0) throw new Error('nothing counted');
console.log(
  `rule counters: engine count per decision ${hitNs.toFixed(2)} ns (empty loop ${loopNs.toFixed(2)} ns)`,
);
reportMeasure({
  measure: 'rule counters: engine count per queued decision',
  goal: 'no allocation (a typed array by rule slot)',
  measured: `${hitNs.toFixed(2)} ns`,
  baseline: `${loopNs.toFixed(2)} ns (empty loop)`,
  ratio: formatRatio(hitNs, loopNs),
  met: null,
});
