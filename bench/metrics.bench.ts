/**
 * Cost of the metrics on the per-packet path: Enforcer.judge with WardenMetrics (a verdict counter and a
 * latency histogram per packet) against the same judge without metrics, measured in the same run as the
 * baseline. Also the scrape: rendering the whole exposition text.
 * Run: npm run bench:metrics
 */
import { performance } from 'node:perf_hooks';
import { AskDesk } from '../src/engine/asks.js';
import { Enforcer } from '../src/engine/enforcer.js';
import { WardenMetrics } from '../src/metrics/warden.js';
import { compilePolicy, parsePolicyText } from '../src/policy/index.js';
import { formatRatio, reportMeasure } from './report.js';

const PACKETS = process.env.BENCH_QUICK === '1' ? 20_000 : 100_000;
const ROUNDS = 5;
const policy = compilePolicy(
  parsePolicyText(
    'rules:\n  - { name: web, direction: outgoing, protocol: tcp, remotePorts: 443, action: allow }\n',
    { file: 'bench.yaml' },
  ),
);

function enforcer(metrics?: WardenMetrics): Enforcer {
  return new Enforcer({
    policy: () => policy,
    identify: async () => ({ pid: 1, executable: '/usr/bin/curl', uid: 0, user: 'root' }),
    hostsOf: () => [],
    asks: new AskDesk({ timeoutMs: () => 10, consoles: () => 0, notify: () => {} }),
    log: () => {},
    executables: { engine: '/e', console: '/c', assistant: '/a' },
    ...(metrics ? { metrics } : {}),
  });
}

/** Packets per second of one round of PACKETS judgements. */
async function round(e: Enforcer): Promise<number> {
  const t0 = performance.now();
  for (let i = 0; i < PACKETS; i++) {
    const port = 443 + (i & 1); // half allowed by the rule, half denied by the default
    await e.judge(
      {
        protocol: 'tcp',
        source: '10.0.0.2',
        destination: '93.184.215.14',
        sourcePort: 40000,
        destinationPort: port,
      },
      'outgoing',
    );
  }
  return PACKETS / ((performance.now() - t0) / 1000);
}

// Rounds alternate between the two, so warm-up and the machine's load weigh on both alike; the best round counts.
const metrics = new WardenMetrics();
const [withoutMetrics, withMetrics] = [enforcer(), enforcer(metrics)];
let plain = 0;
let counted = 0;
for (let r = 0; r < ROUNDS; r++) {
  plain = Math.max(plain, await round(withoutMetrics));
  counted = Math.max(counted, await round(withMetrics));
}
const t0 = performance.now();
const scrapes = 2000;
for (let i = 0; i < scrapes; i++) metrics.render();
const renderUs = ((performance.now() - t0) / scrapes) * 1000;

console.log(`judge without metrics (baseline): ${Math.round(plain).toLocaleString('en')} packets/s`);
console.log(`judge with metrics:              ${Math.round(counted).toLocaleString('en')} packets/s`);
console.log(`ratio with/without: ${(counted / plain).toFixed(3)} (1.0 = free)`);
console.log(`per-packet overhead: ${((1 / counted - 1 / plain) * 1e9).toFixed(0)} ns`);
console.log(`scrape (render the exposition text): ${renderUs.toFixed(1)} us`);
reportMeasure({
  measure: 'metrics: judge with metrics',
  goal: '',
  measured: `${Math.round(counted).toLocaleString('en')} packets/s`,
  baseline: `${Math.round(plain).toLocaleString('en')} packets/s (no metrics)`,
  ratio: formatRatio(counted, plain),
  met: null,
});
