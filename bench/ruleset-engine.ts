/**
 * Run by bench/ruleset.bench.ts inside a throwaway namespace (not on its own): the two whole-table
 * steps as the engine takes them in its own namespace, where the table's names and element counts
 * come from netlink dumps, each against the same step with the table read through nft (the path
 * of another namespace, as before), same table, alternating:
 * - the check after a full load (verifyRuleset) against `nft -j list table`;
 * - a full reload in place (applyRuleset without the previous ruleset) against the same reload
 *   whose names come from nft's listing.
 * The nft side reaches this namespace through nsenter (`--net=/proc/self/ns/net`), one exec more per
 * process it starts: a few milliseconds of its figure are that.
 * Prints one JSON line: medians in milliseconds.
 *   node dist/bench/ruleset-engine.js RULES RUNS
 */
import { performance } from 'node:perf_hooks';
import { applyRuleset, removeRuleset, verifyRuleset } from '../src/kernel/nft.js';
import { compileRuleset } from '../src/kernel/ruleset.js';
import { compilePolicy, validatePolicy } from '../src/policy/index.js';
import { validateSettings } from '../src/settings/index.js';
import { simpleRules } from './corpus/ruleset.js';
import { median } from './report.js';

const [rules, runs] = process.argv.slice(2).map(Number) as [number, number];
const settings = validateSettings({});
const compiled = compileRuleset({
  policy: compilePolicy(validatePolicy({ rules: simpleRules(rules) }), { settings }),
  settings,
  now: Date.now(),
});
/** This namespace through nsenter: nft reads the table, as for any other namespace. */
const byNft = { netns: '/proc/self/ns/net' };

async function time(f: () => Promise<unknown>): Promise<number> {
  const t = performance.now();
  await f();
  return performance.now() - t;
}

const out = {
  check: [] as number[],
  checkByNft: [] as number[],
  reload: [] as number[],
  reloadByNft: [] as number[],
};
try {
  await applyRuleset(compiled);
  for (let i = 0; i < runs; i++) {
    out.check.push(
      await time(async () => {
        if (!(await verifyRuleset(compiled)).ok) throw new Error('the table differs');
      }),
    );
    out.checkByNft.push(await time(() => verifyRuleset(compiled, byNft)));
    out.reload.push(await time(() => applyRuleset(compiled)));
    out.reloadByNft.push(await time(() => applyRuleset(compiled, byNft)));
  }
} finally {
  await removeRuleset();
}
console.log(JSON.stringify(Object.fromEntries(Object.entries(out).map(([k, v]) => [k, median(v)]))));
