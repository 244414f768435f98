import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { type HostEnvironment, validatePolicy } from '../policy/index.js';
import { validateSettings } from '../settings/index.js';
import { type ConfigStore, FileConfigStore } from './config-store.js';
import { Confirmations, lockoutRisk } from './confirm.js';
import { createHandlers } from './handlers.js';
import { MemoryLogStore } from './log-store.js';

const host: HostEnvironment = {
  executables: { engine: '/usr/lib/warden/wardend', console: '/usr/lib/warden/warden', assistant: '/x' },
  environment: {},
  etcEnvironment: '',
};
const denyAll = validatePolicy({
  defaults: { incoming: { action: 'deny' }, outgoing: { action: 'deny' } },
  rules: [
    { name: 'no admin', action: 'deny', direction: 'incoming', protocol: 'tcp', localPorts: '1-65535' },
  ],
});
const remoteOn = validateSettings({ remoteAdministration: { enabled: true } });
const remoteOff = validateSettings({ remoteAdministration: { enabled: false } });

test('lockoutRisk: a remote caller is at risk when remote administration would be off', () => {
  for (const source of ['203.0.113.9', '2001:db8::9', '::ffff:203.0.113.9'])
    assert.match(
      lockoutRisk({ policy: denyAll, settings: remoteOff }, source, host, 0) ?? '',
      /remote administration/,
    );
  // The internal remote-configuration rule comes before user rules: deny-all does not cut a remote caller off.
  assert.equal(lockoutRisk({ policy: denyAll, settings: remoteOn }, '203.0.113.9', host, 0), null);
});

test('lockoutRisk: a caller on the engine host is never at risk', () => {
  for (const source of ['127.0.0.1', '::1', '::ffff:127.0.0.1', '127.3.2.1'])
    assert.equal(lockoutRisk({ policy: denyAll, settings: remoteOff }, source, host, 0), null);
});

async function engine(
  body: (
    h: ReturnType<typeof createHandlers>,
    store: FileConfigStore,
    c: Confirmations,
    logs: MemoryLogStore,
  ) => Promise<void>,
) {
  const dir = await mkdtemp(join(tmpdir(), 'warden-confirm-'));
  const confirmations = new Confirmations();
  const logs = new MemoryLogStore();
  try {
    const store = await FileConfigStore.open(dir);
    await store.setSettings(remoteOn, { user: 'setup', source: 'test' });
    const h = createHandlers({
      config: store,
      logs,
      host,
      now: Date.now,
      status: () => ({
        version: 't',
        hostname: 'h',
        startedAt: '',
        fingerprint: '',
        consoles: 0,
        kernel: '',
      }),
      confirmations,
    });
    await body(h, store, confirmations, logs);
  } finally {
    confirmations.close();
    await rm(dir, { recursive: true, force: true });
  }
}

const remote = { user: 'alice', source: '203.0.113.9' };

/** Waits until `ok` holds (deadlines fire late on a loaded machine), at most 5 s. */
async function until(ok: () => boolean): Promise<void> {
  const end = Date.now() + 5000;
  while (!ok()) {
    assert.ok(Date.now() < end, 'timed out');
    await new Promise((res) => setTimeout(res, 20));
  }
}
const local = { user: 'alice', source: '127.0.0.1' };

test('a remote settings change that would cut the caller off is refused and changes nothing', () =>
  engine(async (h, store) => {
    const before = store.history().length;
    await assert.rejects(
      async () => h.settingsSet!({ settings: { remoteAdministration: { enabled: false } } }, remote),
      (e: Error & { code?: string; suggestion?: string }) =>
        e.code === 'WARDEN_E_LOCKOUT_RISK' && /confirm/.test(e.suggestion ?? ''),
    );
    assert.equal(store.settings().remoteAdministration.enabled, true);
    assert.equal(store.history().length, before);
    // A harmless remote change goes through without confirm.
    await h.rulesAdd!(
      { rule: { name: 'web', action: 'allow', direction: 'outgoing', protocol: 'tcp', remotePorts: '443' } },
      remote,
    );
    // The same change from the engine host is not refused.
    await h.settingsSet!({ settings: { remoteAdministration: { enabled: false } } }, local);
    assert.equal(store.settings().remoteAdministration.enabled, false);
  }));

