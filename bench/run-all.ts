/**
 * `npm run bench`: runs every benchmark and prints one table of the figures the goals of issue 12
 * are about (measure, goal, measured, baseline, ratio, met or not).
 *
 * Each benchmark is started the way its `bench:<name>` script in package.json starts it (the same
 * node flags and arguments; scripts/setup.sh has already run once), its output is passed through
 * as it comes, and its `BENCH-RESULT {json}` lines (bench/report.ts) are collected. Benchmarks
 * that need root are skipped with the reason when not run as root, and so is one that needs a
 * program the machine lacks. A benchmark that fails or states no result gets a row that says so;
 * the runner exits 1 when one failed.
 *
 * Options (after `npm run bench --`):
 *   --quick            small sizes (also BENCH_QUICK=1): each benchmark picks its quick sizes
 *   --only a,b         run only these benchmarks (names as in bench:<name>)
 *   --markdown FILE    also write the table as markdown to FILE
 *   --timeout S        seconds one benchmark may run (default 1800, quick 600)
 */
import { spawn } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus, totalmem } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { BENCH_RESULT_PREFIX, type BenchMeasure } from './report.js';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');

/** What a benchmark needs beyond node; checked before it is started. */
const NEEDS: Record<string, { root?: string; program?: string }> = {
  enforcement: { root: 'loads nftables rules and NFQUEUE in network namespaces' },
  idle: { root: 'runs engines in network namespaces, BPF programs on a cgroup of its own' },
  nfqueue: { root: 'binds an NFQUEUE in network namespaces' },
  'rule-counters': { root: 'loads a ruleset and reads its counters in a network namespace' },
  'web-live-log': { program: '/usr/bin/chromium' },
};

/**
 * Quick-mode sizes for the knobs benchmarks already read; set only when the caller did not set
 * them. Benchmarks also see BENCH_QUICK=1 and shrink what has no knob here.
 */
const QUICK_ENV: Record<string, Record<string, string>> = {
  ruleset: { BENCH_SIZES: '100,1000' },
  'log-store': { BENCH_ROWS: '100000', BENCH_INSERTS: '50000' },
  'engine-memory': { BENCH_RULES: '1000', BENCH_ITEMS: '100000' },
  attribution: { BENCH_SOCKETS: '50' },
  lists: { BENCH_DOMAINS: '100000', BENCH_CIDRS: '10000' },
};

/** Not benchmarks with goal figures: the soak has its own script and runs for minutes. */
const NOT_BENCHES = new Set(['soak']);

interface Options {
  quick: boolean;
  only: Set<string> | null;
  markdown: string | null;
  timeoutS: number;
}

function parseOptions(argv: readonly string[]): Options {
  const opts: Options = { quick: process.env.BENCH_QUICK === '1', only: null, markdown: null, timeoutS: 0 };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    const value = (): string => {
      const v = argv[++i];
      if (v === undefined) throw new Error(`run-all: option ${a} needs a value`);
      return v;
    };
    if (a === '--quick') opts.quick = true;
    else if (a === '--only')
      opts.only = new Set(
        value()
          .split(',')
          .filter((s) => s !== ''),
      );
    else if (a === '--markdown') opts.markdown = value();
    else if (a === '--timeout') {
      const s = Number(value());
      if (!Number.isFinite(s) || s <= 0)
        throw new Error(`run-all: --timeout wants seconds > 0, got ${argv[i]}`);
      opts.timeoutS = s;
    } else throw new Error(`run-all: unknown option ${a} (known: --quick, --only, --markdown, --timeout)`);
  }
  if (opts.timeoutS === 0) opts.timeoutS = opts.quick ? 600 : 1800;
  return opts;
}

interface Bench {
  name: string;
  /** Node flags, the compiled file, its arguments: what follows `node` in the bench script. */
  args: string[];
}

/** The benchmarks as package.json's bench:* scripts start them. */
export function benchesFromScripts(scripts: Record<string, string>): Bench[] {
  const out: Bench[] = [];
  for (const [key, command] of Object.entries(scripts)) {
    if (!key.startsWith('bench:')) continue;
    const name = key.slice('bench:'.length);
    if (NOT_BENCHES.has(name)) continue;
    // "bash scripts/setup.sh && node [flags] dist/bench/x.js [args]": the part after the last `node`.
    const m = /(?:^|&&\s*)node\s+([^&|;]+)$/.exec(command.trim());
    if (m === null)
      throw new Error(`run-all: script bench:${name} does not end in "node <file>": ${command}`);
    const args = m[1]!.trim().split(/\s+/);
    if (!args.some((a) => a.endsWith('.js')))
      throw new Error(`run-all: script bench:${name} names no .js file`);
    out.push({ name, args });
  }
  return out;
}

function skipReason(name: string): string | null {
  const needs = NEEDS[name];
  if (needs === undefined) return null;
  if (needs.root !== undefined && process.getuid?.() !== 0) return `needs root (${needs.root})`;
  if (needs.program !== undefined && !existsSync(needs.program)) return `needs ${needs.program}`;
  return null;
}

interface Row extends BenchMeasure {
  bench: string;
  /** The benchmark failed: did not start, exited non-zero, was killed, or printed an unreadable result. */
  failed?: boolean;
}

