/** Configuration history: every kept version, the diff between two, rollback, and changes waiting for confirm. */
import { useState } from 'preact/hooks';
import { errorText } from '../api.js';
import { confirmParam, useEngine, useLoad, useNow } from '../context.js';

interface Version {
  version: number;
  time: string;
  user: string;
  source: string;
  what: string;
  restores?: number;
}

export function HistoryPage() {
  const ctx = useEngine();
  const now = useNow();
  const [h, loadError, reload] = useLoad(
    () =>
      ctx.call<{ versions: Version[]; pending: { version: number; previous: number; deadline: string }[] }>(
        'config.history',
      ),
    [ctx],
  );
  const [diff, setDiff] = useState<{ a: number; b: number; policy: string; settings: string }>();
  const [error, setError] = useState('');
  const current = h?.versions[0]?.version;
  const showDiff = (a: number, b: number) =>
    ctx.call<{ policy: string; settings: string }>('config.diff', { a, b }).then(
      (d) => setDiff({ a, b, ...d }),
      (x) => setError(errorText(x)),
    );
  const rollback = (version: number) =>
    ctx.call('config.rollback', { version, ...confirmParam(ctx) }).then(
      (r) => {
        ctx.notePending(r.pending as never);
        setError('');
        reload();
      },
      (x) => setError(errorText(x)),
    );
  return (
    <>
      <h1>Configuration history</h1>
      {(loadError || error) && <p class="error">{loadError || error}</p>}
      {h?.pending.map((p) => (
        <p key={p.version} class="banner">
          Version {p.version} rolls back to {p.previous} in{' '}
          {Math.max(0, Math.round((Date.parse(p.deadline) - now) / 1000))} s unless confirmed.{' '}
          {ctx.role === 'administrator' && (
            <button
              type="button"
              onClick={() => ctx.call('config.confirm', { version: p.version }).then(reload)}
            >
              Confirm
            </button>
          )}{' '}
          {ctx.role === 'administrator' && (
            <button
              type="button"
              onClick={() =>
                ctx.call('config.undo', { version: p.version }).then(reload, (x) => setError(errorText(x)))
              }
            >
              Undo now
            </button>
          )}
        </p>
      ))}
      <div class="scroll">
        <table data-testid="history">
          <thead>
            <tr>
              <th scope="col">Version</th>
              <th scope="col">Time</th>
              <th scope="col">User</th>
              <th scope="col">What</th>
              <th scope="col">Source</th>
              <th scope="col">Actions</th>
            </tr>
          </thead>
          <tbody>
            {h?.versions.map((v) => (
              <tr key={v.version} data-version={v.version}>
                <td>{v.version}</td>
                <td>{new Date(v.time).toLocaleString()}</td>
                <td>{v.user}</td>
                <td>
                  {v.what}
                  {v.restores !== undefined && ` of ${v.restores}`}
                </td>
                <td>{v.source}</td>
                <td class="buttons">
                  {current !== undefined && v.version !== current && (
                    <>
                      <button type="button" onClick={() => showDiff(v.version, current)}>
                        Diff to current
                      </button>
                      {ctx.role === 'administrator' && (
                        <button type="button" onClick={() => rollback(v.version)}>
                          Roll back to {v.version}
                        </button>
                      )}
                    </>
                  )}
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      </div>
      {diff && (
        <section class="card" aria-label="diff">
          <h2>
            Version {diff.a} → {diff.b}
          </h2>
          <pre class="diff" data-testid="diff">
            {(diff.policy + diff.settings || '(no difference)').split('\n').map((l, i) => (
              <div key={i} class={l.startsWith('+') ? 'add' : l.startsWith('-') ? 'del' : ''}>
                {l}
              </div>
            ))}
          </pre>
        </section>
      )}
    </>
  );
}
