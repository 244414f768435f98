/**
 * Ruleset benchmark: compile time, text size and `nft -f` load time for 100, 1,000 and 10,000 simple
 * user rules (outgoing tcp to one address and port, alternating deny/allow in blocks) compiled to sets,
 * against a baseline of one nft rule per user rule written here. Loading needs root: it runs in a
 * throwaway namespace (test/kernel/netns.ts) and is skipped otherwise.
 *
 * Then the figures of issue 12 goal 3, each against a same-run baseline:
 * - 10,000 and 100,000 rules compiled (compileRuleset) and loaded (applyRuleset into a namespace
 *   without the table, the queue rules included), against the naive one-rule-per-rule text;
 * - one rule added, changed and removed in the 10,000-rule table (applyRuleset with the previous
 *   ruleset: only the difference is sent), against the full reload of the same change (applyRuleset
 *   without the previous ruleset: the whole table is loaded in place, as before);
 * - without a goal: the check after a full load and a full reload in place as the engine takes them
 *   in its own namespace, against the same steps reading the table through nft (ruleset-engine.ts).
 * Run: npm run bench:ruleset (BENCH_SIZES=100,1000 and BENCH_BIG=0 for a quick run)
 */
import { execFileSync } from 'node:child_process';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { applyRuleset, removeRuleset } from '../src/kernel/nft.js';
import { type CompiledRuleset, compileRuleset } from '../src/kernel/ruleset.js';
import { compilePolicy, validatePolicy } from '../src/policy/index.js';
import { validateSettings } from '../src/settings/index.js';
import { createNetnsPair, kernelTestsUnavailable, type NetnsPair } from '../test/kernel/netns.js';
import { simpleRules } from './corpus/ruleset.js';
import { formatRatio, median, reportMeasure } from './report.js';

const SIZES = (process.env.BENCH_SIZES ?? '100,1000,10000').split(',').map(Number);
const BIG = Number(process.env.BENCH_BIG ?? 100_000);
const CHANGE_RUNS = Number(process.env.BENCH_CHANGE_RUNS ?? 9);
/** The engine's whole-table steps, run inside the namespace (bench/ruleset-engine.ts). */
const ENGINE_STEPS = fileURLToPath(new URL('./ruleset-engine.js', import.meta.url));

type SimpleRule = ReturnType<typeof simpleRules>[number];

/** The naive translation: one nft rule per user rule, same table layout. */
function baselineText(rules: readonly SimpleRule[]): string {
  const lines = rules.map(
    (r, i) =>
      `\t\tip daddr ${r.remote} tcp dport ${r.remotePorts} ${r.action === 'deny' ? `log group 4334 prefix "warden ${i} deny " drop` : 'accept'}`,
  );
  return [
    'table inet warden {}',
    'delete table inet warden',
    'table inet warden {',
    '\tchain output {',
    '\t\ttype filter hook output priority filter - 5; policy accept;',
    '\t\tct state established,related accept',
    ...lines,
    '\t}',
    '}',
    '',
  ].join('\n');
}

function timeLoad(pair: NetnsPair, text: string, runs = 3): number {
  const ms: number[] = [];
  for (let i = 0; i < runs; i++) {
    const t = performance.now();
    execFileSync('nsenter', [`--net=${pair.path(pair.client)}`, 'nft', '-f', '-'], { input: text });
    ms.push(performance.now() - t);
  }
  return median(ms);
}

const settings = validateSettings({});
const compileRules = (rules: readonly SimpleRule[]) =>
  compileRuleset({
    policy: compilePolicy(validatePolicy({ rules }), { settings }),
    settings,
    now: Date.now(),
  });

/** compileRuleset + applyRuleset into a namespace without the table, and the naive text's load. */
async function compileAndLoad(pair: NetnsPair, rules: readonly SimpleRule[], runs: number) {
  const policy = compilePolicy(validatePolicy({ rules }), { settings });
  const target = { netns: pair.path(pair.client) };
  const ours: number[] = [];
  const base: number[] = [];
  for (let i = 0; i < runs; i++) {
    await removeRuleset(target);
    const t = performance.now();
    await applyRuleset(compileRuleset({ policy, settings, now: Date.now() }), target);
    ours.push(performance.now() - t);
    await removeRuleset(target);
    const text = baselineText(rules);
    const b = performance.now();
    execFileSync('nsenter', [`--net=${target.netns}`, 'nft', '-f', '-'], { input: text });
    base.push(performance.now() - b);
  }
  await removeRuleset(target);
  return { ms: median(ours), baseline: median(base) };
}

/** One rule added, changed or removed: the change alone against the full reload, alternately. */
async function oneRuleChanges(pair: NetnsPair, rules: SimpleRule[]) {
  const target = { netns: pair.path(pair.client) };
  const original = compileRules(rules);
  const variants: Record<'added' | 'changed' | 'removed', CompiledRuleset> = {
    added: compileRules([
      ...rules,
      { ...rules[0]!, name: 'added', remote: '10.250.0.1', remotePorts: 443, action: 'allow' },
    ]),
    changed: compileRules(rules.map((r, i) => (i === rules.length / 2 ? { ...r, remotePorts: 4444 } : r))),
    removed: compileRules(rules.filter((_, i) => i !== Math.floor(rules.length * 0.55))),
  };
  const out: { what: string; ms: number; baseline: number }[] = [];
  await applyRuleset(original, target);
  for (const [what, next] of Object.entries(variants)) {
    const diff: number[] = [];
    const full: number[] = [];
    for (let i = 0; i < CHANGE_RUNS; i++) {
      // There and back: each timed call changes the table the previous one left.
      let t = performance.now();
      const how = await applyRuleset(next, target, original);
      diff.push(performance.now() - t);
      if (how !== 'changed') throw new Error(`one rule ${what}: applied as '${how}', not as a change`);
      await applyRuleset(original, target, next);
      t = performance.now();
      await applyRuleset(next, target);
      full.push(performance.now() - t);
      await applyRuleset(original, target);
    }
    out.push({ what, ms: median(diff), baseline: median(full) });
  }
  await removeRuleset(target);
  return out;
}

