/**
 * Browser notifications for ask prompts while the page is open (the Notification API). Permission
 * is asked only when the administrator clicks the button, as browsers require.
 */
import { useState } from 'preact/hooks';
import type { AskPromptJson } from './pages/asks.js';

const supported = () => typeof Notification !== 'undefined';

/** Shows a notification for a new prompt (when allowed); a click brings the page to the Asks tab. */
export function notifyPrompt(engine: string, p: AskPromptJson): void {
  if (!supported() || Notification.permission !== 'granted') return;
  const who = p.application ? p.application.slice(p.application.lastIndexOf('/') + 1) : 'A program';
  const where = p.hosts[0] ?? p.remote;
  const n = new Notification(`Warden: ${who} wants to connect`, {
    body: `${p.direction} ${p.protocol} ${where}${p.remotePort ? ` port ${p.remotePort}` : ''} (${engine}); answer in the console before ${new Date(p.expiresAt).toLocaleTimeString()}`,
    tag: `warden-ask-${p.id}`,
    requireInteraction: true,
  });
  n.onclick = () => {
    focus();
    location.hash = '#/asks';
    n.close();
  };
}

export function NotifyButton() {
  const [permission, setPermission] = useState(supported() ? Notification.permission : 'unsupported');
  if (permission === 'unsupported')
    return <p class="muted">This browser cannot show notifications; keep this tab in sight.</p>;
  if (permission === 'granted')
    return (
      <p class="muted" data-testid="notify-state">
        A desktop notification appears for each new prompt while this page is open.
      </p>
    );
  if (permission === 'denied')
    return (
      <p class="muted" data-testid="notify-state">
        Notifications are blocked for this page in the browser's site settings.
      </p>
    );
  return (
    <p>
      <button
        type="button"
        onClick={() => void Notification.requestPermission().then((p) => setPermission(p))}
      >
        Notify me of new prompts
      </button>{' '}
      <span class="muted">(a desktop notification while this page is open)</span>
    </p>
  );
}
