/**
 * Ruleset benchmark: compile time, text size and `nft -f` load time for 100, 1,000 and 10,000 simple
 * user rules (outgoing tcp to one address and port, alternating deny/allow in blocks) compiled to sets,
 * against a baseline of one nft rule per user rule written here. Loading needs root: it runs in a
 * throwaway namespace (test/kernel/netns.ts) and is skipped otherwise.
 * Run: npm run bench:ruleset
 */
import { execFileSync } from 'node:child_process';
import { performance } from 'node:perf_hooks';
import { compileRuleset } from '../src/kernel/ruleset.js';
import { compilePolicy, validatePolicy } from '../src/policy/index.js';
import { validateSettings } from '../src/settings/index.js';
import { createNetnsPair, kernelTestsUnavailable, type NetnsPair } from '../test/kernel/netns.js';

const SIZES = (process.env.BENCH_SIZES ?? '100,1000,10000').split(',').map(Number);

function simpleRules(n: number) {
  return Array.from({ length: n }, (_, i) => ({
    name: `r${i}`,
    direction: 'outgoing',
    protocol: 'tcp',
    remote: `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`,
    remotePorts: 1000 + (i % 1000),
    action: Math.floor(i / 1000) % 2 === 0 ? 'deny' : 'allow',
  }));
}

/** The naive translation: one nft rule per user rule, same table layout. */
function baselineText(rules: ReturnType<typeof simpleRules>): string {
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

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
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
} finally {
  pair?.close();
}