const skip = kernelTestsUnavailable();
const pair = skip === undefined ? createNetnsPair('bench') : undefined;
try {
  console.log(`ruleset benchmark${skip ? ` (no load times: ${skip})` : ''}`);
  console.log(
    'rules   compile ms  nft rules  elements  text KB  baseline KB  load ms  baseline load ms  load ratio',
  );
  for (const n of SIZES) {
    const rules = simpleRules(n);
    const policy = compilePolicy(validatePolicy({ rules }), { settings });
    const times: number[] = [];
    let out = compileRuleset({ policy, settings, now: Date.now() });
    for (let i = 0; i < 5; i++) {
      const t = performance.now();
      out = compileRuleset({ policy, settings, now: Date.now() });
      times.push(performance.now() - t);
    }
    const baseline = baselineText(rules);
    const load = pair ? timeLoad(pair, out.nft) : Number.NaN;
    const baseLoad = pair ? timeLoad(pair, baseline) : Number.NaN;
    console.log(
      [
        String(n).padStart(5),
        median(times).toFixed(1).padStart(11),
        String(out.stats.nftRules).padStart(10),
        String(out.stats.elements).padStart(9),
        (out.nft.length / 1024).toFixed(0).padStart(8),
        (baseline.length / 1024).toFixed(0).padStart(12),
        load.toFixed(0).padStart(8),
        baseLoad.toFixed(0).padStart(17),
        `${(baseLoad / load).toFixed(1)}x`.padStart(11),
      ].join(' '),
    );
  }
  if (pair) {
    console.log('\ncompileRuleset + applyRuleset into a namespace without the table (median)');
    for (const [n, goal, runs] of [
      [10_000, 150, 5],
      [BIG, 1000, 3],
    ] as const) {
      if (n <= 0) continue;
      const r = await compileAndLoad(pair, simpleRules(n), runs);
      console.log(
        `${String(n).padStart(7)} rules: ${r.ms.toFixed(0)} ms; naive one-rule-per-rule load ${r.baseline.toFixed(0)} ms`,
      );
      reportMeasure({
        measure: `ruleset: ${n.toLocaleString('en')} rules compiled and loaded`,
        goal: `<= ${goal} ms`,
        measured: `${r.ms.toFixed(0)} ms`,
        baseline: `${r.baseline.toFixed(0)} ms (one nft rule per rule, load only)`,
        ratio: formatRatio(r.ms, r.baseline),
        met: r.ms <= goal,
      });
    }
    console.log('\none rule changed in the 10,000-rule table: the change alone vs the full reload (median)');
    for (const c of await oneRuleChanges(pair, simpleRules(10_000))) {
      console.log(
        `  ${c.what.padEnd(8)} ${c.ms.toFixed(1).padStart(6)} ms   full reload ${c.baseline.toFixed(1).padStart(6)} ms   ${formatRatio(c.ms, c.baseline)} (${(c.baseline / c.ms).toFixed(0)}x faster)`,
      );
      reportMeasure({
        measure: `ruleset: one rule ${c.what} in the kernel (10k rules)`,
        goal: '<= 10 ms',
        measured: `${c.ms.toFixed(1)} ms`,
        baseline: `${c.baseline.toFixed(1)} ms (full reload)`,
        ratio: formatRatio(c.ms, c.baseline),
        met: c.ms <= 10,
      });
    }
    console.log(
      "\nthe engine's own namespace (bench/ruleset-engine.ts in the namespace): names and counts by netlink dumps, against nft's listing (median)",
    );
    for (const [n, runs] of [
      [10_000, 5],
      [BIG, 3],
    ] as const) {
      if (n <= 0) continue;
      const r = JSON.parse(
        pair
          .run(pair.client, process.execPath, [ENGINE_STEPS, String(n), String(runs)])
          .trim()
          .split('\n')
          .pop()!,
      ) as { check: number; checkByNft: number; reload: number; reloadByNft: number };
      const size = n.toLocaleString('en');
      console.log(
        `${String(n).padStart(7)} rules: check after a full load ${r.check.toFixed(1)} ms (nft ${r.checkByNft.toFixed(0)} ms); reload in place ${r.reload.toFixed(0)} ms (names from nft ${r.reloadByNft.toFixed(0)} ms)`,
      );
      reportMeasure({
        measure: `ruleset: the check after a full load, ${size} rules (the engine)`,
        goal: '',
        measured: `${r.check.toFixed(1)} ms`,
        baseline: `${r.checkByNft.toFixed(0)} ms (nft -j list table)`,
        ratio: formatRatio(r.check, r.checkByNft),
        met: null,
      });
      reportMeasure({
        measure: `ruleset: a full reload in place, ${size} rules (the engine)`,
        goal: '',
        measured: `${r.reload.toFixed(0)} ms`,
        baseline: `${r.reloadByNft.toFixed(0)} ms (the table's names from nft's listing)`,
        ratio: formatRatio(r.reload, r.reloadByNft),
        met: null,
      });
    }
  }
} finally {
  pair?.close();
}
