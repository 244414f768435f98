/**
 * The Fleet page (issue 14, item 6): every remembered engine in one table, as `warden fleet status`
 * shows it (the console asks each logged-in engine in parallel, with a deadline), narrowed to a group;
 * and the live log of every logged-in engine merged, newest first, with an engine column and a
 * filter per engine.
 */
import { useEffect, useRef, useState } from 'preact/hooks';
import { api, errorText, type LogItem, type SessionJson } from '../api.js';
import { baseName, remoteText } from '../log-view.js';

interface FleetRow {
  engine: string;
  address: string;
  reachable: boolean;
  loggedIn: boolean;
  error?: string;
  version?: string;
  fingerprint?: string;
  policyVersion?: number;
  policyHash?: string;
  rulesHash?: string;
  lastContact: string | null;
  decisionsPerMinute?: number;
  logTransport?: string;
  problems?: string[];
}

/** Merged items kept (newest first); the table shows those the engine filter lets through. */
const MERGED_MAX = 1000;
const SHOWN_MAX = 200;
/** Stored items read from each engine when the page opens, so it is not empty until the next one. */
const BACKFILL = 50;
const REFRESH_MS = 5000;

type Merged = LogItem & { engine: string };

const shortFp = (fp?: string) => (fp ? fp.split(':').slice(0, 5).join(':') : '');
const when = (iso: string | null) => (iso ? iso.replace('T', ' ').slice(0, 19) : 'never');

