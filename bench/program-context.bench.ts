/**
 * Program-context rules (parent, ancestor, arguments): what they cost.
 * 1. Decisions: a generated policy of N rules with, ahead of them, 50 rules on the program context
 *    (parents, ancestors and globs over the command line), each for an application of the policy,
 *    against the same policy without them (the same-run baseline), on the same connections; and
 *    the same with 10 such rules for no application (checked for every connection).
 * 2. The glob: a 40-character segment searched through a 64 KiB command line that never holds it
 *    (a recursive matcher's worst case), against `*x*` (one character) on the same text.
 * 3. Gathering: parent and ancestors of a real process read from /proc the first time, against the
 *    same answer from the per-process cache.
 * Run: npm run bench:program-context   (BENCH_QUICK=1: 1,000 rules and short budgets)
 */
import { spawn } from 'node:child_process';
import { performance } from 'node:perf_hooks';
import { ProcessContextReader } from '../src/kernel/process-context.js';
import { compileGlob, globMatch } from '../src/policy/glob.js';
import {
  type CompiledPolicy,
  type ConnectionFacts,
  compilePolicy,
  findFirstMatch,
  type Policy,
  parsePolicyText,
} from '../src/policy/index.js';
import { generateConnections, generateRuleset } from './corpus/ruleset.js';
import { formatRatio, reportMeasure } from './report.js';

const quick = process.env.BENCH_QUICK === '1';
const RULES = quick ? 1000 : 10_000;
const BUDGET_MS = quick ? 300 : 1500;

/** Median ns per call over batches within the budget (after a warm-up). */
function nsPer(run: (i: number) => number, budgetMs = BUDGET_MS): number {
  let sink = 0;
  const warmEnd = performance.now() + Math.min(200, budgetMs / 4);
  for (let i = 0; performance.now() < warmEnd; i++) sink += run(i);
  const samples: number[] = [];
  const end = performance.now() + budgetMs;
  let i = 0;
  while (performance.now() < end) {
    const t0 = performance.now();
    for (let k = 0; k < 200; k++) sink += run(i++);
    samples.push(((performance.now() - t0) * 1e6) / 200);
  }
  if (sink === 0.5) console.log('');
  samples.sort((a, b) => a - b);
  return samples[Math.floor(samples.length / 2)]!;
}

const PARENTS = ['/usr/bin/bash', '/usr/bin/zsh', '/usr/sbin/sshd', '/usr/bin/fish', '/usr/bin/tmux'];

function contextRules(count: number, apps: readonly string[]): Policy['rules'] {
  const yaml = ['rules:'];
  for (let i = 0; i < count; i++) {
    const field =
      i % 3 === 0
        ? `parent: ${PARENTS[i % PARENTS.length]}`
        : i % 3 === 1
          ? `ancestor: ${PARENTS[i % PARENTS.length]}`
          : `arguments: "*--opt${i}=*[0-9]"`;
    const app = apps.length === 0 ? '' : `application: ${apps[i % apps.length]}, `;
    yaml.push(`  - { name: ctx${i}, direction: outgoing, ${app}${field}, action: deny }`);
  }
  return parsePolicyText(yaml.join('\n')).rules;
}

function decisions(): void {
  const { policy, shapes } = generateRuleset(RULES);
  const plain = compilePolicy(policy);
  const apps = [...new Set(policy.rules.map((r) => r.application).filter((a) => a !== 'any'))].slice(0, 50);
  const withContext = compilePolicy({ ...policy, rules: [...contextRules(50, apps), ...policy.rules] });
  const everyConnection = compilePolicy({ ...policy, rules: [...contextRules(10, []), ...policy.rules] });
  const conns = generateConnections(shapes, 20_000).map(
    (f): ConnectionFacts => ({
      ...f,
      parent: '/usr/bin/dash',
      ancestors: ['/usr/bin/dash', '/usr/lib/systemd/systemd'],
      arguments: `${f.application ?? 'prog'} --verbose --output=/tmp/x https://example.org/some/path`,
    }),
  );
  const run = (p: CompiledPolicy) => (i: number) => findFirstMatch(p, conns[i % conns.length]!) + 2;
  const base = nsPer(run(plain));
  const ctx = nsPer(run(withContext));
  const all = nsPer(run(everyConnection));
  console.log(
    `decision, ${RULES} rules: ${base.toFixed(0)} ns; with 50 program-context rules for applications first: ${ctx.toFixed(0)} ns; with 10 for any application: ${all.toFixed(0)} ns`,
  );
  reportMeasure({
    measure: `program context: decision at ${RULES} rules with 50 parent/ancestor/arguments rules (each for an application) first`,
    goal: '<= 1.5x the same policy without them',
    measured: `${ctx.toFixed(0)} ns`,
    baseline: `${base.toFixed(0)} ns (without)`,
    ratio: formatRatio(ctx, base),
    met: ctx <= base * 1.5,
  });
  reportMeasure({
    measure: `program context: decision at ${RULES} rules with 10 such rules for any application first`,
    goal: '',
    measured: `${all.toFixed(0)} ns`,
    baseline: `${base.toFixed(0)} ns (without)`,
    ratio: formatRatio(all, base),
    met: null,
  });
}

