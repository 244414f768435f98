/**
 * Console users managed over the real protocol: administrators add, re-role, re-password and remove
 * users; auditors may only list; every change is an audit item; a changed user's consoles are logged
 * out (with a notification saying why); the last administrator can be neither removed nor demoted.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { EngineClient } from '../../src/client/engine-client.js';
import { Methods, Notifications } from '../../src/protocol/methods.js';
import { type Harness, startHarness } from './admin-harness.js';

const closed = (c: EngineClient) => new Promise<string>((resolve) => c.onClose(resolve));

describe('users over the protocol', () => {
  let h: Harness;
  before(async () => {
    h = await startHarness();
  });
  after(() => h.close());

  test('an auditor lists users (no password in sight) but may not change them', async () => {
    const bob = await h.login('bob');
    const { users } = await bob.call(Methods.usersList, {});
    assert.deepEqual(users, [
      { name: 'alice', role: 'administrator' },
      { name: 'bob', role: 'auditor' },
    ]);
    await assert.rejects(
      bob.call(Methods.usersAdd, {
        name: 'mallory',
        role: 'administrator',
        password: 'long enough password',
      }),
      { code: 'WARDEN_E_FORBIDDEN' },
    );
  });

  test('add, log in as the new user, change the role (its console is logged out), new password, remove', async () => {
    const alice = await h.login('alice');
    assert.deepEqual(
      await alice.call(Methods.usersAdd, {
        name: 'carol',
        role: 'auditor',
        password: 'carol first password',
      }),
      { name: 'carol', role: 'auditor' },
    );
    await assert.rejects(
      alice.call(Methods.usersAdd, { name: 'carol', role: 'auditor', password: 'carol first password' }),
      { code: 'WARDEN_E_ALREADY_EXISTS' },
    );
    await assert.rejects(alice.call(Methods.usersAdd, { name: 'dave', role: 'auditor', password: 'short' }), {
      code: 'WARDEN_E_PARAMS_INVALID',
    });

    const carol = await h.connect();
    await carol.login({ user: 'carol', password: 'carol first password' });
    const told: unknown[] = [];
    carol.onNotification((m, p) => m === Notifications.sessionEnded && told.push(p));
    const carolClosed = closed(carol);
    assert.deepEqual(await alice.call(Methods.usersSetRole, { name: 'carol', role: 'administrator' }), {
      name: 'carol',
      role: 'administrator',
    });
    await carolClosed;
    assert.deepEqual(told, [{ reason: 'the role of carol changed to administrator' }]);

    const again = await h.connect();
    const login = await again.login({ user: 'carol', password: 'carol first password' });
    assert.equal(login.role, 'administrator', 'the new role holds from the next login');
    await again.call(Methods.usersSetPassword, { name: 'carol', password: 'carol second password' });
    assert.ok(
      (await again.call(Methods.status, {})).version,
      'changing your own password keeps your console',
    );
    const old = await h.connect();
    await assert.rejects(old.login({ user: 'carol', password: 'carol first password' }), {
      code: 'WARDEN_E_AUTH_FAILED',
    });

    const againClosed = closed(again);
    await alice.call(Methods.usersRemove, { name: 'carol' });
    await againClosed;
    await assert.rejects(alice.call(Methods.usersRemove, { name: 'carol' }), { code: 'WARDEN_E_NOT_FOUND' });

    const audit = h.logs
      .query({ kind: 'admin', limit: 100 })
      .items.filter((i) => i.user === 'alice' && i.message.includes('carol'))
      .map((i) => i.message);
    assert.deepEqual(audit, [
      'alice added user carol (auditor)',
      'alice made carol administrator (was auditor); 1 console(s) logged out',
      'alice removed user carol (administrator); 1 console(s) logged out',
    ]);
    assert.ok(
      h.logs.query({ kind: 'admin', text: 'carol set the password of carol', limit: 10 }).items.length === 1,
    );
  });

  test('the last administrator can be neither removed nor demoted', async () => {
    const alice = await h.login('alice');
    for (const call of [
      alice.call(Methods.usersRemove, { name: 'alice' }),
      alice.call(Methods.usersSetRole, { name: 'Alice', role: 'auditor' }),
    ])
      await assert.rejects(call, (e: Error & { code?: string }) => {
        assert.equal(e.code, 'WARDEN_E_LOCKOUT_RISK');
        assert.match(e.message, /alice is the last administrator/);
        return true;
      });
    assert.deepEqual((await alice.call(Methods.usersList, {})).users[0], {
      name: 'alice',
      role: 'administrator',
    });
  });
});
