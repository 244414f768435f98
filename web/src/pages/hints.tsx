/** Firewall hints: what a network firewall must let through for Warden, with ready rules per firewall tool. */
import { useState } from 'preact/hooks';
import { useEngine, useLoad } from '../context.js';

interface Situation {
  id: string;
  title: string;
  explanation: string;
  rules: Record<string, string>;
}

function SituationCard({ s }: { s: Situation }) {
  const tools = Object.keys(s.rules);
  const [tool, setTool] = useState(tools[0] ?? '');
  return (
    <section class="card" aria-labelledby={`h-${s.id}`} data-testid="hint">
      <h2 id={`h-${s.id}`}>{s.title}</h2>
      {s.explanation.split('\n\n').map((p) => (
        <p key={p}>{p}</p>
      ))}
      <fieldset class="row tools">
        <legend>Rules for</legend>
        {tools.map((t) => (
          <button key={t} type="button" aria-pressed={t === tool} onClick={() => setTool(t)}>
            {t}
          </button>
        ))}
      </fieldset>
      <pre class="rules-text">{s.rules[tool]}</pre>
    </section>
  );
}

export function HintsPage() {
  const ctx = useEngine();
  const [hints, error] = useLoad(
    () => ctx.call<{ applicationPort: number; situations: Situation[] }>('firewall.hints'),
    [ctx],
  );
  return (
    <>
      <h1>Firewall hints</h1>
      {error && <p class="error">{error}</p>}
      {hints && (
        <p>
          Warden uses one application port, <strong>{hints.applicationPort}</strong>, for TCP (configuration,
          TLS) and UDP (live log items). Nothing here changes the engine's host; copy the rules for your
          firewall.
        </p>
      )}
      {hints?.situations.map((s) => (
        <SituationCard key={s.id} s={s} />
      ))}
    </>
  );
}
