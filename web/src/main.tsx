/** The web console's shell: the connection to `warden console`, engine sessions, navigation and the pages. */
import { render } from 'preact';
import { useEffect, useMemo, useState } from 'preact/hooks';
import { api, type ConsoleState, errorText, type SessionJson } from './api.js';
import { type Ctx, EngineContext, type Pending, useNow } from './context.js';
import { notifyPrompt } from './notify.js';
import { ApplicationPage } from './pages/application.js';
import { type AskPromptJson, AsksPage } from './pages/asks.js';
import { ConnectionsPage } from './pages/connections.js';
import { Dashboard } from './pages/dashboard.js';
import { EnginesPage } from './pages/engines.js';
import { FleetPage } from './pages/fleet.js';
import { HintsPage } from './pages/hints.js';
import { HistoryPage } from './pages/history.js';
import { LiveLog } from './pages/live-log.js';
import { ProposalsPage } from './pages/proposals.js';
import { RulesPage } from './pages/rules.js';
import { SettingsPage } from './pages/settings.js';
import { UsersPage } from './pages/users.js';
import './style.css';

const PAGES = [
  ['engines', 'Engines'],
  ['dashboard', 'Dashboard'],
  ['fleet', 'Fleet'],
  ['log', 'Live log'],
  ['connections', 'Connected now'],
  ['rules', 'Rules'],
  ['proposals', 'Proposals'],
  ['asks', 'Asks'],
  ['history', 'History'],
  ['settings', 'Settings'],
  ['users', 'Users'],
  ['hints', 'Hints'],
] as const;
type PageId = (typeof PAGES)[number][0] | 'app';
/** The engine worked on, kept over a reload of this tab. */
const CURRENT_KEY = 'warden-console-engine';

interface Route {
  page: PageId;
  /** For the application page: its executable path. */
  arg: string;
}

