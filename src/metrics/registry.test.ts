import assert from 'node:assert/strict';
import { test } from 'node:test';
import { MetricsRegistry } from './registry.js';
import { WardenMetrics } from './warden.js';

test('the text format 0.0.4: HELP and TYPE once per family, labelled series, cumulative histogram buckets', () => {
  const r = new MetricsRegistry();
  const a = r.counter('x_total', 'Some "things"\nsecond line', { kind: 'a"b' });
  const b = r.counter('x_total', 'ignored', { kind: 'c' });
  r.gauge('y', 'A gauge', () => 2.5);
  const h = r.histogram('z_seconds', 'A histogram', [1, 0.1]);
  a.inc();
  b.inc(3);
  for (const v of [0.05, 0.1, 0.5, 7]) h.observe(v);
  assert.equal(
    r.render(),
    [
      '# HELP x_total Some "things"\\nsecond line',
      '# TYPE x_total counter',
      'x_total{kind="a\\"b"} 1',
      'x_total{kind="c"} 3',
      '# HELP y A gauge',
      '# TYPE y gauge',
      'y 2.5',
      '# HELP z_seconds A histogram',
      '# TYPE z_seconds histogram',
      'z_seconds_bucket{le="0.1"} 2',
      'z_seconds_bucket{le="1"} 3',
      'z_seconds_bucket{le="+Inf"} 4',
      'z_seconds_sum 7.65',
      'z_seconds_count 4',
      '',
    ].join('\n'),
  );
  assert.throws(() => r.gauge('x_total', 'clash', () => 1), /registered as a counter/);
});

test("the engine's metrics are all there from the start, process basics included, every line well formed", () => {
  const text = new WardenMetrics(() => 3).render();
  for (const name of [
    'warden_decisions_total{verdict="allow"} 0',
    'warden_queue_latency_seconds_count 0',
    'warden_log_items_pushed_total 0',
    'warden_log_items_lost_total 0',
    'warden_log_items_backfilled_total 0',
    'warden_consoles_connected 3',
    'warden_logins_failed_total 0',
  ])
    assert.ok(text.includes(`\n${name}\n`), name);
  for (const p of [
    'process_cpu_seconds_total',
    'process_resident_memory_bytes',
    'process_start_time_seconds',
  ])
    assert.match(text, new RegExp(`^${p} [0-9.e+]+$`, 'm'));
  for (const line of text.trimEnd().split('\n'))
    assert.match(line, /^(# (HELP|TYPE) [a-z_]+ .+|[a-z_]+(\{[a-z_]+="[^"]*"\})? (\S+))$/, line);
});
