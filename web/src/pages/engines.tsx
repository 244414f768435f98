/** Engines: the known engines, adding one after comparing its fingerprint, logging in, and which transport each uses. */
import { useEffect, useState } from 'preact/hooks';
import { api, errorText, type SessionJson as Session } from '../api.js';
import { useLoad } from '../context.js';

interface EngineRow {
  name: string;
  host: string;
  port: number;
  user?: string;
  fingerprint?: string;
}

function AddEngine({
  onAdded,
  prefill,
}: {
  onAdded: () => void;
  prefill?: { name: string; address: string };
}) {
  const [name, setName] = useState(prefill?.name ?? '');
  const [address, setAddress] = useState(prefill?.address ?? '');
  useEffect(() => {
    if (prefill) {
      setName(prefill.name);
      setAddress(prefill.address);
    }
  }, [prefill]);
  const [probe, setProbe] = useState<{ fingerprint: string; status: string; pinned?: string }>();
  const [error, setError] = useState('');
  const check = (e: Event) => {
    e.preventDefault();
    setError('');
    api.request<typeof probe>('probe', { address }).then(setProbe, (x) => setError(errorText(x)));
  };
  const trust = () =>
    api.request('trust', { name: name || address, address, fingerprint: probe!.fingerprint }).then(
      () => {
        setProbe(undefined);
        setName('');
        setAddress('');
        onAdded();
      },
      (x) => setError(errorText(x)),
    );
  return (
    <section aria-labelledby="add-engine">
      <h2 id="add-engine">Add an engine</h2>
      <form class="row" onSubmit={check}>
        <label>
          Name <input value={name} onInput={(e) => setName(e.currentTarget.value)} placeholder="office" />
        </label>
        <label>
          Address{' '}
          <input
            name="address"
            value={address}
            required
            onInput={(e) => setAddress(e.currentTarget.value)}
            placeholder="host:44334"
          />
        </label>
        <button type="submit">Check fingerprint</button>
      </form>
      {probe && (
        <div class="card" data-testid="fingerprint">
          <p>
            The engine presents this certificate fingerprint. Compare it with the one <code>wardend</code>{' '}
            printed when it started (or <code>wardend fingerprint</code> on that host):
          </p>
          <code class="fp">{probe.fingerprint}</code>
          {probe.status === 'changed' && (
            <p class="error">
              It differs from the pinned {probe.pinned}! Do not trust it unless you know why.
            </p>
          )}
          {probe.status === 'known' && <p>This fingerprint is already pinned.</p>}
          <p>
            <button type="button" onClick={trust} disabled={probe.status === 'changed'}>
              The fingerprints match: trust and add
            </button>{' '}
            <button type="button" onClick={() => setProbe(undefined)}>
              Cancel
            </button>
          </p>
        </div>
      )}
      {error && <p class="error">{error}</p>}
    </section>
  );
}

function Login({ engine, onLogin }: { engine: EngineRow; onLogin: (s: Session) => void }) {
  const [user, setUser] = useState(engine.user ?? '');
  const [password, setPassword] = useState('');
  const [error, setError] = useState('');
  const [busy, setBusy] = useState(false);
  const submit = (e: Event, local = false) => {
    e.preventDefault();
    setBusy(true);
    setError('');
    api
      .request<Session>(
        'login',
        local ? { engine: engine.name, local: true } : { engine: engine.name, user, password },
      )
      .then(onLogin, (x) => setError(errorText(x)))
      .finally(() => setBusy(false));
  };
  return (
    <form class="row" onSubmit={(e) => submit(e)} aria-label={`log in to ${engine.name}`}>
      <label>
        User{' '}
        <input
          name="user"
          value={user}
          autocomplete="username"
          onInput={(e) => setUser(e.currentTarget.value)}
        />
      </label>
      <label>
        Password{' '}
        <input
          name="password"
          type="password"
          value={password}
          autocomplete="current-password"
          onInput={(e) => setPassword(e.currentTarget.value)}
        />
      </label>
      <button type="submit" disabled={busy}>
        Log in
      </button>
      <button type="button" disabled={busy} onClick={(e) => submit(e, true)} title="root on the engine host">
        Local administrator
      </button>
      {error && <span class="error">{error}</span>}
    </form>
  );
}