/** Runs one benchmark, echoing its output, and returns its result lines (or a row saying what went wrong). */
function runBench(b: Bench, opts: Options): Promise<Row[]> {
  const env: NodeJS.ProcessEnv = { ...process.env };
  if (opts.quick) {
    env.BENCH_QUICK = '1';
    for (const [k, v] of Object.entries(QUICK_ENV[b.name] ?? {})) if (env[k] === undefined) env[k] = v;
  }
  const rows: Row[] = [];
  const problems: string[] = [];
  return new Promise((resolve) => {
    const child = spawn(process.execPath, b.args, { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] });
    const timer = setTimeout(() => {
      problems.push(`killed after ${opts.timeoutS} s`);
      child.kill('SIGKILL');
    }, opts.timeoutS * 1000);
    let pending = '';
    const onLine = (line: string): void => {
      if (!line.startsWith(BENCH_RESULT_PREFIX)) {
        process.stdout.write(`[${b.name}] ${line}\n`);
        return;
      }
      try {
        rows.push({ bench: b.name, ...(JSON.parse(line.slice(BENCH_RESULT_PREFIX.length)) as BenchMeasure) });
      } catch (e) {
        problems.push(`unreadable result line: ${(e as Error).message}`);
      }
    };
    child.stdout.setEncoding('utf8');
    child.stdout.on('data', (chunk: string) => {
      pending += chunk;
      const lines = pending.split('\n');
      pending = lines.pop() ?? '';
      for (const l of lines) onLine(l);
    });
    child.stderr.setEncoding('utf8');
    child.stderr.on('data', (chunk: string) =>
      process.stderr.write(chunk.replace(/^(?=.)/gm, `[${b.name}] `)),
    );
    child.on('error', (e) => problems.push(`could not start: ${e.message}`));
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      if (pending !== '') onLine(pending);
      if (code !== 0) problems.push(signal !== null ? `ended by ${signal}` : `exit code ${code}`);
      if (problems.length > 0) rows.push({ ...problemRow(b.name, problems.join('; ')), failed: true });
      // Ran and ended well but states no goal figure (yet): said, not counted as a failure.
      else if (rows.length === 0) rows.push(problemRow(b.name, 'ran, but stated no BENCH-RESULT line'));
      resolve(rows);
    });
  });
}

function problemRow(bench: string, what: string): Row {
  return { bench, measure: `${bench}: ${what}`, goal: '', measured: '', baseline: '', ratio: '', met: null };
}

const COLUMNS = ['bench', 'measure', 'goal', 'measured', 'baseline', 'ratio', 'met'] as const;

function cells(r: Row): string[] {
  return [
    r.bench,
    r.measure,
    r.goal,
    r.measured,
    r.baseline,
    r.ratio,
    r.failed === true ? 'FAILED' : r.met === null ? '-' : r.met ? 'yes' : 'NO',
  ];
}

/** The table as aligned text for the terminal. */
export function textTable(rows: readonly Row[]): string {
  const all = [COLUMNS.slice() as string[], ...rows.map(cells)];
  const widths = COLUMNS.map((_, i) => Math.max(...all.map((r) => r[i]!.length)));
  const line = (r: string[]) => r.map((c, i) => c.padEnd(widths[i]!)).join(' | ');
  return [line(all[0]!), widths.map((w) => '-'.repeat(w)).join('-|-'), ...all.slice(1).map(line)].join('\n');
}

/** The table as markdown. */
export function markdownTable(rows: readonly Row[]): string {
  const esc = (c: string) => c.replaceAll('|', '\\|');
  return [
    `| ${COLUMNS.join(' | ')} |`,
    `|${COLUMNS.map(() => '---').join('|')}|`,
    ...rows.map((r) => `| ${cells(r).map(esc).join(' | ')} |`),
  ].join('\n');
}

/** The machine, for the record: figures mean little without it. */
export function machineLine(): string {
  const cpu = cpus()[0]?.model ?? 'unknown CPU';
  let kernel = 'unknown kernel';
  try {
    kernel = readFileSync('/proc/sys/kernel/osrelease', 'utf8').trim();
  } catch {
    // Not Linux: leave it unknown.
  }
  const gib = (totalmem() / 2 ** 30).toFixed(1);
  return `${cpus().length} CPUs (${cpu}), ${gib} GiB memory, kernel ${kernel}, node ${process.version}`;
}

async function main(): Promise<void> {
  const opts = parseOptions(process.argv.slice(2));
  const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as {
    scripts: Record<string, string>;
  };
  const benches = benchesFromScripts(pkg.scripts);
  if (opts.only !== null) {
    const known = new Set(benches.map((b) => b.name));
    for (const n of opts.only) if (!known.has(n)) throw new Error(`run-all: no script bench:${n}`);
  }
  const started = new Date();
  const rows: Row[] = [];
  for (const b of benches) {
    if (opts.only !== null && !opts.only.has(b.name)) continue;
    const why = skipReason(b.name);
    if (why !== null) {
      rows.push(problemRow(b.name, `skipped: ${why}`));
      continue;
    }
    process.stdout.write(`\n== bench:${b.name}${opts.quick ? ' (quick)' : ''}\n`);
    rows.push(...(await runBench(b, opts)));
  }
  const title = `${opts.quick ? 'Quick' : 'Full'} run of ${started.toISOString()} on ${machineLine()}`;
  process.stdout.write(`\n${title}\n\n${textTable(rows)}\n`);
  if (opts.markdown !== null) writeFileSync(opts.markdown, `${title}\n\n${markdownTable(rows)}\n`);
  if (rows.some((r) => r.failed === true)) process.exitCode = 1;
}

if (process.argv[1] !== undefined && fileURLToPath(import.meta.url) === process.argv[1]) {
  main().catch((e: unknown) => {
    process.stderr.write(`${(e as Error).message}\n`);
    process.exitCode = 2;
  });
}
