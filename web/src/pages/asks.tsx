/** Ask prompts as they arrive: what wants to connect, the time left, and the answer (verdict, duration, scope). */
import { useState } from 'preact/hooks';
import { errorText } from '../api.js';
import { useEngine, useNow } from '../context.js';
import { NotifyButton } from '../notify.js';

export interface AskPromptJson {
  id: string;
  time: string;
  expiresAt: string;
  defaultVerdict: string;
  direction: string;
  protocol: string;
  application?: string;
  pid?: number;
  commandLine?: string[];
  user?: string;
  remote: string;
  remotePort?: number;
  hosts: string[];
  rule: string;
  waiting: number;
  /** A pinned rule that did not hold: the program's file changed. */
  change?: string;
}

function Prompt({ p, now }: { p: AskPromptJson; now: number }) {
  const ctx = useEngine();
  const [duration, setDuration] = useState('once');
  const [minutes, setMinutes] = useState(60);
  const [scope, setScope] = useState('application');
  const [error, setError] = useState('');
  const left = Math.max(0, Math.round((Date.parse(p.expiresAt) - now) / 1000));
  const answer = (verdict: 'allow' | 'deny') =>
    ctx
      .call('asks.answer', {
        id: p.id,
        verdict,
        duration,
        scope,
        ...(duration === 'temporary' ? { minutes } : {}),
      })
      .catch((x) => setError(errorText(x)));
  return (
    <li class="card ask" data-testid="ask" aria-label={`ask: ${p.application ?? 'unknown application'}`}>
      <h2>
        {p.application ?? 'unknown application'} <small>{p.direction}</small>
      </h2>
      <p>
        {p.protocol} {p.direction === 'outgoing' ? 'to' : 'from'} <strong>{p.hosts[0] ?? p.remote}</strong> (
        {p.remote}){p.user && `, user ${p.user}`}
        {p.commandLine && <code> {p.commandLine.join(' ')}</code>}
      </p>
      {p.change && (
        <p class="error" data-testid="ask-change">
          The program changed: {p.change}
        </p>
      )}
      <p>
        Rule "{p.rule}" asks. <strong data-testid="time-left">{left} s</strong> left, then the default (
        {p.defaultVerdict}) decides.
      </p>
      {ctx.role === 'administrator' ? (
        <div class="row">
          <label>
            For{' '}
            <select name="duration" value={duration} onChange={(e) => setDuration(e.currentTarget.value)}>
              <option value="once">this connection only</option>
              <option value="temporary">a while</option>
              <option value="always">always</option>
            </select>
          </label>
          {duration === 'temporary' && (
            <label>
              Minutes{' '}
              <input
                type="number"
                min={1}
                value={minutes}
                onInput={(e) => setMinutes(Number(e.currentTarget.value))}
              />
            </label>
          )}
          {duration !== 'once' && (
            <label>
              Scope{' '}
              <select name="scope" value={scope} onChange={(e) => setScope(e.currentTarget.value)}>
                <option value="application">the application</option>
                <option value="port">the application and this port</option>
                <option value="host">the application and this host</option>
              </select>
            </label>
          )}
          <button type="button" class="allow" onClick={() => answer('allow')}>
            Allow
          </button>
          <button type="button" class="deny" onClick={() => answer('deny')}>
            Deny
          </button>
        </div>
      ) : (
        <p class="muted">Only an administrator can answer.</p>
      )}
      {error && <p class="error">{error}</p>}
    </li>
  );
}

export function AsksPage({ prompts }: { prompts: AskPromptJson[] }) {
  const now = useNow();
  return (
    <>
      <h1>Asks</h1>
      <NotifyButton />
      {prompts.length === 0 && (
        <p class="muted">Nothing is waiting for an answer. Prompts appear here as they arrive.</p>
      )}
      <ul class="cards">
        {prompts.map((p) => (
          <Prompt key={p.id} p={p} now={now} />
        ))}
      </ul>
    </>
  );
}
