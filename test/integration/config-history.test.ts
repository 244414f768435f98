/** Configuration history and confirmed apply over the real administration protocol (127.0.0.1, real files). */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { Methods } from '../../src/protocol/methods.js';
import { type Harness, startHarness } from './admin-harness.js';

describe('configuration history over the protocol', () => {
  let h: Harness;
  before(async () => {
    h = await startHarness();
  });
  after(() => h.close());

  const ssh = { name: 'ssh', direction: 'incoming', protocol: 'tcp', localPorts: 22, action: 'allow' };

  test('changes are versions with user and source; diff shows the changed lines; rollback restores them', async () => {
    const c = await h.login('alice');
    await c.call(Methods.rulesAdd, { rule: ssh });
    await c.call(Methods.settingsSet, { settings: { syslog: { port: 5514 } } });
    const { versions } = await c.call(Methods.configHistory, {});
    const [settingsV, policyV, initial] = versions;
    assert.deepEqual(
      versions.map((v) => [v.what, v.user, v.source]),
      [
        ['settings', 'alice', '127.0.0.1'],
        ['policy', 'alice', '127.0.0.1'],
        ['initial', 'engine', 'file'],
      ],
    );
    assert.ok(!('policy' in settingsV!), 'history lists no texts');

    const d = await c.call(Methods.configDiff, { a: initial!.version, b: settingsV!.version });
    assert.match(d.policy, /^\+ {2}- name: ssh$/m);
    assert.match(d.settings, /^\+.*5514/m);
    assert.equal((await c.call(Methods.configDiff, { a: policyV!.version, b: policyV!.version })).policy, '');

    const r = await c.call(Methods.configRollback, { version: initial!.version });
    // A number, as every other method answers a version (docs/protocol.md).
    assert.equal(typeof r.version, 'number');
    const made = (await c.call(Methods.configHistory, {})).versions.find((v) => v.version === r.version);
    assert.deepEqual([made?.what, made?.restores], ['rollback', initial!.version]);
    assert.deepEqual((await c.call(Methods.rulesList, { internal: false })).rules, []);
    const [first, now] = await Promise.all([h.config.version(initial!.version), h.config.version(r.version)]);
    assert.equal(now.policy, first.policy);
    assert.equal(now.settings, first.settings);
    const audit = h.logs.query({ limit: 100, kind: 'admin' }).items.map((i) => i.message);
    assert.ok(audit.some((m) => /rolled back to version 1/.test(m ?? '')));
  });

  test('an auditor may list and diff but not roll back or confirm', async () => {
    const c = await h.login('bob');
    const { versions } = await c.call(Methods.configHistory, {});
    await c.call(Methods.configDiff, { a: versions.at(-1)!.version, b: versions[0]!.version });
    await assert.rejects(c.call(Methods.configRollback, { version: 1 }), { code: 'WARDEN_E_FORBIDDEN' });
    await assert.rejects(c.call(Methods.configConfirm, { version: 1 }), { code: 'WARDEN_E_FORBIDDEN' });
    await assert.rejects(c.call(Methods.configDiff, { a: 1, b: 9999 }), { code: 'WARDEN_E_NOT_FOUND' });
  });

  test('an administrator on the engine host is never refused, even turning remote administration off', async () => {
    const c = await h.login('alice');
    const r = await c.call(Methods.settingsSet, { settings: { remoteAdministration: { enabled: false } } });
    assert.deepEqual(r.settings.remoteAdministration, { enabled: false });
    assert.equal(r.pending, undefined);
  });

  test('a change applied with confirm is rolled back at its deadline unless confirmed', async () => {
    const c = await h.login('alice');
    const r = await c.call(Methods.rulesAdd, {
      rule: { ...ssh, name: 'probation' },
      confirm: { seconds: 1 },
    });
    assert.ok(r.pending);
    assert.deepEqual(
      (await c.call(Methods.configHistory, {})).pending.map((p) => p.version),
      [r.pending.version],
    );
    await new Promise((res) => setTimeout(res, 1400));
    assert.deepEqual(
      (await c.call(Methods.rulesList, { internal: false })).rules.map((x) => x.name),
      [],
      'rolled back',
    );
    const [newest] = (await c.call(Methods.configHistory, {})).versions;
    assert.deepEqual([newest!.what, newest!.restores], ['rollback', r.pending.previous]);
    await assert.rejects(c.call(Methods.configConfirm, { version: r.pending.version }), {
      code: 'WARDEN_E_NOT_FOUND',
    });

    const kept = await c.call(Methods.rulesAdd, { rule: { ...ssh, name: 'kept' }, confirm: { seconds: 1 } });
    await c.call(Methods.configConfirm, { version: kept.pending!.version });
    await new Promise((res) => setTimeout(res, 1400));
    assert.deepEqual(
      (await c.call(Methods.rulesList, { internal: false })).rules.map((x) => x.name),
      ['kept'],
    );
  });
});
