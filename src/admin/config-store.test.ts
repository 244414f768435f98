import assert from 'node:assert/strict';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { validatePolicy } from '../policy/index.js';
import { validateSettings } from '../settings/index.js';
import { FileConfigStore } from './config-store.js';

const alice = { user: 'alice', source: '192.0.2.7' };
const rule = (name: string) => ({
  name,
  action: 'allow',
  direction: 'outgoing',
  protocol: 'tcp',
  remotePorts: '443',
});

async function withDir(body: (dir: string) => Promise<void>) {
  const dir = await mkdtemp(join(tmpdir(), 'warden-history-'));
  try {
    await body(dir);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

test('every change is a numbered version in history/ with who, when and from where; it survives a reopen', () =>
  withDir(async (dir) => {
    const store = await FileConfigStore.open(dir);
    assert.deepEqual(store.history(), []);
    const v2 = await store.setPolicy(validatePolicy({ rules: [rule('web')] }), alice);
    const v3 = await store.setSettings(validateSettings({ applicationPort: 4711 }), {
      user: 'bob',
      source: '::1',
    });
    assert.deepEqual([v2, v3], [2, 3]);
    assert.deepEqual(await readdir(join(dir, 'history')), ['000001.json', '000002.json', '000003.json']);
    const reopened = await FileConfigStore.open(dir);
    const list = reopened.history();
    assert.deepEqual(
      list.map((v) => [v.version, v.what, v.user, v.source]),
      [
        [3, 'settings', 'bob', '::1'],
        [2, 'policy', 'alice', '192.0.2.7'],
        [1, 'initial', 'engine', 'file'],
      ],
    );
    assert.ok(!Number.isNaN(Date.parse(list[0]!.time)));
    assert.equal(!('policy' in list[0]!), true, 'the list carries no texts');
    const full = await reopened.version(3);
    assert.equal(full.policy, await readFile(join(dir, 'policy.yaml'), 'utf8'));
    assert.equal(full.settings, await readFile(join(dir, 'settings.yaml'), 'utf8'));
    assert.equal(await reopened.setPolicy(validatePolicy({ rules: [] }), alice), 4, 'numbering goes on');
  }));

test('rollback restores the exact texts of a version, as a new version', () =>
  withDir(async (dir) => {
    const handWritten =
      '# my own comment\nrules:\n  - name: keep-me\n    action: allow\n    direction: outgoing\n';
    await writeFile(join(dir, 'policy.yaml'), handWritten);
    const store = await FileConfigStore.open(dir);
    await store.setPolicy(validatePolicy({ rules: [rule('other')] }), alice);
    await store.setSettings(validateSettings({ applicationPort: 4711 }), alice);
    const v = await store.rollback(1, { user: 'carol', source: '198.51.100.1' });
    assert.deepEqual([v.version, v.what, v.restores, v.user], [4, 'rollback', 1, 'carol']);
    assert.equal(await readFile(join(dir, 'policy.yaml'), 'utf8'), handWritten);
    assert.equal(store.policy().rules[0]!.name, 'keep-me');
    assert.equal(
      store.settings().applicationPort,
      (await FileConfigStore.open(join(dir, 'none'))).settings().applicationPort,
    );
    const before = await store.version(1);
    const after = await store.version(4);
    assert.equal(after.policy, before.policy);
    assert.equal(after.settings, before.settings);
    await assert.rejects(store.rollback(99), { code: 'WARDEN_E_NOT_FOUND' });
  }));

test('only the newest N versions are kept', () =>
  withDir(async (dir) => {
    const store = await FileConfigStore.open(dir, { keepVersions: 3 });
    for (let i = 0; i < 5; i++) await store.setPolicy(validatePolicy({ rules: [rule(`r${i}`)] }), alice);
    assert.deepEqual(
      store.history().map((v) => v.version),
      [6, 5, 4],
    );
    assert.deepEqual(await readdir(join(dir, 'history')), ['000004.json', '000005.json', '000006.json']);
    await assert.rejects(store.version(1), { code: 'WARDEN_E_NOT_FOUND' });
  }));

test('a reload of hand-edited files is a version; an unchanged reload is not', () =>
  withDir(async (dir) => {
    const store = await FileConfigStore.open(dir);
    await store.reload();
    assert.equal(store.history().length, 0);
    await writeFile(join(dir, 'settings.yaml'), 'applicationPort: 4800\n');
    await store.reload();
    assert.deepEqual(
      store.history().map((v) => [v.version, v.what, v.user, v.source]),
      [
        [2, 'reload', 'root', 'file'],
        [1, 'initial', 'engine', 'file'],
      ],
    );
    assert.equal((await store.version(2)).settings, 'applicationPort: 4800\n');
  }));

test('concurrent changes get distinct versions', () =>
  withDir(async (dir) => {
    const store = await FileConfigStore.open(dir);
    const vs = await Promise.all(
      [0, 1, 2, 3].map((i) => store.setPolicy(validatePolicy({ rules: [rule(`c${i}`)] }), alice)),
    );
    assert.deepEqual(vs, [2, 3, 4, 5]);
  }));
