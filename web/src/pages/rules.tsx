/** Rules: the ordered list with add, edit, delete, enable/disable and reorder; explain, lint and the internal rules. */
import { useState } from 'preact/hooks';
import { errorText, fieldErrors } from '../api.js';
import { type Ctx, confirmParam, useEngine, useLoad } from '../context.js';
import { ExplainForm, LintFindings } from './explain.js';
import { ListsSection } from './lists.js';
import { PolicyHeader } from './policy-header.js';

type Rule = Record<string, unknown> & { name: string };

const FIELDS = [
  'name',
  'direction',
  'action',
  'protocol',
  'application',
  'remote',
  'remotePorts',
  'localPorts',
  'user',
];

/** Text fields of the form -> a rule (lists split on commas; ports and addresses as the policy file takes them). */
function ruleFromForm(f: Record<string, string>, enabled: boolean, log: boolean): Record<string, unknown> {
  const r: Record<string, unknown> = { enabled, log };
  for (const k of FIELDS) {
    const v = (f[k] ?? '').trim();
    if (v === '') continue;
    if (k === 'remote') r[k] = v.split(',').map((s) => s.trim());
    else if (k === 'remotePorts' || k === 'localPorts') r[k] = /^\d+$/.test(v) ? Number(v) : v;
    else if (k === 'user' && /^\d+$/.test(v)) r[k] = Number(v);
    else r[k] = v;
  }
  return r;
}

function formFromRule(r?: Rule): Record<string, string> {
  const f: Record<string, string> = { direction: 'outgoing', action: 'allow', protocol: 'any' };
  if (!r) return f;
  for (const k of FIELDS) {
    const v = r[k];
    if (v !== undefined) f[k] = Array.isArray(v) ? v.join(', ') : String(v);
  }
  return f;
}

function RuleForm({ ctx, editing, done }: { ctx: Ctx; editing?: Rule; done: () => void }) {
  const [f, setF] = useState(formFromRule(editing));
  const [enabled, setEnabled] = useState(editing?.enabled !== false);
  const [log, setLog] = useState(editing?.log === true);
  const [errors, setErrors] = useState<Record<string, string>>({});
  const submit = async (e: Event) => {
    e.preventDefault();
    const rule = ruleFromForm(f, enabled, log);
    // Fields the form does not show stay as they were.
    for (const k of ['comment', 'condition', 'expires']) if (editing?.[k] !== undefined) rule[k] = editing[k];
    try {
      const r = editing
        ? await ctx.call('rules.update', { name: editing.name, rule, ...confirmParam(ctx) })
        : await ctx.call('rules.add', { rule, ...confirmParam(ctx) });
      ctx.notePending(r.pending as never);
      setErrors({});
      done();
    } catch (x) {
      const fe = fieldErrors(x);
      setErrors(Object.keys(fe).length > 0 ? fe : { _: errorText(x) });
    }
  };
  const input = (k: string, label: string, placeholder = '') => (
    <label class={errors[k] ? 'invalid' : ''}>
      {label}
      <input
        name={k}
        value={f[k] ?? ''}
        placeholder={placeholder}
        aria-invalid={errors[k] ? true : undefined}
        aria-describedby={errors[k] ? `err-${k}` : undefined}
        onInput={(e) => setF({ ...f, [k]: e.currentTarget.value })}
      />
      {errors[k] && (
        <span class="error" id={`err-${k}`}>
          {errors[k]}
        </span>
      )}
    </label>
  );
  const select = (k: string, label: string, options: string[]) => (
    <label class={errors[k] ? 'invalid' : ''}>
      {label}
      <select name={k} value={f[k]} onChange={(e) => setF({ ...f, [k]: e.currentTarget.value })}>
        {options.map((o) => (
          <option key={o}>{o}</option>
        ))}
      </select>
      {errors[k] && <span class="error">{errors[k]}</span>}
    </label>
  );
  return (
    <form
      class="grid card"
      onSubmit={submit}
      aria-label={editing ? `edit rule ${editing.name}` : 'add a rule'}
    >
      {input('name', 'Name', 'ssh from the office')}
      {select('direction', 'Direction', ['outgoing', 'incoming', 'both'])}
      {select('action', 'Action', ['allow', 'deny', 'reject', 'ask'])}
      {select('protocol', 'Protocol', ['any', 'tcp', 'udp', 'tcp+udp', 'icmp'])}
      {input('application', 'Application', '/usr/bin/curl or any')}
      {input(
        'remote',
        'Remote addresses / hosts / @group / list:name',
        '192.0.2.0/24, example.org, list:ads',
      )}
      {input('remotePorts', 'Remote ports', '443 or 8000-8080')}
      {input('localPorts', 'Local ports', '22')}
      {input('user', 'User', 'alice or 1000')}
      <div class="checks">
        <label class="check">
          <input type="checkbox" checked={enabled} onChange={(e) => setEnabled(e.currentTarget.checked)} />{' '}
          Enabled
        </label>
        <label class="check">
          <input type="checkbox" checked={log} onChange={(e) => setLog(e.currentTarget.checked)} /> Log
          matches
        </label>
      </div>
      <div class="actions">
        <button type="submit">{editing ? 'Save rule' : 'Add rule'}</button>{' '}
        <button type="button" onClick={done}>
          Cancel
        </button>
      </div>
      {errors._ && <p class="error">{errors._}</p>}
    </form>
  );
}