function routeFromHash(): Route {
  const h = location.hash.replace(/^#\/?/, '');
  if (h.startsWith('app/')) return { page: 'app', arg: decodeURIComponent(h.slice(4)) };
  return { page: (PAGES.find(([id]) => id === h)?.[0] ?? 'engines') as PageId, arg: '' };
}

type Session = SessionJson & { retry?: string };

function PendingBanner({ pending, ctx, done }: { pending: Pending; ctx: Ctx; done: () => void }) {
  const now = useNow();
  const left = Math.max(0, Math.round((Date.parse(pending.deadline) - now) / 1000));
  const [error, setError] = useState('');
  useEffect(() => {
    if (left === 0) done();
  }, [left, done]);
  return (
    <div class="banner" role="alert">
      Version {pending.version} is applied on probation: it rolls back to {pending.previous} in{' '}
      <strong data-testid="countdown">{left} s</strong> unless you confirm.{' '}
      <button
        type="button"
        onClick={() =>
          ctx.call('config.confirm', { version: pending.version }).then(done, (e) => setError(errorText(e)))
        }
      >
        Keep this change
      </button>{' '}
      <button
        type="button"
        onClick={() =>
          ctx.call('config.undo', { version: pending.version }).then(done, (e) => setError(errorText(e)))
        }
      >
        Undo it now
      </button>
      {error && <span class="error"> {error}</span>}
    </div>
  );
}

function App() {
  const [conn, setConn] = useState<ConsoleState>({ state: 'connecting' });
  const [route, setRoute] = useState<Route>(routeFromHash());
  const [sessions, setSessions] = useState<Record<string, Session>>({});
  const [current, setCurrent] = useState<string>(() => sessionStorage.getItem(CURRENT_KEY) ?? '');
  const [prompts, setPrompts] = useState<AskPromptJson[]>([]);
  const [pending, setPending] = useState<Pending>();
  const [confirmSeconds, setConfirmSeconds] = useState(0);
  const [notice, setNotice] = useState('');

  useEffect(() => {
    let wasOpen = false;
    api.connect((s) => {
      setConn(s);
      if (s.state !== 'open') return;
      // The console handed back this tab's sessions (after a reload or a lost connection), or none.
      setSessions(s.sessions);
      setCurrent((c) => (s.sessions[c] ? c : (Object.keys(s.sessions)[0] ?? '')));
      if (wasOpen) dispatchEvent(new Event('warden:resumed'));
      wasOpen = true;
    });
    const onHash = () => setRoute(routeFromHash());
    addEventListener('hashchange', onHash);
    return api.onPush((p) => {
      if (p.push === 'notify' && p.method === 'asks.prompt') {
        const prompt = p.params as AskPromptJson;
        setPrompts((l) => [...l.filter((x) => x.id !== prompt.id), prompt]);
        notifyPrompt(p.engine, prompt);
      }
      if (p.push === 'notify' && p.method === 'asks.resolved')
        setPrompts((l) => l.filter((x) => x.id !== (p.params as { id: string }).id));
      if (p.push === 'transport')
        setSessions((s) =>
          s[p.engine] ? { ...s, [p.engine]: { ...s[p.engine]!, transport: p.transport } } : s,
        );
      if (p.push === 'reconnecting')
        setSessions((s) =>
          s[p.engine]
            ? {
                ...s,
                [p.engine]: {
                  ...s[p.engine]!,
                  retry: `${p.engine} is not answering (${p.reason}); trying again in ${Math.ceil(p.inMs / 1000)} s`,
                },
              }
            : s,
        );
      if (p.push === 'reconnected') {
        setSessions((s) => ({ ...s, [p.engine]: p.session }));
        dispatchEvent(new Event('warden:resumed'));
      }
      if (p.push === 'closed') {
        setSessions(({ [p.engine]: _gone, ...rest }) => rest);
        setNotice(`The session with ${p.engine} ended: ${p.reason}`);
      }
    });
  }, []);

  useEffect(() => {
    if (current) sessionStorage.setItem(CURRENT_KEY, current);
  }, [current]);

  const session = sessions[current];
  const sessionKey = session ? `${session.user}/${session.role}` : '';
  const ctx = useMemo<Ctx | null>(
    () =>
      session
        ? {
            engine: current,
            user: session.user,
            role: session.role,
            call: (method, params = {}) => api.call(current, method, params),
            notePending: setPending,
            confirmSeconds,
          }
        : null,
    [current, sessionKey, confirmSeconds],
  );

  useEffect(() => {
    if (!ctx) return;
    ctx.call<{ prompts: AskPromptJson[] }>('asks.list').then(
      (r) => setPrompts(r.prompts),
      () => {},
    );
  }, [ctx]);

  const onLogin = (engine: string, s: SessionJson) => {
    setSessions((all) => ({ ...all, [engine]: s }));
    setCurrent(engine);
    location.hash = '#/log';
  };

  const { page } = route;
  const body =
    conn.state !== 'open' && !ctx ? (
      <p class="muted">Connecting to the console…</p>
    ) : page === 'fleet' ? (
      <FleetPage sessions={sessions} />
    ) : page === 'engines' || !ctx ? (
      <EnginesPage sessions={sessions} current={current} onLogin={onLogin} onSelect={setCurrent} />
    ) : page === 'dashboard' ? (
      <Dashboard />
    ) : page === 'log' ? (
      <LiveLog />
    ) : page === 'connections' ? (
      <ConnectionsPage />
    ) : page === 'app' ? (
      <ApplicationPage key={route.arg} path={route.arg} />
    ) : page === 'rules' ? (
      <RulesPage />
    ) : page === 'proposals' ? (
      <ProposalsPage />
    ) : page === 'asks' ? (
      <AsksPage prompts={prompts} />
    ) : page === 'history' ? (
      <HistoryPage />
    ) : page === 'settings' ? (
      <SettingsPage />
    ) : page === 'users' ? (
      <UsersPage />
    ) : (
      <HintsPage />
    );

  return (
    <EngineContext.Provider value={ctx}>
      <header>
        <strong class="brand">Warden</strong>
        <nav aria-label="pages">
          {PAGES.map(([id, label]) => (
            <a key={id} href={`#/${id}`} aria-current={page === id ? 'page' : undefined}>
              {label}
              {id === 'asks' && prompts.length > 0 && <span class="badge">{prompts.length}</span>}
            </a>
          ))}
        </nav>
        <span class="who" data-testid="who">
          {conn.state === 'retrying' ? (
            <span class="warn">
              Connection to the console lost; trying again in {Math.ceil(conn.inMs / 1000)} s
            </span>
          ) : session?.retry ? (
            <span class="warn">{session.retry}</span>
          ) : session ? (
            <>
              {current}: {session.user} ({session.role}
              {session.role === 'auditor' ? ', read-only' : ''}), logs over {session.transport}
            </>
          ) : conn.state === 'open' ? (
            'not logged in'
          ) : (
            'connecting…'
          )}
        </span>
        {ctx && ctx.role === 'administrator' && (
          <label class="confirm-toggle">
            Confirmed apply{' '}
            <select
              value={String(confirmSeconds)}
              onChange={(e) => setConfirmSeconds(Number((e.target as HTMLSelectElement).value))}
            >
              <option value="0">off</option>
              <option value="30">30 s</option>
              <option value="60">60 s</option>
              <option value="300">5 min</option>
            </select>
          </label>
        )}
      </header>
      {pending && ctx && <PendingBanner pending={pending} ctx={ctx} done={() => setPending(undefined)} />}
      {notice && (
        <div class="banner" role="status">
          {notice}{' '}
          <button type="button" onClick={() => setNotice('')}>
            Dismiss
          </button>
        </div>
      )}
      <main>{body}</main>
    </EngineContext.Provider>
  );
}

render(<App />, document.getElementById('app')!);
