/** Users and roles: who this session is. Users are managed on the engine host with `wardend user`. */
import { useEngine, useLoad } from '../context.js';

export function UsersPage() {
  const ctx = useEngine();
  const [me, error] = useLoad(
    () =>
      ctx.call<{ user: string; role: string; remoteAddress: string; since: string; logTransport: string }>(
        'session.whoami',
      ),
    [ctx],
  );
  return (
    <>
      <h1>Users and roles</h1>
      {error && <p class="error">{error}</p>}
      {me && (
        <dl class="card">
          <dt>User</dt>
          <dd>{me.user}</dd>
          <dt>Role</dt>
          <dd>{me.role}</dd>
          <dt>From</dt>
          <dd>{me.remoteAddress}</dd>
          <dt>Since</dt>
          <dd>{new Date(me.since).toLocaleString()}</dd>
          <dt>Log transport</dt>
          <dd>{me.logTransport}</dd>
        </dl>
      )}
      <h2>Roles</h2>
      <ul>
        <li>
          <strong>administrator</strong>: reads everything, changes rules and settings, answers prompts, rolls
          back.
        </li>
        <li>
          <strong>auditor</strong>: reads everything; the engine refuses every change (the console shows no
          editing controls).
        </li>
      </ul>
      <p class="muted">
        The administration protocol has no user-management methods yet: add and remove users on the engine
        host with <code>wardend user add NAME --role auditor|administrator</code>.
      </p>
    </>
  );
}
