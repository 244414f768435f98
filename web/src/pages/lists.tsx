/**
 * The policy's lists on the Rules page (docs/policy.md, "Lists"): each list's source, format,
 * entries, where the content in force came from, when, the last error and the next refresh, from
 * engine.status, refreshed every 10 s; an administrator can refresh a list now (lists.refresh). Rules
 * use a list as `list:NAME` in their remote addresses.
 */
import { useEffect, useState } from 'preact/hooks';
import { useEngine } from '../context.js';

interface ListStatus {
  name: string;
  format: string;
  source: string;
  copy: string;
  entries: number;
  bytes: number;
  badLines: number;
  problems: { line: number; message: string }[];
  loadedAt?: string;
  lastAttempt?: string;
  lastError?: string;
  nextRefresh?: string;
}

const when = (iso?: string) => (iso === undefined ? '' : new Date(iso).toLocaleString());

export function ListsSection() {
  const ctx = useEngine();
  const [lists, setLists] = useState<ListStatus[] | undefined>();
  const [error, setError] = useState('');
  const [busy, setBusy] = useState('');
  const refresh = (name: string) => {
    setBusy(name);
    ctx.call<{ list: ListStatus }>('lists.refresh', { name }).then(
      (r) => {
        setBusy('');
        setLists((all) => all?.map((l) => (l.name === name ? r.list : l)));
      },
      (e: Error) => {
        setBusy('');
        setError(e.message);
      },
    );
  };
  useEffect(() => {
    let live = true;
    const load = () =>
      ctx.call<{ lists?: ListStatus[] }>('engine.status').then(
        (s) => {
          if (!live) return;
          setLists(s.lists ?? []);
          setError('');
        },
        (e: Error) => live && setError(e.message),
      );
    void load();
    const t = setInterval(() => void load(), 10_000);
    return () => {
      live = false;
      clearInterval(t);
    };
  }, [ctx]);
  if (error) return <p class="error">lists: {error}</p>;
  if (lists === undefined || lists.length === 0) return null;
  return (
    <section class="card" aria-label="lists">
      <h2>Lists</h2>
      <p class="muted">Rules use a list as list:NAME in their remote addresses.</p>
      <table data-testid="lists">
        <thead>
          <tr>
            <th>list</th>
            <th>source</th>
            <th>entries</th>
            <th>in force</th>
            <th>last error</th>
            <th>next refresh</th>
            {ctx.role === 'administrator' && <th>actions</th>}
          </tr>
        </thead>
        <tbody>
          {lists.map((l) => (
            <tr key={l.name} data-list={l.name} class={l.lastError ? 'error' : undefined}>
              <td>
                list:{l.name} <span class="muted">({l.format})</span>
              </td>
              <td>{l.source}</td>
              <td title={l.problems.map((p) => `line ${p.line}: ${p.message}`).join('\n') || undefined}>
                {l.entries.toLocaleString()}
                {l.badLines > 0 && <span class="muted"> ({l.badLines} bad lines skipped)</span>}
              </td>
              <td>{l.copy === 'none' ? 'nothing loaded yet' : `${l.copy}, ${when(l.loadedAt)}`}</td>
              <td>{l.lastError ?? ''}</td>
              <td>{when(l.nextRefresh)}</td>
              {ctx.role === 'administrator' && (
                <td>
                  <button
                    type="button"
                    disabled={busy === l.name}
                    aria-label={`Refresh list:${l.name} now`}
                    onClick={() => refresh(l.name)}
                  >
                    {busy === l.name ? 'Refreshing…' : 'Refresh now'}
                  </button>
                </td>
              )}
            </tr>
          ))}
        </tbody>
      </table>
    </section>
  );
}