interface Status {
  version: string;
  hostname: string;
  mode: string;
  rules: number;
  internalRules: number;
  consoles: number;
  kernel: string;
  remoteAdministration: boolean;
}

/** engine.status of a logged-in engine, refreshed every 5 s. */
function EngineStatus({ engine }: { engine: string }) {
  const [s, setS] = useState<Status>();
  const [error, setError] = useState('');
  useEffect(() => {
    const load = () =>
      api.call<Status>(engine, 'engine.status').then(
        (x) => {
          setS(x);
          setError('');
        },
        (x) => setError(errorText(x)),
      );
    load();
    const t = setInterval(load, 5000);
    return () => clearInterval(t);
  }, [engine]);
  if (error) return <p class="error">{error}</p>;
  if (!s) return null;
  return (
    <p data-testid="engine-status">
      {s.hostname}, Warden {s.version}, mode <strong>{s.mode}</strong>, {s.rules} rules ({s.internalRules}{' '}
      internal), {s.consoles} consoles, remote administration {s.remoteAdministration ? 'on' : 'off'}; kernel:{' '}
      {s.kernel}
    </p>
  );
}

/** Forgets an engine (as `warden engines forget`), after asking. */
function ForgetButton({ engine, onDone }: { engine: string; onDone: (error: string) => void }) {
  return (
    <button
      type="button"
      class="danger"
      onClick={() =>
        confirm(`Forget ${engine}? It leaves the engines list and its pinned fingerprint is removed.`) &&
        api.request('forget', { engine }).then(
          () => onDone(''),
          (x) => onDone(errorText(x)),
        )
      }
    >
      Forget this engine
    </button>
  );
}

export function EnginesPage(props: {
  sessions: Record<string, Session>;
  current: string;
  onLogin: (engine: string, s: Session) => void;
  onSelect: (engine: string) => void;
}) {
  const [list, error, reload] = useLoad(() => api.request<{ engines: EngineRow[] }>('engines'));
  const [forgetError, setForgetError] = useState('');
  const [prefill, setPrefill] = useState<{ name: string; address: string }>();
  const forgotten = (e: string) => {
    setForgetError(e);
    reload();
  };
  return (
    <>
      <h1>Engines</h1>
      {(error || forgetError) && <p class="error">{error || forgetError}</p>}
      {list && list.engines.length === 0 && <p>No engine yet: add one below.</p>}
      <ul class="cards">
        {list?.engines.map((e) => {
          const s = props.sessions[e.name];
          return (
            <li key={e.name} class="card" data-engine={e.name}>
              <h2>
                {e.name} <small>{`${e.host}:${e.port}`}</small>
              </h2>
              <p class="fp">{e.fingerprint ?? 'fingerprint not pinned'}</p>
              {!e.fingerprint ? (
                <div data-testid="not-trusted">
                  <p>
                    Not trusted yet: its certificate fingerprint was never confirmed (a connection that
                    failed, or was refused, leaves an engine like this). Check its fingerprint to trust it, or
                    forget it.
                  </p>
                  <p class="buttons">
                    <button
                      type="button"
                      onClick={() => setPrefill({ name: e.name, address: `${e.host}:${e.port}` })}
                    >
                      Check its fingerprint
                    </button>
                    <ForgetButton engine={e.name} onDone={forgotten} />
                  </p>
                </div>
              ) : s ? (
                <>
                  <EngineStatus engine={e.name} />
                  <p>
                    Logged in as {s.user} ({s.role}); log items arrive over <strong>{s.transport}</strong>.{' '}
                    {props.current !== e.name && (
                      <button type="button" onClick={() => props.onSelect(e.name)}>
                        Work on this engine
                      </button>
                    )}
                  </p>
                </>
              ) : (
                <>
                  <Login engine={e} onLogin={(session) => props.onLogin(e.name, session)} />
                  <ForgetButton engine={e.name} onDone={forgotten} />
                </>
              )}
            </li>
          );
        })}
      </ul>
      <AddEngine onAdded={reload} {...(prefill ? { prefill } : {})} />
    </>
  );
}
