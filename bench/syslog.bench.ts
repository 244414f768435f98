/**
 * Cost of syslog forwarding per log item: formatSyslog (items/s) for a full connection item. The baseline,
 * measured in the same run, is JSON.stringify of the same item: the cheapest serialization the engine
 * could send instead.
 * Run: npm run bench:syslog
 */
import { performance } from 'node:perf_hooks';
import { formatSyslog } from '../src/engine/syslog.js';
import type { LogItem } from '../src/protocol/log-item.js';
import { formatRatio, reportMeasure } from './report.js';

const ITEMS = process.env.BENCH_QUICK === '1' ? 20_000 : 200_000;
const ROUNDS = 3;
const HEADER = { hostname: 'fw1.example', appName: 'wardend', procId: '4242' };

function item(seq: number): LogItem {
  return {
    seq,
    time: '2025-01-02T03:04:05.678Z',
    kind: 'connection',
    verdict: seq % 3 ? 'allow' : 'deny',
    direction: 'outgoing',
    protocol: 'tcp',
    application: '/usr/bin/curl',
    local: '10.0.0.2:51234',
    remote: '93.184.215.14:443',
    rule: 'web "https"',
    user: 'alice',
    message: 'allowed by rule web',
  };
}

function best(fn: () => number): number {
  let top = 0;
  for (let r = 0; r < ROUNDS; r++) top = Math.max(top, fn());
  return top;
}

function rate(run: () => void): number {
  const t0 = performance.now();
  run();
  return ITEMS / ((performance.now() - t0) / 1000);
}

const items = Array.from({ length: ITEMS }, (_, i) => item(i + 1));
let sinkSize = 0;
const format = best(() =>
  rate(() => {
    for (const it of items) sinkSize += formatSyslog(it, HEADER).length;
  }),
);
const json = best(() =>
  rate(() => {
    for (const it of items) sinkSize += JSON.stringify(it).length;
  }),
);

const k = (n: number) => `${Math.round(n / 1000)}k items/s`;
console.log(`syslog bench: ${ITEMS} items, best of ${ROUNDS} (${sinkSize} characters formatted)`);
console.log(
  `  formatSyslog            ${k(format)}   baseline JSON.stringify ${k(json)}   ratio ${(format / json).toFixed(2)}`,
);
reportMeasure({
  measure: 'syslog: formatSyslog per item',
  goal: '',
  measured: k(format),
  baseline: `${k(json)} (JSON.stringify)`,
  ratio: formatRatio(format, json),
  met: null,
});
