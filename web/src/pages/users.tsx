/**
 * Users and roles: who this session is, and the engine's console users. Administrators add users,
 * change roles and passwords and remove users (users.* methods); the engine logs a changed user's
 * consoles out and never removes or demotes the last administrator. Auditors only see the list.
 */
import { useState } from 'preact/hooks';
import { errorText, fieldErrors } from '../api.js';
import { useEngine, useLoad } from '../context.js';

type Role = 'administrator' | 'auditor';
interface User {
  name: string;
  role: Role;
}

function AddUser({ onDone }: { onDone: () => void }) {
  const ctx = useEngine();
  const [name, setName] = useState('');
  const [role, setRole] = useState<Role>('auditor');
  const [password, setPassword] = useState('');
  const [errors, setErrors] = useState<Record<string, string>>({});
  const [error, setError] = useState('');
  const submit = (e: Event) => {
    e.preventDefault();
    ctx.call('users.add', { name, role, password }).then(
      () => {
        setName('');
        setPassword('');
        setErrors({});
        setError('');
        onDone();
      },
      (x) => {
        setErrors(fieldErrors(x));
        setError(errorText(x));
      },
    );
  };
  return (
    <form class="row" onSubmit={submit} aria-label="add a user">
      <label class={errors.name ? 'invalid' : ''}>
        Name{' '}
        <input name="name" value={name} autocomplete="off" onInput={(e) => setName(e.currentTarget.value)} />
      </label>
      <label>
        Role{' '}
        <select name="role" value={role} onChange={(e) => setRole(e.currentTarget.value as Role)}>
          <option value="auditor">auditor</option>
          <option value="administrator">administrator</option>
        </select>
      </label>
      <label class={errors.password ? 'invalid' : ''}>
        Password{' '}
        <input
          name="password"
          type="password"
          value={password}
          autocomplete="new-password"
          onInput={(e) => setPassword(e.currentTarget.value)}
        />
      </label>
      <button type="submit">Add user</button>
      {error && <span class="error">{error}</span>}
    </form>
  );
}

function UserRow({ user, me, onDone }: { user: User; me: string; onDone: () => void }) {
  const ctx = useEngine();
  const [error, setError] = useState('');
  const [password, setPassword] = useState<string | undefined>();
  const act = (method: string, params: Record<string, unknown>) =>
    ctx.call(method, { name: user.name, ...params }).then(
      () => {
        setError('');
        setPassword(undefined);
        onDone();
      },
      (x) => setError(errorText(x)),
    );
  const other: Role = user.role === 'administrator' ? 'auditor' : 'administrator';
  return (
    <tr data-user={user.name}>
      <td>
        {user.name}
        {user.name === me && <span class="muted"> (you)</span>}
      </td>
      <td>{user.role}</td>
      {ctx.role === 'administrator' && (
        <td>
          <button type="button" onClick={() => act('users.setRole', { role: other })}>
            Make {other}
          </button>{' '}
          {password === undefined ? (
            <button type="button" onClick={() => setPassword('')}>
              New password
            </button>
          ) : (
            <form
              class="inline"
              aria-label={`new password for ${user.name}`}
              onSubmit={(e) => {
                e.preventDefault();
                act('users.setPassword', { password });
              }}
            >
              <input
                type="password"
                name="new-password"
                aria-label={`new password for ${user.name}`}
                autocomplete="new-password"
                value={password}
                onInput={(e) => setPassword(e.currentTarget.value)}
              />
              <button type="submit">Set</button>
            </form>
          )}{' '}
          <button
            type="button"
            class="danger"
            onClick={() => window.confirm(`Remove ${user.name}?`) && act('users.remove', {})}
          >
            Remove
          </button>
          {error && <p class="error">{error}</p>}
        </td>
      )}
    </tr>
  );
}

export function UsersPage() {
  const ctx = useEngine();
  const [me, error] = useLoad(
    () =>
      ctx.call<{ user: string; role: string; remoteAddress: string; since: string; logTransport: string }>(
        'session.whoami',
      ),
    [ctx],
  );
  const [list, listError, reload] = useLoad(() => ctx.call<{ users: User[] }>('users.list'), [ctx]);
  return (
    <>
      <h1>Users and roles</h1>
      {(error || listError) && <p class="error">{error || listError}</p>}
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
      <h2>Console users</h2>
      <div class="scroll">
        <table data-testid="users">
          <thead>
            <tr>
              <th scope="col">User</th>
              <th scope="col">Role</th>
              {ctx.role === 'administrator' && <th scope="col">Actions</th>}
            </tr>
          </thead>
          <tbody>
            {list?.users.length === 0 && (
              <tr>
                <td colSpan={3} data-testid="no-users">
                  No console users yet: only the local administrator (root on the engine host) can log in.
                  {ctx.role === 'administrator' ? ' Add one below.' : ''}
                </td>
              </tr>
            )}
            {list?.users.map((u) => (
              <UserRow key={u.name} user={u} me={me?.user ?? ''} onDone={reload} />
            ))}
          </tbody>
        </table>
      </div>
      {ctx.role === 'administrator' && <AddUser onDone={reload} />}
      <h2>Roles</h2>
      <ul>
        <li>
          <strong>administrator</strong>: reads everything, changes rules, settings and users, answers
          prompts, rolls back.
        </li>
        <li>
          <strong>auditor</strong>: reads everything; the engine refuses every change (the console shows no
          editing controls).
        </li>
      </ul>
      <p class="muted">
        A user whose role or password changes is logged out of every console. The last administrator can be
        neither removed nor demoted. The local administrator (root on the engine host, with the token file) is
        not in this list and always may log in there.
      </p>
    </>
  );
}