function describe(r: Rule): string {
  const parts = [r.protocol && r.protocol !== 'any' ? String(r.protocol) : ''];
  if (r.remote) parts.push(`to ${([] as unknown[]).concat(r.remote).join(', ')}`);
  if (r.remotePorts !== undefined) parts.push(`port ${r.remotePorts}`);
  if (r.localPorts !== undefined) parts.push(`local port ${r.localPorts}`);
  if (r.user !== undefined) parts.push(`user ${r.user}`);
  return parts.filter(Boolean).join(' ') || 'anything';
}

export function RulesPage() {
  const ctx = useEngine();
  const admin = ctx.role === 'administrator';
  const [showInternal, setShowInternal] = useState(false);
  const [list, loadError, reload] = useLoad(
    () => ctx.call<{ rules: Rule[]; internal?: Rule[] }>('rules.list', { internal: showInternal }),
    [ctx, showInternal],
  );
  const [form, setForm] = useState<{ editing?: Rule } | null>(null);
  const [error, setError] = useState('');
  const change = (method: string, params: Record<string, unknown>) =>
    ctx.call(method, { ...params, ...confirmParam(ctx) }).then(
      (r) => {
        ctx.notePending(r.pending as never);
        setError('');
        reload();
      },
      (x) => setError(errorText(x)),
    );
  const rules = list?.rules ?? [];
  return (
    <>
      <h1>Rules</h1>
      <PolicyHeader onChange={reload} />
      <ListsSection />
      {!admin && <p class="muted">Read-only: you are logged in as an auditor.</p>}
      {loadError && <p class="error">{loadError}</p>}
      {error && <p class="error">{error}</p>}
      {admin && !form && (
        <button type="button" onClick={() => setForm({})}>
          New rule
        </button>
      )}
      {form && (
        <RuleForm
          ctx={ctx}
          {...(form.editing ? { editing: form.editing } : {})}
          done={() => {
            setForm(null);
            reload();
          }}
        />
      )}
      <div class="scroll">
        <table class="rules" data-testid="rules">
          <thead>
            <tr>
              <th scope="col">#</th>
              <th scope="col">Name</th>
              <th scope="col">Direction</th>
              <th scope="col">Application</th>
              <th scope="col">Match</th>
              <th scope="col">Action</th>
              {admin && <th scope="col">Change</th>}
            </tr>
          </thead>
          <tbody>
            {rules.map((r, i) => (
              <tr key={r.name} class={r.enabled === false ? 'disabled' : ''} data-rule={r.name}>
                <td>{i + 1}</td>
                <td>
                  {r.name}
                  {r.enabled === false && <em> (disabled)</em>}
                </td>
                <td>{String(r.direction)}</td>
                <td>{String(r.application ?? 'any')}</td>
                <td>{describe(r)}</td>
                <td class={`v-${r.action}`}>{String(r.action)}</td>
                {admin && (
                  <td class="buttons">
                    <button
                      type="button"
                      aria-label={`move ${r.name} up`}
                      disabled={i === 0}
                      onClick={() => change('rules.move', { name: r.name, position: i - 1 })}
                    >
                      ↑
                    </button>
                    <button
                      type="button"
                      aria-label={`move ${r.name} down`}
                      disabled={i === rules.length - 1}
                      onClick={() => change('rules.move', { name: r.name, position: i + 1 })}
                    >
                      ↓
                    </button>
                    <button
                      type="button"
                      onClick={() =>
                        change('rules.update', { name: r.name, rule: { ...r, enabled: r.enabled === false } })
                      }
                    >
                      {r.enabled === false ? 'Enable' : 'Disable'}
                    </button>
                    <button type="button" onClick={() => setForm({ editing: r })}>
                      Edit
                    </button>
                    <button
                      type="button"
                      onClick={() =>
                        confirm(`Delete rule "${r.name}"?`) && change('rules.remove', { name: r.name })
                      }
                    >
                      Delete
                    </button>
                  </td>
                )}
              </tr>
            ))}
          </tbody>
        </table>
      </div>
      <label class="check">
        <input
          type="checkbox"
          checked={showInternal}
          onChange={(e) => setShowInternal(e.currentTarget.checked)}
        />{' '}
        Show the internal rules (read-only; settings switch them)
      </label>
      {showInternal && list?.internal && (
        <table class="rules" data-testid="internal-rules">
          <tbody>
            {list.internal.map((r) => (
              <tr key={r.name}>
                <td>{r.name}</td>
                <td>{String(r.direction)}</td>
                <td>{describe(r)}</td>
                <td class={`v-${r.action}`}>{String(r.action)}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      <ExplainForm />
      <LintFindings key={rules.map((r) => r.name).join('\n')} />
    </>
  );
}
