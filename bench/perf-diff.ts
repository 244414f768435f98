/**
 * Where the enforcement bench's client spends its time per connection, one setting against another.
 * `WARDEN_BENCH_PERF=DIR node dist/bench/enforcement.bench.js` runs the 16-lane clients of no
 * ruleset (`none`), connection tracking alone (`conntrack`) and the verdict cache (`bpf+cache`) under
 * `perf record -g` and names each file's setting and connections in DIR/manifest.json. This reads
 * them with `perf script`, counts each sample's time once under every function on its call chain,
 * and prints, per connection, the time under each function in both settings and the difference,
 * largest first; and the time in the client's event loop (its one thread bounds the 16-lane rate).
 * Run: node dist/bench/perf-diff.js DIR [from] [to]   (default: conntrack bpf+cache; TOP=40 rows)
 */
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

interface RecordedSlice {
  readonly setting: string;
  readonly file: string;
  readonly connections: number;
}

/** Per setting: ns under each function (inclusive), kernel and user ns, and connections. */
interface Profile {
  readonly under: Map<string, number>;
  kernelNs: number;
  userNs: number;
  eventLoopNs: number;
  connections: number;
}

/** Kernel text lies in the top half of the address space. */
const KERNEL = 0xffff800000000000n;

function addSamples(profile: Profile, file: string): void {
  const text = execFileSync('perf', ['script', '-i', file, '-F', 'period,ip,sym'], {
    encoding: 'utf8',
    maxBuffer: 1 << 30,
    stdio: ['ignore', 'pipe', 'ignore'],
  });
  for (const sample of text.split('\n\n')) {
    const lines = sample.split('\n').filter((l) => l.trim() !== '');
    const period = Number(lines[0]?.trim());
    if (!Number.isFinite(period) || lines.length < 2) continue;
    const frames = lines.slice(1).map((l) => l.trim().split(/\s+/));
    const leaf = BigInt(`0x${frames[0]![0]}`);
    if (leaf >= KERNEL) profile.kernelNs += period;
    else profile.userNs += period;
    const names = new Set(frames.map((f) => f.slice(1).join(' ') || '[unknown]'));
    if (names.has('uv_run')) profile.eventLoopNs += period;
    for (const name of names) profile.under.set(name, (profile.under.get(name) ?? 0) + period);
  }
}

function main(): void {
  const [dir, from = 'conntrack', to = 'bpf+cache'] = process.argv.slice(2);
  if (dir === undefined) {
    console.error('usage: node dist/bench/perf-diff.js DIR [from] [to]  (DIR as WARDEN_BENCH_PERF gave it)');
    process.exit(2);
  }
  const slices = JSON.parse(readFileSync(join(dir, 'manifest.json'), 'utf8')) as RecordedSlice[];
  const profiles = new Map<string, Profile>();
  for (const s of slices) {
    let p = profiles.get(s.setting);
    if (p === undefined) {
      p = { under: new Map(), kernelNs: 0, userNs: 0, eventLoopNs: 0, connections: 0 };
      profiles.set(s.setting, p);
    }
    addSamples(p, s.file);
    p.connections += s.connections;
  }
  const a = profiles.get(from);
  const b = profiles.get(to);
  if (a === undefined || b === undefined) {
    console.error(
      `no slices of ${a === undefined ? from : to} in ${dir} (it has: ${[...profiles.keys()].join(', ')})`,
    );
    process.exit(2);
  }
  for (const [name, p] of profiles)
    if (p.connections === 0) {
      console.error(`the ${name} slices in ${dir} made no connections: nothing to divide by`);
      process.exit(2);
    }
  const us = (p: Profile, ns: number) => ns / 1000 / p.connections;
  const f = (n: number) => n.toFixed(2).padStart(7);
  console.log(`us per connection (${a.connections} and ${b.connections} connections): ${from} -> ${to}`);
  for (const p of [...profiles.keys()]) {
    const q = profiles.get(p)!;
    console.log(
      `${p.padEnd(10)} event loop ${f(us(q, q.eventLoopNs))}   kernel ${f(us(q, q.kernelNs))}   user ${f(us(q, q.userNs))}`,
    );
  }
  const names = new Set([...a.under.keys(), ...b.under.keys()]);
  const rows = [...names]
    .map((name) => {
      const x = us(a, a.under.get(name) ?? 0);
      const y = us(b, b.under.get(name) ?? 0);
      return { name, x, y, d: y - x };
    })
    .sort((l, r) => r.d - l.d);
  const top = Number(process.env.TOP ?? 40);
  console.log(`\n${from.padStart(7)} ${to.padStart(7)}    diff  function (time under it, inclusive)`);
  for (const r of rows.slice(0, top)) console.log(`${f(r.x)} ${f(r.y)} ${f(r.d)}  ${r.name.slice(0, 90)}`);
  console.log('...');
  for (const r of rows.slice(-8)) console.log(`${f(r.x)} ${f(r.y)} ${f(r.d)}  ${r.name.slice(0, 90)}`);
}

main();
