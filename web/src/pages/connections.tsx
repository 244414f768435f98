/**
 * Connected now: the applications with open connections and where they go, like `ss -tunp`
 * grouped by program (connections.list), refreshed every 5 seconds.
 */
import { useEffect, useState } from 'preact/hooks';
import { errorText } from '../api.js';
import { appHref, useEngine } from '../context.js';

export interface OpenConnection {
  protocol: string;
  state: string;
  local: string;
  remote: string;
  uid: number;
  user?: string;
  pid?: number;
  application?: string;
  commandLine?: string[];
}

export interface ConnectionGroup {
  application: string;
  connections: OpenConnection[];
}

/** Groups by program, most connections first; sockets no process could be found for go last. */
export function groupByApplication(list: OpenConnection[]): ConnectionGroup[] {
  const groups = new Map<string, OpenConnection[]>();
  for (const c of list) {
    const key = c.application ?? '';
    groups.set(key, [...(groups.get(key) ?? []), c]);
  }
  return [...groups]
    .map(([application, connections]) => ({ application, connections }))
    .sort((a, b) =>
      a.application === '' ? 1 : b.application === '' ? -1 : b.connections.length - a.connections.length,
    );
}

/** The table of some connections (this page and an application's page). */
export function ConnectionTable({ connections }: { connections: OpenConnection[] }) {
  return (
    <div class="scroll">
      <table class="connections">
        <thead>
          <tr>
            <th scope="col">Proto</th>
            <th scope="col">State</th>
            <th scope="col">Remote</th>
            <th scope="col">Local</th>
            <th scope="col">PID</th>
            <th scope="col">User</th>
            <th scope="col">Command line</th>
          </tr>
        </thead>
        <tbody>
          {connections.map((c) => (
            <tr key={`${c.protocol}${c.local}${c.remote}`} data-remote={c.remote}>
              <td>{c.protocol}</td>
              <td>{c.state}</td>
              <td>{c.remote}</td>
              <td>{c.local}</td>
              <td>{c.pid ?? ''}</td>
              <td>{c.user ?? c.uid}</td>
              <td class="cmd" title={c.commandLine?.join(' ')}>
                {c.commandLine?.join(' ') ?? ''}
              </td>
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}

/** connections.list, again every 5 s while `live`. */
export function useConnections(live: boolean) {
  const ctx = useEngine();
  const [data, setData] = useState<{ connections: OpenConnection[]; truncated: boolean; at: Date }>();
  const [error, setError] = useState('');
  useEffect(() => {
    let on = true;
    const load = () =>
      ctx.call<{ connections: OpenConnection[]; truncated: boolean }>('connections.list').then(
        (r) => {
          if (!on) return;
          setData({ ...r, at: new Date() });
          setError('');
        },
        (x) => on && setError(errorText(x)),
      );
    void load();
    const t = live ? setInterval(load, 5000) : undefined;
    return () => {
      on = false;
      clearInterval(t);
    };
  }, [ctx, live]);
  return [data, error] as const;
}

export function ConnectionsPage() {
  const [live, setLive] = useState(true);
  const [filter, setFilter] = useState('');
  const [data, error] = useConnections(live);
  const f = filter.toLowerCase();
  const shown = (data?.connections ?? []).filter(
    (c) =>
      !f ||
      [c.application, c.remote, c.local, c.user, c.commandLine?.join(' ')]
        .join(' ')
        .toLowerCase()
        .includes(f),
  );
  const groups = groupByApplication(shown);
  return (
    <>
      <h1>Connected now</h1>
      <form class="row" aria-label="connection filter" onSubmit={(e) => e.preventDefault()}>
        <label>
          Filter{' '}
          <input
            name="filter"
            size={28}
            value={filter}
            placeholder="program, address or user"
            onInput={(e) => setFilter(e.currentTarget.value)}
          />
        </label>
        <button type="button" aria-pressed={!live} onClick={() => setLive(!live)}>
          {live ? 'Pause updates' : 'Resume updates'}
        </button>
      </form>
      {error && <p class="error">{error}</p>}
      {!data && !error && <p class="muted">Reading the open connections…</p>}
      {data && (
        <p class="muted" data-testid="connections-summary">
          {shown.length} open connection{shown.length === 1 ? '' : 's'} of {groups.length} program
          {groups.length === 1 ? '' : 's'} at {data.at.toLocaleTimeString()}
          {live ? ', updated every 5 seconds' : ', updates paused'}.
          {data.truncated ? ' There are more than the engine lists at once: filter to narrow them.' : ''}
        </p>
      )}
      {data && groups.length === 0 && (
        <p class="card">No open connections{filter ? ' match the filter' : ''}.</p>
      )}
      {groups.map((g) => {
        const pids = [...new Set(g.connections.map((c) => c.pid).filter((p) => p !== undefined))];
        const remotes = new Set(g.connections.map((c) => c.remote.replace(/:\d+$/, '')));
        return (
          <section
            key={g.application}
            class="card"
            data-app={g.application}
            aria-label={g.application || 'unknown program'}
          >
            <h2>
              {g.application ? <a href={appHref(g.application)}>{g.application}</a> : 'Program not known'}{' '}
              <small class="muted">
                {g.connections.length} connection{g.connections.length === 1 ? '' : 's'} to {remotes.size}{' '}
                address
                {remotes.size === 1 ? '' : 'es'}
                {pids.length > 0 ? `; pid ${pids.join(', ')}` : ''}
              </small>
            </h2>
            <ConnectionTable connections={g.connections} />
          </section>
        );
      })}
    </>
  );
}
