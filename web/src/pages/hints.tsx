/** Firewall hints: what a network firewall must let through for Warden, as the engine computes it. */
import { useEngine, useLoad } from '../context.js';

export function HintsPage() {
  const ctx = useEngine();
  const [hints, error] = useLoad(() => ctx.call('firewall.hints'), [ctx]);
  return (
    <>
      <h1>Firewall hints</h1>
      {error && <p class="error">{error}</p>}
      <pre class="card" data-testid="hints">
        {hints ? JSON.stringify(hints, null, 2) : 'loading…'}
      </pre>
    </>
  );
}
