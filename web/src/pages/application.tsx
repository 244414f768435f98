/**
 * One application's page: its connections now, the destinations it reached (or tried) with the
 * verdicts, the rules that name it, its decisions over the last 24 hours, and its latest log items.
 * All from connections.list, logs.query and rules.list.
 */

import type { LogItem } from '../api.js';
import { type Column, TimeChart } from '../chart.js';
import { useEngine, useLoad } from '../context.js';
import { baseName, remoteText } from '../log-view.js';
import { ConnectionTable, useConnections } from './connections.js';
import { searchStored } from './live-log.js';

const VERDICTS = ['allow', 'deny', 'reject', 'ask'] as const;
const HOUR = 3_600_000;

function hourly(items: LogItem[], now: number): Column[] {
  const last = Math.floor(now / HOUR);
  const cols: Column[] = Array.from({ length: 24 }, (_, k) => ({
    start: (last - 23 + k) * HOUR,
    counts: {},
  }));
  for (const i of items) {
    const k = Math.floor(Date.parse(i.time) / HOUR) - (last - 23);
    if (k < 0 || k > 23 || !i.verdict) continue;
    const c = cols[k]!.counts;
    c[i.verdict] = (c[i.verdict] ?? 0) + 1;
  }
  return cols;
}

function destinations(items: LogItem[]) {
  const by = new Map<string, { counts: Record<string, number>; last: string }>();
  for (const i of items) {
    const d = remoteText(i);
    if (!d) continue;
    const e = by.get(d) ?? { counts: {}, last: i.time };
    if (i.verdict) e.counts[i.verdict] = (e.counts[i.verdict] ?? 0) + 1;
    if (i.time > e.last) e.last = i.time;
    by.set(d, e);
  }
  return [...by].sort((a, b) => (b[1].last > a[1].last ? 1 : -1));
}

export function ApplicationPage({ path }: { path: string }) {
  const ctx = useEngine();
  const [now] = useConnections(true);
  const [items, itemsError] = useLoad(
    () =>
      searchStored(
        ctx.call,
        { application: path, kind: 'connection', since: new Date(Date.now() - 24 * HOUR).toISOString() },
        10_000,
      ),
    [ctx, path],
  );
  const [rules] = useLoad(
    () => ctx.call<{ rules: Record<string, unknown>[] }>('rules.list', {}),
    [ctx, path],
  );
  const open = now?.connections.filter((c) => c.application === path) ?? [];
  const named = (rules?.rules ?? [])
    .map((r, i) => ({ r, n: i + 1 }))
    .filter(({ r }) => r.application === path);
  return (
    <>
      <h1>
        {baseName(path)} <small class="muted">{path}</small>
      </h1>
      <section class="card" aria-label="connections now">
        <h2>Connected now</h2>
        {now === undefined ? (
          <p class="muted">Loading…</p>
        ) : open.length === 0 ? (
          <p class="muted">No open connections now.</p>
        ) : (
          <ConnectionTable connections={open} />
        )}
      </section>
      <section class="card" aria-label="decisions over time">
        <h2>Decisions per hour, last 24 hours</h2>
        {itemsError && <p class="error">{itemsError}</p>}
        {items && (
          <TimeChart
            columns={hourly(items, Date.now())}
            keys={VERDICTS}
            spanMs={HOUR}
            labelEvery={4}
            unit="logged connections per hour"
          />
        )}
      </section>
      <div class="cards two">
        <section class="card" aria-label="destinations">
          <h2>Destinations, last 24 hours</h2>
          {items?.length === 0 && <p class="muted">No logged connections in the last 24 hours.</p>}
          <div class="scroll">
            <table data-testid="destinations">
              <tbody>
                {destinations(items ?? [])
                  .slice(0, 30)
                  .map(([d, e]) => (
                    <tr key={d}>
                      <td>{d}</td>
                      <td>
                        {VERDICTS.filter((v) => e.counts[v]).map((v) => (
                          <span key={v} class={`v-${v}`}>
                            {e.counts[v]} {v}{' '}
                          </span>
                        ))}
                      </td>
                      <td class="muted">{new Date(e.last).toLocaleTimeString()}</td>
                    </tr>
                  ))}
              </tbody>
            </table>
          </div>
        </section>
        <section class="card" aria-label="rules for this application">
          <h2>Rules that name it</h2>
          {rules && named.length === 0 && (
            <p class="muted">
              No rule names this application: rules for any application and the defaults decide.
            </p>
          )}
          <ul>
            {named.map(({ r, n }) => (
              <li key={String(r.name)}>
                #{n} <a href="#/rules">{String(r.name)}</a>:{' '}
                <span class={`v-${r.action}`}>{String(r.action)}</span> {String(r.direction)}
                {r.enabled === false ? ' (disabled)' : ''}
              </li>
            ))}
          </ul>
        </section>
      </div>
      <section class="card" aria-label="latest log items">
        <h2>Latest logged connections</h2>
        <div class="scroll">
          <table>
            <tbody>
              {(items ?? [])
                .slice(-15)
                .reverse()
                .map((i) => (
                  <tr key={i.seq}>
                    <td>{new Date(i.time).toLocaleTimeString()}</td>
                    <td class={`v-${i.verdict}`}>{i.verdict}</td>
                    <td>{i.direction}</td>
                    <td>{remoteText(i)}</td>
                    <td>{i.rule}</td>
                  </tr>
                ))}
            </tbody>
          </table>
        </div>
      </section>
    </>
  );
}
