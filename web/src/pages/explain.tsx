/** Explain a hypothetical connection against the engine's policy, and the policy's lint findings. */
import { useState } from 'preact/hooks';
import { errorText, fieldErrors } from '../api.js';
import { useEngine, useLoad } from '../context.js';

interface Explanation {
  decision: { verdict: string; action: string; ruleName: string; mode: string; source: string };
  internal: { id: string; purpose: string; because: string } | null;
  skipped: { name: string; field: string; reason: string }[];
}

export function ExplainForm() {
  const ctx = useEngine();
  const [f, setF] = useState<Record<string, string>>({ direction: 'outgoing', protocol: 'tcp' });
  const [result, setResult] = useState<Explanation>();
  const [errors, setErrors] = useState<Record<string, string>>({});
  const submit = (e: Event) => {
    e.preventDefault();
    const p: Record<string, unknown> = { direction: f.direction, protocol: f.protocol };
    if (f.application) p.application = f.application;
    if (f.remoteAddress) p.remoteAddress = f.remoteAddress;
    if (f.remotePort) p.remotePort = Number(f.remotePort);
    if (f.localPort) p.localPort = Number(f.localPort);
    if (f.host) p.hosts = [f.host];
    if (f.user) p.user = f.user;
    if (f.parent) p.parent = f.parent;
    if (f.arguments) p.arguments = f.arguments;
    ctx.call<Explanation>('policy.explain', p).then(
      (r) => {
        setResult(r);
        setErrors({});
      },
      (x) => {
        const fe = fieldErrors(x);
        setErrors(Object.keys(fe).length > 0 ? fe : { _: errorText(x) });
      },
    );
  };
  const input = (k: string, label: string, placeholder = '') => (
    <label class={errors[k] ? 'invalid' : ''}>
      {label}
      <input
        name={`explain-${k}`}
        value={f[k] ?? ''}
        placeholder={placeholder}
        onInput={(e) => setF({ ...f, [k]: e.currentTarget.value })}
      />
      {errors[k] && <span class="error">{errors[k]}</span>}
    </label>
  );
  return (
    <section aria-labelledby="explain-h">
      <h2 id="explain-h">Explain a connection</h2>
      <form class="grid card" onSubmit={submit}>
        <label>
          Direction
          <select value={f.direction} onChange={(e) => setF({ ...f, direction: e.currentTarget.value })}>
            <option>outgoing</option>
            <option>incoming</option>
          </select>
        </label>
        <label>
          Protocol
          <select value={f.protocol} onChange={(e) => setF({ ...f, protocol: e.currentTarget.value })}>
            <option>tcp</option>
            <option>udp</option>
            <option>icmp</option>
          </select>
        </label>
        {input('application', 'Application', '/usr/bin/curl')}
        {input('remoteAddress', 'Remote address', '192.0.2.10')}
        {input('host', 'Remote host name', 'example.org')}
        {input('remotePort', 'Remote port', '443')}
        {input('localPort', 'Local port', '')}
        {input('user', 'User', '')}
        {input('parent', 'Parent', '/usr/bin/bash')}
        {input('arguments', 'Command line', 'curl -s https://example.org/')}
        <div class="actions">
          <button type="submit">Explain</button>
        </div>
        {errors._ && <p class="error">{errors._}</p>}
      </form>
      {result && (
        <div class="card" data-testid="explain-result">
          <p>
            Verdict <strong class={`v-${result.decision.verdict}`}>{result.decision.verdict}</strong> by{' '}
            <strong>{result.decision.ruleName}</strong> ({result.decision.source}, mode {result.decision.mode}
            ).
          </p>
          {result.internal && (
            <p>
              Internal rule {result.internal.id}: {result.internal.purpose} — {result.internal.because}
            </p>
          )}
          {result.skipped.length > 0 && (
            <details>
              <summary>{result.skipped.length} earlier rules did not match</summary>
              <ul>
                {result.skipped.map((s) => (
                  <li key={s.name}>
                    {s.name}: {s.field} — {s.reason}
                  </li>
                ))}
              </ul>
            </details>
          )}
        </div>
      )}
    </section>
  );
}

export function LintFindings() {
  const ctx = useEngine();
  const [r, error] = useLoad(
    () =>
      ctx.call<{ findings: { kind: string; severity: string; rule: string; message: string }[] }>(
        'policy.lint',
      ),
    [ctx],
  );
  return (
    <section aria-labelledby="lint-h">
      <h2 id="lint-h">Lint</h2>
      {error && <p class="error">{error}</p>}
      {r && r.findings.length === 0 && (
        <p class="muted">No findings: no shadowed, redundant or conflicting rules.</p>
      )}
      <ul data-testid="lint">
        {r?.findings.map((f) => (
          <li key={`${f.kind}${f.rule}${f.message}`} class={f.severity === 'error' ? 'error' : ''}>
            <strong>{f.severity}</strong> {f.rule}: {f.message}
          </li>
        ))}
      </ul>
    </section>
  );
}
