/**
 * Settings by section, one field per setting (checkbox, number, choice or text), errors at the field,
 * each section with the internal rules it switches now (ids as the engine names them).
 */
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
  ['registration', 'Registration', ['internal.registration']],
  ['proxy', 'Proxy', ['internal.update-checker', 'internal.crash-reports', 'internal.registration']],
  ['dns', 'DNS', ['internal.dns.engine', 'internal.dns.console']],
  ['blockedPopups', 'Blocked pop-up reports', ['internal.blocked-popups']],
  ['metrics', 'Metrics', []],
  ['enforcement', 'Enforcement', []],
];

/** Settings whose value is one of a few words (docs/settings.md). */
const CHOICES: Record<string, string[]> = {
  'syslog.transport': ['udp', 'tcp', 'tls'],
  'proxy.mode': ['auto', 'direct', 'manual'],
  'enforcement.onEngineFailure': ['open', 'closed'],
  'enforcement.onStop': ['keep', 'remove'],
};

/** What a choice costs, shown at its field (docs/settings.md says the same). */
const HINTS: Record<string, string> = {
  'enforcement.onEngineFailure':
    'open: while the engine is not running (stopped, killed, crashed) every new connection that needs it goes through, unlogged. closed: such connections are dropped until it is back. A full queue drops under both.',
};

interface Internal {
  id: string;
  name: string;
  purpose: string;
  because: string;
}

type Value = boolean | number | string | string[];

/** "askTimeoutSeconds" -> "Ask timeout seconds". */
function label(key: string): string {
  const words = key.replace(/([A-Z])/g, ' $1').toLowerCase();
  return words.charAt(0).toUpperCase() + words.slice(1);
}

/** The form's text back into the setting's type (numbers stay text when they are not numbers: the engine says why). */
function parsed(original: Value, text: string | boolean): unknown {
  if (typeof original === 'boolean') return text;
  if (typeof original === 'number') return text !== '' && Number.isFinite(Number(text)) ? Number(text) : text;
  if (Array.isArray(original))
    return String(text)
      .split(',')
      .map((t) => t.trim())
      .filter((t) => t !== '');
  return text;
}

function Section(props: {
  id: string;
  title: string;
  value: Record<string, Value>;
  rules: Internal[];
  onSaved: () => void;
}) {
  const ctx = useEngine();
  const readOnly = ctx.role !== 'administrator';
  const initial = () =>
    Object.fromEntries(
      Object.entries(props.value).map(([k, v]) => [k, Array.isArray(v) ? v.join(', ') : v]),
    ) as Record<string, string | number | boolean>;
  const [form, setForm] = useState(initial);
  const [errors, setErrors] = useState<Record<string, string>>({});
  const [error, setError] = useState('');
  const save = async (e: Event) => {
    e.preventDefault();
    const value = Object.fromEntries(
      Object.entries(props.value).map(([k, v]) => [k, parsed(v, form[k] as string | boolean)]),
    );
    try {
      const r = await ctx.call('settings.set', { settings: { [props.id]: value }, ...confirmParam(ctx) });
      ctx.notePending(r.pending as never);
      setErrors({});
      setError('');
      props.onSaved();
    } catch (x) {
      setErrors(fieldErrors(x));
      setError(errorText(x));
    }
  };
  const field = (key: string, original: Value) => {
    const path = `${props.id}.${key}`;
    const set = (v: string | boolean) => setForm({ ...form, [key]: v });
    const invalid = errors[key] ? 'invalid' : '';
    if (typeof original === 'boolean')
      return (
        <label key={key} class={`check ${invalid}`}>
          <input
            type="checkbox"
            name={path}
            checked={Boolean(form[key])}
            disabled={readOnly}
            onChange={(e) => set(e.currentTarget.checked)}
          />{' '}
          {label(key)}
          {errors[key] && <span class="error"> {errors[key]}</span>}
        </label>
      );
    const choices = CHOICES[path];
    const problem = errors[key] && <span class="error">{errors[key]}</span>;
    if (choices)
      return (
        <label key={key} class={invalid}>
          {label(key)}
          <select
            name={path}
            value={String(form[key])}
            disabled={readOnly}
            onChange={(e) => set(e.currentTarget.value)}
          >
            {choices.map((c) => (
              <option key={c} value={c}>
                {c}
              </option>
            ))}
          </select>
          {HINTS[path] && <small class="muted">{HINTS[path]}</small>}
          {problem}
        </label>
      );
    // Addresses, URLs and lists get the whole width of the form, so their text is not cut off.
    const wide = typeof original !== 'number' ? 'wide' : '';
    return (
      <label key={key} class={`${invalid} ${wide}`.trim()}>
        {label(key)}
        <input
          name={path}
          type="text"
          inputMode={typeof original === 'number' ? 'numeric' : 'text'}
          value={String(form[key] ?? '')}
          readOnly={readOnly}
          placeholder={Array.isArray(original) ? 'comma-separated; empty: any' : ''}
          onInput={(e) => set(e.currentTarget.value)}
        />
        {problem}
      </label>
    );
  };
  return (
    <form class="card" onSubmit={save} aria-labelledby={`s-${props.id}`}>
      <h2 id={`s-${props.id}`}>{props.title}</h2>
      <div class="fields">{Object.entries(props.value).map(([k, v]) => field(k, v))}</div>
      {error && <p class="error">{error}</p>}
      {!readOnly && <button type="submit">Save {props.title.toLowerCase()}</button>}
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
              key={`${id}:${version}:${JSON.stringify(data.settings[id])}`}
              id={id}
              title={title}
              value={(data.settings[id] ?? {}) as Record<string, Value>}
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
