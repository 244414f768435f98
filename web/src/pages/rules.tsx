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
  'sha256',
  'remote',
  'remotePorts',
  'localPorts',
  'user',
  'parent',
  'ancestor',
  'arguments',
  'interface',
];

/** A warning about a saved rule (rules.add/update: e.g. a program path that does not exist here). */
type RuleWarning = { kind: string; message: string };

function warningsOf(r: Record<string, unknown>): RuleWarning[] {
  return Array.isArray(r.warnings) ? (r.warnings as RuleWarning[]) : [];
}

/** Text fields of the form -> a rule (lists split on commas; ports and addresses as the policy file takes them). */
function ruleFromForm(f: Record<string, string>, enabled: boolean, log: boolean): Record<string, unknown> {
  const r: Record<string, unknown> = { enabled, log };
  for (const k of FIELDS) {
    const v = (f[k] ?? '').trim();
    if (v === '') continue;
    // A glob keeps its spaces: they are part of the command line it matches.
    if (k === 'arguments') r[k] = f[k];
    else if (k === 'remote' || k === 'interface') r[k] = v.split(',').map((s) => s.trim());
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

function RuleForm({
  ctx,
  editing,
  done,
}: {
  ctx: Ctx;
  editing?: Rule;
  done: (warnings?: RuleWarning[]) => void;
}) {
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
      done(warningsOf(r));
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
      <div class="pin" style={{ gridColumn: 'span 2', display: 'flex', gap: '0.4rem', alignItems: 'end' }}>
        {input('sha256', 'Pinned SHA-256', '64 hex digits, or empty: any file')}
        <button
          type="button"
          disabled={!(f.application ?? '').startsWith('/')}
          onClick={async () => {
            try {
              const r = await ctx.call('programs.hash', { path: (f.application ?? '').trim() });
              setF({ ...f, sha256: String(r.sha256) });
              setErrors({ ...errors, sha256: '' });
            } catch (x) {
              setErrors({ ...errors, sha256: errorText(x) });
            }
          }}
        >
          Pin current
        </button>
      </div>
      {input('remote', 'Remote addresses / hosts / @group / list:ads', '192.0.2.0/24, example.org, list:ads')}
      {input('remotePorts', 'Remote ports', '443 or 8000-8080')}
      {input('localPorts', 'Local ports', '22')}
      {input('user', 'User', 'alice or 1000')}
      {input('parent', 'Parent program', '/usr/bin/bash (the direct parent)')}
      {input('ancestor', 'Ancestor program', '/usr/sbin/sshd (any ancestor)')}
      {input('arguments', 'Command line (glob)', 'curl -s https://example.org/*')}
      {input('interface', 'Interfaces', 'eth0, wg*')}
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
        <button type="button" onClick={() => done()}>
          Cancel
        </button>
      </div>
      {errors._ && <p class="error">{errors._}</p>}
    </form>
  );
}

/** The rule as the policy has it: rules.list adds its counters (matches, lastMatch), which are no rule fields. */
function plainRule(r: Rule): Rule {
  const { matches: _matches, lastMatch: _lastMatch, ...rule } = r;
  return rule as Rule;
}

/** When a rule last matched, relative and short ("3 min ago"), or "never". */
function lastMatchText(at: unknown): string {
  if (typeof at !== 'string') return 'never';
  const s = Math.max(0, Math.round((Date.now() - Date.parse(at)) / 1000));
  if (s < 60) return `${s} s ago`;
  if (s < 3600) return `${Math.round(s / 60)} min ago`;
  if (s < 86400) return `${Math.round(s / 3600)} h ago`;
  return `${Math.round(s / 86400)} d ago`;
}

function describe(r: Rule): string {
  const parts = [r.protocol && r.protocol !== 'any' ? String(r.protocol) : ''];
  if (r.remote) parts.push(`to ${([] as unknown[]).concat(r.remote).join(', ')}`);
  if (r.remotePorts !== undefined) parts.push(`port ${r.remotePorts}`);
  if (r.localPorts !== undefined) parts.push(`local port ${r.localPorts}`);
  if (r.user !== undefined) parts.push(`user ${r.user}`);
  if (r.parent !== undefined) parts.push(`parent ${r.parent}`);
  if (r.ancestor !== undefined) parts.push(`under ${r.ancestor}`);
  if (r.arguments !== undefined) parts.push(`command line "${r.arguments}"`);
  if (r.interface !== undefined) parts.push(`via ${([] as unknown[]).concat(r.interface).join(', ')}`);
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
  // What rules.add/update said about the rule just saved: kept until the next change.
  const [warnings, setWarnings] = useState<RuleWarning[]>([]);
  const change = (method: string, params: Record<string, unknown>) =>
    ctx.call(method, { ...params, ...confirmParam(ctx) }).then(
      (r) => {
        ctx.notePending(r.pending as never);
        setError('');
        setWarnings(warningsOf(r));
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
      {warnings.length > 0 && (
        <div class="card rule-warnings" role="status" data-testid="rule-warnings">
          <strong>Saved, with {warnings.length === 1 ? 'a warning' : `${warnings.length} warnings`}:</strong>
          <ul>
            {warnings.map((w) => (
              <li key={w.message} data-kind={w.kind}>
                {w.message}
              </li>
            ))}
          </ul>
        </div>
      )}
      {admin && !form && (
        <button
          type="button"
          onClick={() => {
            setWarnings([]);
            setForm({});
          }}
        >
          New rule
        </button>
      )}
      {form && (
        <RuleForm
          ctx={ctx}
          {...(form.editing ? { editing: form.editing } : {})}
          done={(saved) => {
            setForm(null);
            if (saved !== undefined) setWarnings(saved);
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
              <th scope="col">Matches</th>
              <th scope="col">Last match</th>
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
                  {typeof r.subscription === 'string' && (
                    <small title="included from a subscription: read-only here, may be disabled">
                      {` included: ${r.subscription}`}
                    </small>
                  )}
                </td>
                <td>{String(r.direction)}</td>
                <td>
                  {String(r.application ?? 'any')}
                  {r.sha256 ? <small title={String(r.sha256)}> pinned</small> : null}
                </td>
                <td>{describe(r)}</td>
                <td class={`v-${r.action}`}>{String(r.action)}</td>
                <td class="num" data-testid="matches">
                  {String(r.matches ?? 0)}
                </td>
                <td title={typeof r.lastMatch === 'string' ? r.lastMatch : ''}>
                  {lastMatchText(r.lastMatch)}
                </td>
                {admin && (
                  <td class="buttons">
                    {/* An included rule is its subscription's: only Enable/Disable (docs/policy.md, "Included rules"). */}
                    {typeof r.subscription !== 'string' && (
                      <>
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
                      </>
                    )}
                    <button
                      type="button"
                      onClick={() =>
                        change('rules.update', {
                          name: r.name,
                          rule: { ...plainRule(r), enabled: r.enabled === false },
                        })
                      }
                    >
                      {r.enabled === false ? 'Enable' : 'Disable'}
                    </button>
                    {typeof r.subscription !== 'string' && (
                      <>
                        <button type="button" onClick={() => setForm({ editing: plainRule(r) })}>
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
                      </>
                    )}
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
                <td class="num">{String(r.matches ?? 0)}</td>
                <td title={typeof r.lastMatch === 'string' ? r.lastMatch : ''}>
                  {lastMatchText(r.lastMatch)}
                </td>
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