function globs(): void {
  const text = 'a'.repeat(65_536);
  const worst = compileGlob(`*${'a'.repeat(39)}b*`);
  const plain = compileGlob('*x*');
  if (!worst.ok || !plain.ok) throw new Error('bench globs do not compile');
  const w = nsPer(() => (globMatch(worst.glob, text) ? 1 : 2), BUDGET_MS / 2);
  const p = nsPer(() => (globMatch(plain.glob, text) ? 1 : 2), BUDGET_MS / 2);
  console.log(
    `glob over 64 KiB: a 40-character segment ${(w / 1000).toFixed(1)} µs, "*x*" ${(p / 1000).toFixed(1)} µs`,
  );
  reportMeasure({
    measure: 'program context: arguments glob *aaa...ab* (40 characters) over a 64 KiB command line of a',
    goal: '< 10x a one-character search (linear, no backtracking)',
    measured: `${(w / 1000).toFixed(1)} µs`,
    baseline: `${(p / 1000).toFixed(1)} µs ("*x*")`,
    ratio: formatRatio(w, p),
    met: w < p * 10,
  });
}

function median(xs: number[]): number {
  xs.sort((a, b) => a - b);
  return xs[Math.floor(xs.length / 2)]!;
}

async function gathering(): Promise<void> {
  // Two processes three levels below this one: sh -> sh -> sleep, sleep.
  const child = spawn('/bin/sh', ['-c', '/bin/sh -c "sleep 30 & echo \\$!; sleep 30 & echo \\$!; wait"'], {
    stdio: ['ignore', 'pipe', 'ignore'],
  });
  let out = '';
  await new Promise<void>((resolve) =>
    child.stdout!.on('data', (d) => {
      out += d;
      if (out.split('\n').length > 2) resolve();
    }),
  );
  const [first, second] = out.trim().split('\n').map(Number) as [number, number];
  try {
    const cold: number[] = [];
    const sibling: number[] = [];
    const cached: number[] = [];
    let depth = 0;
    for (let i = 0; i < (quick ? 100 : 400); i++) {
      const reader = new ProcessContextReader();
      const t0 = performance.now();
      depth = reader.contextOf(first, true).ancestors.length;
      const t1 = performance.now();
      reader.contextOf(second, true);
      const t2 = performance.now();
      reader.contextOf(second, true);
      const t3 = performance.now();
      cold.push((t1 - t0) * 1000);
      sibling.push((t2 - t1) * 1000);
      cached.push((t3 - t2) * 1000);
    }
    const [c, s, k] = [median(cold), median(sibling), median(cached)];
    console.log(
      `parent + ${depth} ancestors: first process ${c.toFixed(1)} µs, a new process of the same shell ${s.toFixed(1)} µs, cached ${k.toFixed(1)} µs`,
    );
    reportMeasure({
      measure: `program context: parent and ${depth} ancestors from /proc, a process of a shell seen before`,
      goal: '',
      measured: `${s.toFixed(1)} µs`,
      baseline: `${c.toFixed(1)} µs (nothing seen before)`,
      ratio: formatRatio(s, c),
      met: null,
    });
    reportMeasure({
      measure: 'program context: parent and ancestors of a process seen before (cache: one stat read)',
      goal: '',
      measured: `${k.toFixed(1)} µs`,
      baseline: `${c.toFixed(1)} µs (nothing seen before)`,
      ratio: formatRatio(k, c),
      met: null,
    });
  } finally {
    child.kill('SIGKILL');
    for (const pid of [first, second])
      try {
        process.kill(pid, 'SIGKILL');
      } catch {}
  }
}

decisions();
globs();
await gathering();
