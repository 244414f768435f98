/**
 * Rule counters benchmark (issue 14 item 4): reading the kernel's named counters of 10,000
 * kernel-decided rules the way the engine does, by netlink dumps in its namespace
 * (readRuleCounters: the counter objects of inline rules and the per-element counters of the
 * counted sets), against a same-run baseline: nft listing the same, `nft -j list table inet
 * warden` (nft reads element counters only with the set). The engine reads every 30 s and on
 * rules.list. Also the engine-side count per decision (RuleCounters.hit, a typed array).
 * Needs root (a throwaway namespace, test/kernel/netns.ts); skipped otherwise.
 * Run: npm run bench:rule-counters (BENCH_RULES=1000 for a quick run)
 */
import { execFileSync } from 'node:child_process';
import { performance } from 'node:perf_hooks';
import { RuleCounters } from '../src/engine/rule-counters.js';
import { applyRuleset, removeRuleset } from '../src/kernel/nft.js';
import { compileRuleset } from '../src/kernel/ruleset.js';
import { compilePolicy, validatePolicy } from '../src/policy/index.js';
import { validateSettings } from '../src/settings/index.js';
import { createNetnsPair, kernelTestsUnavailable } from '../test/kernel/netns.js';
import { formatRatio, reportMeasure } from './report.js';

const RULES = Number(process.env.BENCH_RULES ?? (process.env.BENCH_QUICK === '1' ? 1000 : 10_000));
const RUNS = Number(process.env.BENCH_RUNS ?? 15);

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

const rules = Array.from({ length: RULES }, (_, i) => ({
  name: `r${i}`,
  direction: 'outgoing',
  protocol: 'tcp',
  remote: `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`,
  remotePorts: 1000 + (i % 1000),
  action: Math.floor(i / 1000) % 2 === 0 ? 'deny' : 'allow',
}));
const settings = validateSettings({});
const policy = compilePolicy(validatePolicy({ rules }), { settings });

const skip = kernelTestsUnavailable();
if (skip !== undefined) {
  console.log(`rule counters: kernel part skipped (${skip})`);
} else {
  const pair = createNetnsPair('bc');
  const target = { netns: pair.path(pair.client) };
  try {
    const ruleset = compileRuleset({ policy, settings, now: Date.now() });
    await applyRuleset(ruleset, target);
    const counters = Object.keys(ruleset.counters).length;
    // The engine reads in its own namespace: so does this child, RUNS times, printing each time.
    const nft = new URL('../src/kernel/nft.js', import.meta.url).href;
    const script = `const { readRuleCounters } = await import(${JSON.stringify(nft)});
      const sets = ${JSON.stringify(ruleset.model.countedSets)};
      const ms = []; let size = 0;
      for (let i = 0; i < ${RUNS}; i++) {
        const t = performance.now(); size = readRuleCounters(sets).size; ms.push(performance.now() - t);
      }
      console.log(JSON.stringify({ ms, size }));`;
    const child = JSON.parse(
      execFileSync(
        'nsenter',
        [`--net=${target.netns}`, process.execPath, '--input-type=module', '-e', script],
        {
          encoding: 'utf8',
        },
      ),
    ) as { ms: number[]; size: number };
    if (child.size !== counters) throw new Error(`read ${child.size} counters, the ruleset has ${counters}`);
    const session = child.ms;
    const fresh: number[] = [];
    for (let i = 0; i < RUNS; i++) {
      const t = performance.now();
      execFileSync('nsenter', [`--net=${target.netns}`, 'nft', '-j', 'list', 'table', 'inet', 'warden'], {
        maxBuffer: 64 << 20,
      });
      fresh.push(performance.now() - t);
    }
    const ms = median(session);
    const base = median(fresh);
    console.log(
      `rule counters: ${counters} kernel counters read in ${ms.toFixed(2)} ms by a netlink dump, ` +
        `${base.toFixed(1)} ms by a new nft process (median of ${RUNS}); every 30 s that is ` +
        `${((ms / 30_000) * 100).toFixed(3)}% of a core`,
    );
    reportMeasure({
      measure: `rule counters: kernel read at ${RULES.toLocaleString('en')} rules`,
      goal: '',
      measured: `${ms.toFixed(2)} ms`,
      baseline: `${base.toFixed(1)} ms (nft -j list table)`,
      ratio: formatRatio(ms, base),
      met: null,
    });
  } finally {
    await removeRuleset(target).catch(() => undefined);
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
