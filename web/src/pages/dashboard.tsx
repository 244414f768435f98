/**
 * Dashboard: decisions over time by verdict (stacked bars, one per minute, the
 * last hour, with a time axis, a scale and tooltips) and the top applications
 * and destinations, from the stored log plus live items. Plain SVG: no chart
 * library in the bundle.
 */
import { useEffect, useState } from 'preact/hooks';
import { api, type LogItem } from '../api.js';
import { TimeChart } from '../chart.js';
import { appHref, useEngine } from '../context.js';

const VERDICTS = ['allow', 'deny', 'reject', 'ask'] as const;
const BUCKET_MS = 60_000;
const BUCKETS = 60;

interface Stats {
  buckets: Map<number, Record<string, number>>;
  apps: Map<string, number>;
  destinations: Map<string, number>;
  /** Items counted (stored and live ones overlap while the first query runs: each counts once). */
  seen: Set<number>;
}

function add(s: Stats, items: LogItem[]): void {
  for (const i of items) {
    if (i.kind !== 'connection' || !i.verdict || s.seen.has(i.seq)) continue;
    s.seen.add(i.seq);
    const b = Math.floor(Date.parse(i.time) / BUCKET_MS);
    const row = s.buckets.get(b) ?? {};
    row[i.verdict] = (row[i.verdict] ?? 0) + 1;
    s.buckets.set(b, row);
    if (i.application) s.apps.set(i.application, (s.apps.get(i.application) ?? 0) + 1);
    const d = i.host ?? i.remote;
    if (d) s.destinations.set(d, (s.destinations.get(d) ?? 0) + 1);
  }
}

function columnsOf(stats: Stats, now: number) {
  const last = Math.floor(now / BUCKET_MS);
  return Array.from({ length: BUCKETS }, (_, k) => {
    const b = last - BUCKETS + 1 + k;
    return { start: b * BUCKET_MS, counts: stats.buckets.get(b) ?? {} };
  });
}

function Top({
  title,
  counts,
  href,
}: {
  title: string;
  counts: Map<string, number>;
  href?: (name: string) => string;
}) {
  const top = [...counts].sort((a, b) => b[1] - a[1]).slice(0, 8);
  const max = Math.max(1, ...top.map(([, n]) => n));
  return (
    <section class="card" aria-label={title}>
      <h2>{title}</h2>
      {top.length === 0 && <p class="muted">nothing yet</p>}
      <ol class="top">
        {top.map(([name, n]) => (
          <li key={name}>
            <span class="bar" style={{ width: `${(n / max) * 100}%` }} />
            <span class="label">{href ? <a href={href(name)}>{name}</a> : name}</span>{' '}
            <span class="n">{n}</span>
          </li>
        ))}
      </ol>
    </section>
  );
}

export function Dashboard() {
  const ctx = useEngine();
  const [stats] = useState<Stats>(() => ({
    buckets: new Map(),
    apps: new Map(),
    destinations: new Map(),
    seen: new Set(),
  }));
  const [, setTick] = useState(0);
  useEffect(() => {
    let live = true;
    const since = new Date(Date.now() - BUCKETS * BUCKET_MS).toISOString();
    ctx.call<{ items: LogItem[] }>('logs.query', { kind: 'connection', since, limit: 10_000 }).then(
      (r) => {
        if (!live) return;
        add(stats, r.items);
        setTick((t) => t + 1);
      },
      () => {},
    );
    const off = api.onPush((p) => {
      if (p.push === 'log' && p.engine === ctx.engine) add(stats, p.items);
    });
    const t = setInterval(() => setTick((x) => x + 1), 1000);
    return () => {
      live = false;
      off();
      clearInterval(t);
    };
  }, [ctx, stats]);
  return (
    <>
      <h1>Dashboard</h1>
      <section class="card">
        <h2>Decisions per minute, last hour</h2>
        <p class="legend">
          {VERDICTS.map((v) => (
            <span key={v} class={`key f-${v}`}>
              {v}
            </span>
          ))}
        </p>
        <TimeChart
          columns={columnsOf(stats, Date.now())}
          keys={VERDICTS}
          spanMs={BUCKET_MS}
          labelEvery={10}
          unit="decisions per minute"
        />
      </section>
      <div class="cards two">
        <Top title="Top applications" counts={stats.apps} href={appHref} />
        <Top title="Top destinations" counts={stats.destinations} />
      </div>
    </>
  );
}