test('with confirm the change is applied; unconfirmed it is rolled back at its deadline, confirmed it stays', () =>
  engine(async (h, store) => {
    const off = { settings: { remoteAdministration: { enabled: false } }, confirm: { seconds: 1 } };
    const r = await h.settingsSet!(off, remote);
    assert.ok(r.pending);
    assert.equal(store.settings().remoteAdministration.enabled, false);
    assert.deepEqual(
      (await h.configHistory!({}, remote)).pending.map((p) => p.version),
      [r.pending.version],
    );
    await until(() => store.settings().remoteAdministration.enabled);
    assert.equal(store.settings().remoteAdministration.enabled, true, 'rolled back');
    const [newest] = store.history();
    assert.deepEqual(
      [newest!.what, newest!.restores, newest!.source],
      ['rollback', r.pending.previous, 'confirm timeout'],
    );
    await assert.rejects(async () => h.configConfirm!({ version: r.pending!.version }, remote), {
      code: 'WARDEN_E_NOT_FOUND',
    });

    const kept = await h.settingsSet!(off, remote);
    assert.deepEqual(await h.configConfirm!({ version: kept.pending!.version }, remote), {
      version: kept.pending!.version,
    });
    await new Promise((res) => setTimeout(res, 1300));
    assert.equal(store.settings().remoteAdministration.enabled, false, 'confirmed: stays');
  }));

test('config.undo undoes a waiting change at once, as its deadline would, and only once', () =>
  engine(async (h, store) => {
    const off = { settings: { remoteAdministration: { enabled: false } }, confirm: { seconds: 600 } };
    const r = await h.settingsSet!(off, remote);
    assert.ok(r.pending);
    assert.equal(store.settings().remoteAdministration.enabled, false);
    const undone = await h.configUndo!({ version: r.pending.version }, remote);
    assert.equal(store.settings().remoteAdministration.enabled, true, 'undone long before the deadline');
    const [newest] = store.history();
    assert.deepEqual(
      [newest!.version, newest!.what, newest!.restores, newest!.source],
      [undone.current, 'rollback', r.pending.previous, 'config.undo'],
    );
    assert.equal(undone.version, r.pending.version);
    assert.deepEqual((await h.configHistory!({}, remote)).pending, [], 'nothing waits any more');
    for (const call of [h.configUndo!, h.configConfirm!])
      await assert.rejects(async () => call({ version: r.pending!.version }, remote), {
        code: 'WARDEN_E_NOT_FOUND',
      });
    // A change that is not waiting (made without confirm) cannot be undone this way.
    await h.settingsSet!({ settings: { remoteAdministration: { enabled: true } } }, local);
    await assert.rejects(async () => h.configUndo!({ version: store.history()[0]!.version }, remote), {
      code: 'WARDEN_E_NOT_FOUND',
    });
  }));

test('a remote rollback to a version that would cut the caller off needs confirm too', () =>
  engine(async (h, store) => {
    await h.settingsSet!({ settings: { remoteAdministration: { enabled: false } } }, local);
    const offVersion = store.history()[0]!.version;
    await h.settingsSet!({ settings: { remoteAdministration: { enabled: true } } }, local);
    await assert.rejects(async () => h.configRollback!({ version: offVersion }, remote), {
      code: 'WARDEN_E_LOCKOUT_RISK',
    });
    const r = await h.configRollback!({ version: offVersion, confirm: { seconds: 60 } }, remote);
    assert.equal(r.pending?.previous, r.version - 1);
  }));

const ssh = { action: 'allow', direction: 'incoming', protocol: 'tcp', localPorts: '22' };

test('at the deadline only the unconfirmed change is undone: changes made after it stay', () =>
  engine(async (h, store) => {
    const r = await h.settingsSet!(
      { settings: { remoteAdministration: { enabled: false } }, confirm: { seconds: 1 } },
      remote,
    );
    await h.rulesAdd!({ rule: { ...ssh, name: 'later' } }, local);
    await until(() => store.settings().remoteAdministration.enabled);
    assert.equal(store.settings().remoteAdministration.enabled, true, 'the unconfirmed change is undone');
    assert.deepEqual(
      store.policy().rules.map((x) => x.name),
      ['later'],
      'the later change is kept',
    );
    const [newest] = store.history();
    assert.deepEqual(
      [newest!.what, newest!.reverts, newest!.source],
      ['revert', r.pending!.version, 'confirm timeout'],
    );
  }));

