/** Settings by section, each with the internal rules it switches (ids as the engine names them). */
import { useState } from 'preact/hooks';
import { errorText, fieldErrors } from '../api.js';
import { confirmParam, useEngine, useLoad } from '../context.js';

/** Section -> the internal rules whose id it switches. */
const SECTIONS: [string, string, string[]][] = [
  [
    'remoteAdministration',
    'Remote administration',
    ['internal.remote-configuration', 'internal.console-to-engine', 'internal.engine-to-console'],
  ],
  ['syslog', 'Syslog forwarding', ['internal.syslog']],
  ['crashReports', 'Crash reports', ['internal.crash-reports']],
  ['updates', 'Updates', ['internal.update-checker']],
  ['proxy', 'Proxy', ['internal.update-checker', 'internal.crash-reports', 'internal.registration']],
  ['enforcement', 'Enforcement', []],
];

interface Internal {
  id: string;
  name: string;
  purpose: string;
  because: string;
}

function Section(props: {
  id: string;
  title: string;
  value: unknown;
  rules: Internal[];
  onSaved: () => void;
}) {
  const ctx = useEngine();
  const [text, setText] = useState(JSON.stringify(props.value ?? {}, null, 2));
  const [error, setError] = useState('');
  const save = async (e: Event) => {
    e.preventDefault();
    let value: unknown;
    try {
      value = JSON.parse(text);
    } catch (x) {
      setError(`not JSON: ${(x as Error).message}`);
      return;
    }
    try {
      const r = await ctx.call('settings.set', { settings: { [props.id]: value }, ...confirmParam(ctx) });
      ctx.notePending(r.pending as never);
      setError('');
      props.onSaved();
    } catch (x) {
      const fe = fieldErrors(x);
      setError(
        Object.entries(fe)
          .map(([k, v]) => `${k}: ${v}`)
          .join('; ') || errorText(x),
      );
    }
  };
  return (
    <form class="card" onSubmit={save} aria-labelledby={`s-${props.id}`}>
      <h2 id={`s-${props.id}`}>{props.title}</h2>
      <textarea
        aria-label={`${props.title} settings (JSON)`}
        rows={Math.min(12, text.split('\n').length + 1)}
        value={text}
        readOnly={ctx.role !== 'administrator'}
        onInput={(e) => setText(e.currentTarget.value)}
      />
      {error && <p class="error">{error}</p>}
      {ctx.role === 'administrator' && <button type="submit">Save {props.title.toLowerCase()}</button>}
      <p class="muted">Internal rules this switches now:</p>
      <ul>
        {props.rules.length === 0 && <li class="muted">none active</li>}
        {props.rules.map((r) => (
          <li key={r.name}>
            {r.name} <small class="muted">— {r.because}</small>
          </li>
        ))}
      </ul>
    </form>
  );
}

export function SettingsPage() {
  const ctx = useEngine();
  const [data, error, reload] = useLoad(async () => {
    const [s, r] = await Promise.all([
      ctx.call<{ settings: Record<string, unknown> }>('settings.get'),
      ctx.call<{ internal: Internal[] }>('rules.list', { internal: true }),
    ]);
    return { settings: s.settings, internal: r.internal };
  }, [ctx]);
  const [version, setVersion] = useState(0);
  return (
    <>
      <h1>Settings</h1>
      {error && <p class="error">{error}</p>}
      <div class="cards two">
        {data &&
          SECTIONS.map(([id, title, ids]) => (
            <Section
              key={`${id}${version}`}
              id={id}
              title={title}
              value={data.settings[id]}
              rules={data.internal.filter((r) => ids.includes(r.id))}
              onSaved={() => {
                reload();
                setVersion((v) => v + 1);
              }}
            />
          ))}
      </div>
    </>
  );
}