function FleetTable() {
  const [rows, setRows] = useState<FleetRow[]>();
  const [groups, setGroups] = useState<Record<string, string[]>>({});
  const [group, setGroup] = useState('');
  const [error, setError] = useState('');
  useEffect(() => {
    let live = true;
    const load = () =>
      api.request<{ rows: FleetRow[]; groups: Record<string, string[]> }>('fleet').then(
        (r) => {
          if (!live) return;
          setRows(r.rows);
          setGroups(r.groups);
          setError('');
        },
        (e) => live && setError(errorText(e)),
      );
    void load();
    const timer = setInterval(load, REFRESH_MS);
    return () => {
      live = false;
      clearInterval(timer);
    };
  }, []);
  const shown = rows?.filter((r) => group === '' || groups[group]?.includes(r.engine)) ?? [];
  return (
    <section aria-labelledby="fleet-engines">
      <h2 id="fleet-engines">Engines</h2>
      <div class="row">
        <label>
          Group{' '}
          <select value={group} onChange={(e) => setGroup(e.currentTarget.value)}>
            <option value="">every engine</option>
            {Object.keys(groups).map((g) => (
              <option key={g}>{g}</option>
            ))}
          </select>
        </label>
      </div>
      {error && <p class="error">{error}</p>}
      {rows === undefined ? (
        <p class="muted">Asking the engines…</p>
      ) : (
        <div class="scroll">
          <table data-testid="fleet-table">
            <thead>
              <tr>
                <th>Engine</th>
                <th>Version</th>
                <th>Fingerprint</th>
                <th>Policy</th>
                <th>Hash</th>
                <th>Last contact</th>
                <th>Decisions/min</th>
                <th>Log</th>
                <th>State</th>
              </tr>
            </thead>
            <tbody>
              {shown.map((r) => (
                <tr key={r.engine} data-engine={r.engine}>
                  <td>{r.engine}</td>
                  <td>{r.version ?? ''}</td>
                  <td title={r.fingerprint}>{shortFp(r.fingerprint)}</td>
                  <td>{r.policyVersion === undefined ? '' : `v${r.policyVersion}`}</td>
                  <td title={r.policyHash}>
                    {r.policyHash?.slice(0, 19) ?? ''}
                    {r.rulesHash !== undefined && r.rulesHash !== r.policyHash && (
                      <span title={r.rulesHash}> (with includes {r.rulesHash.slice(0, 19)})</span>
                    )}
                  </td>
                  <td>{when(r.lastContact)}</td>
                  <td>{r.decisionsPerMinute ?? ''}</td>
                  <td>{r.logTransport?.toUpperCase() ?? ''}</td>
                  <td class={r.reachable && !r.problems?.length ? '' : 'warn'}>
                    {r.reachable
                      ? r.problems?.length
                        ? `problem: ${r.problems.join('; ')}`
                        : 'up'
                      : r.loggedIn
                        ? `unreachable: ${r.error}`
                        : 'not logged in (Engines page)'}
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
    </section>
  );
}

function MergedLog({ engines }: { engines: string[] }) {
  const [items, setItems] = useState<Merged[]>([]);
  const [hidden, setHidden] = useState<Set<string>>(new Set());
  const store = useRef(new Map<string, Merged>());
  const key = engines.join('\n');
  useEffect(() => {
    const keep = (engine: string, list: LogItem[]) => {
      for (const i of list) store.current.set(`${engine}\n${i.seq}`, { ...i, engine });
      const all = [...store.current.values()].sort((a, b) =>
        a.time === b.time ? b.seq - a.seq : a.time < b.time ? 1 : -1,
      );
      store.current = new Map(all.slice(0, MERGED_MAX).map((i) => [`${i.engine}\n${i.seq}`, i]));
      setItems(all.slice(0, MERGED_MAX));
    };
    for (const engine of engines)
      api
        .call<{ lastLogSeq: number }>(engine, 'engine.status')
        .then(({ lastLogSeq }) =>
          lastLogSeq === 0
            ? { items: [] }
            : api.call<{ items: LogItem[] }>(engine, 'logs.query', {
                fromSeq: Math.max(1, lastLogSeq - BACKFILL + 1),
                limit: BACKFILL,
              }),
        )
        .then(
          (r) => keep(engine, r.items),
          () => {},
        );
    return api.onPush((p) => {
      if (p.push === 'log' && engines.includes(p.engine)) keep(p.engine, p.items);
    });
  }, [key]);
  const shown = items.filter((i) => !hidden.has(i.engine)).slice(0, SHOWN_MAX);
  return (
    <section aria-labelledby="fleet-log">
      <h2 id="fleet-log">Live log of the logged-in engines</h2>
      {engines.length === 0 ? (
        <p class="muted">Log in to engines on the Engines page to see their logs here.</p>
      ) : (
        <>
          <fieldset class="row" aria-label="engines shown">
            {engines.map((e) => (
              <label key={e} class="check">
                <input
                  type="checkbox"
                  checked={!hidden.has(e)}
                  aria-label={`Show ${e}`}
                  onChange={(ev) => {
                    const next = new Set(hidden);
                    if (ev.currentTarget.checked) next.delete(e);
                    else next.add(e);
                    setHidden(next);
                  }}
                />{' '}
                {e}
              </label>
            ))}
          </fieldset>
          <p class="muted" data-testid="merged-counts">
            {shown.length} item{shown.length === 1 ? '' : 's'} from {engines.length - hidden.size} engine
            {engines.length - hidden.size === 1 ? '' : 's'}, newest first (at most {SHOWN_MAX}).
          </p>
          <div class="scroll">
            <table class="log" data-testid="merged-log">
              <thead>
                <tr>
                  <th>Engine</th>
                  <th>Time</th>
                  <th>Verdict</th>
                  <th>Application</th>
                  <th>Remote</th>
                  <th>Rule</th>
                  <th>Message</th>
                </tr>
              </thead>
              <tbody>
                {shown.map((i) => (
                  <tr key={`${i.engine}\n${i.seq}`} data-engine={i.engine} data-seq={i.seq}>
                    <td>{i.engine}</td>
                    <td>{i.time.slice(11, 19)}</td>
                    <td>{i.verdict ?? i.kind}</td>
                    <td title={i.application}>{baseName(i.application)}</td>
                    <td>{remoteText(i)}</td>
                    <td>{i.rule ?? ''}</td>
                    <td>{i.message}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
        </>
      )}
    </section>
  );
}

export function FleetPage({ sessions }: { sessions: Record<string, SessionJson> }) {
  return (
    <>
      <h1>Fleet</h1>
      <FleetTable />
      <MergedLog engines={Object.keys(sessions).sort()} />
    </>
  );
}