test('when a later change touched the same thing, nothing is undone and a security item says so', () =>
  engine(async (h, store, _c, logs) => {
    const r = await h.rulesAdd!({ rule: { ...ssh, name: 'probation' }, confirm: { seconds: 1 } }, remote);
    await h.rulesUpdate!(
      { name: 'probation', rule: { ...ssh, name: 'probation', localPorts: '2222' } },
      local,
    );
    const versions = store.history().length;
    await until(() => logs.query({ kind: 'security', limit: 1, text: 'NOT undone' }).items.length > 0);
    assert.equal(store.history().length, versions, 'nothing written');
    assert.equal(store.policy().rules[0]!.name, 'probation');
    const [item] = logs.query({ kind: 'security', limit: 1, text: 'NOT undone' }).items;
    assert.match(
      item!.message,
      new RegExp(`version ${r.pending!.version} .*same things \\(rules\\.probation\\)`),
    );
  }));

test('pending confirmations are kept in a file: re-armed when not due yet, undone at once when past due', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'warden-pending-'));
  const file = join(dir, 'pending.json');
  try {
    const first = await Confirmations.open(file);
    await first.add(7, 6, 0.3, remote);
    await first.add(9, 8, 60, remote);
    await first.add(11, 10, 60, remote);
    assert.equal(await first.confirm(11), true);
    first.close();
    const second = await Confirmations.open(file);
    assert.deepEqual(
      second.pending().map((p) => p.version),
      [7, 9],
    );
    await new Promise((res) => setTimeout(res, 400)); // 7 is past due before anyone arms it
    const expired: number[] = [];
    const started = Date.now();
    second.onExpire(async (c) => {
      expired.push(c.version);
      assert.deepEqual([c.user, c.source], [remote.user, remote.source]);
    });
    while (expired.length === 0) await new Promise((res) => setTimeout(res, 5));
    assert.ok(Date.now() - started < 200, 'past due: undone at once');
    assert.deepEqual(expired, [7]);
    await new Promise((res) => setTimeout(res, 50));
    second.close();
    const third = await Confirmations.open(file);
    assert.deepEqual(
      third.pending().map((p) => p.version),
      [9],
      'the undone one is forgotten on disk, the one not due is kept',
    );
    // Recorded but never written (the engine stopped in between): forgotten, not armed.
    third.onExpire(
      async () => assert.fail('nothing to undo'),
      (v) => v !== 9,
    );
    assert.deepEqual(third.pending(), []);
    third.close();
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('a change applied with confirm is recorded before it is written, and forgotten when the write fails', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'warden-confirm-'));
  const confirmations = new Confirmations();
  try {
    const store = await FileConfigStore.open(dir);
    const seen: number[] = [];
    const failing: ConfigStore = {
      policy: () => store.policy(),
      settings: () => store.settings(),
      history: () => store.history(),
      version: (n) => store.version(n),
      rollback: (n, meta) => store.rollback(n, meta),
      undo: (n, previous, meta) => store.undo(n, previous, meta),
      setSettings: (settings, meta) => store.setSettings(settings, meta),
      setPolicy: async (_policy, meta) => {
        await meta?.beforeWrite?.(5);
        seen.push(...confirmations.pending().map((p) => p.version));
        throw new Error('disk full');
      },
    };
    const h = createHandlers({
      config: failing,
      logs: new MemoryLogStore(),
      host,
      now: Date.now,
      status: () => ({
        version: 't',
        hostname: 'h',
        startedAt: '',
        fingerprint: '',
        consoles: 0,
        kernel: '',
      }),
      confirmations,
    });
    await assert.rejects(
      async () => h.rulesAdd!({ rule: { ...ssh, name: 'x' }, confirm: { seconds: 60 } }, remote),
      /disk full/,
    );
    assert.deepEqual(seen, [5], 'pending before the write');
    assert.deepEqual(confirmations.pending(), [], 'forgotten after the failure');
  } finally {
    confirmations.close();
    await rm(dir, { recursive: true, force: true });
  }
});
