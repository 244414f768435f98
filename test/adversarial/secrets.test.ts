/**
 * An auditor, a syslog receiver and any local user try to read the proxy password (issue 11, item
 * 13): a real engine (unprivileged mode) with `proxy.url: http://user:password@...` in its
 * settings, a pre-existing state directory and settings file that others could read, syslog to a
 * UDP receiver, an auditor calling every read method, and an unusable proxy in the environment.
 */
import assert from 'node:assert/strict';
import { createSocket } from 'node:dgram';
import {
  chmodSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { EngineClient } from '../../src/client/engine-client.js';
import { Engine } from '../../src/engine/daemon.js';
import { Methods } from '../../src/protocol/methods.js';

const SECRET = 'S3cretPw';
const SECRET2 = 'S3cretTwo';
const ENV_SECRET = 'EnvSecretPw';

test('a proxy password never reaches an auditor, a log item or syslog; the files holding it are owner-only', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'warden-adv-secrets-'));
  const configDir = join(dir, 'etc');
  const stateDir = join(dir, 'state');
  const receiver = createSocket('udp4');
  const datagrams: string[] = [];
  receiver.on('message', (m) => datagrams.push(m.toString()));
  await new Promise<void>((r) => receiver.bind(0, '127.0.0.1', r));
  const syslogPort = receiver.address().port;
  // What an older version (or a hand edit) left: readable by everyone.
  mkdirSync(configDir, { recursive: true });
  mkdirSync(stateDir, { recursive: true, mode: 0o755 });
  chmodSync(stateDir, 0o755);
  writeFileSync(
    join(configDir, 'settings.yaml'),
    [
      'proxy:',
      '  mode: manual',
      `  url: http://proxyuser:${SECRET}@proxy.lan:3128`,
      'syslog:',
      '  enabled: true',
      '  host: 127.0.0.1',
      `  port: ${syslogPort}`,
      '  transport: udp',
      // Updates on: the engine's internal rule for the feed explains the proxy route it takes.
      'updates:',
      '  enabled: true',
      '',
    ].join('\n'),
    { mode: 0o644 },
  );
  chmodSync(join(configDir, 'settings.yaml'), 0o644);
  const savedProxy = process.env.https_proxy;
  // An unusable proxy in the environment: its explanation in an internal rule must not carry it.
  process.env.https_proxy = `ftp://envuser:${ENV_SECRET}@proxy.lan:21`;
  const engine = await Engine.start({
    configDir,
    stateDir,
    port: 0,
    bindAddress: '127.0.0.1',
    services: { popupPort: 0, updateFirstDelayMs: 3_600_000 },
  });
  const clients: EngineClient[] = [];
  const connect = async () => {
    const c = await EngineClient.connect({
      host: '127.0.0.1',
      port: engine.server.port,
      verifyFingerprint: async () => {},
      timeoutMs: 5000,
    });
    clients.push(c);
    return c;
  };
  try {
    const mode = (p: string) => statSync(p).mode & 0o777;
    assert.equal(mode(stateDir), 0o700, 'the existing state directory was tightened');
    assert.equal(mode(join(configDir, 'settings.yaml')), 0o600, 'the existing settings.yaml was tightened');
    assert.equal(mode(join(stateDir, 'logs.db')), 0o600, 'logs.db is created owner-only');

    const admin = await connect();
    await admin.login({ localToken: readFileSync(engine.localTokenPath, 'utf8').trim() });
    await admin.call(Methods.usersAdd, { name: 'audrey', role: 'auditor', password: 'auditor password 1' });
    // A change of the password: an audit item (to syslog too) and a second version to diff.
    await admin.call(Methods.settingsSet, {
      settings: { proxy: { mode: 'manual', url: `http://proxyuser:${SECRET2}@proxy.lan:3128` } },
    });
    for (const f of readdirSync(join(configDir, 'history')))
      assert.equal(mode(join(configDir, 'history', f)), 0o600, `history/${f}`);
    assert.equal(mode(join(configDir, 'settings.yaml')), 0o600, 'settings.yaml is written owner-only');

    const auditor = await connect();
    await auditor.login({ user: 'audrey', password: 'auditor password 1' });
    const versions = (await auditor.call(Methods.configHistory, {})).versions.map((v) => v.version);
    const seen: Record<string, unknown> = {
      'settings.get': await auditor.call(Methods.settingsGet, {}),
      'config.history': await auditor.call(Methods.configHistory, {}),
      'config.diff': await auditor.call(Methods.configDiff, {
        a: Math.min(...versions),
        b: Math.max(...versions),
      }),
      'rules.list': await auditor.call(Methods.rulesList, { internal: true }),
      'policy.explain': await auditor.call(Methods.explain, {
        direction: 'outgoing',
        protocol: 'tcp',
        application: '/usr/bin/curl',
        remoteAddress: '192.0.2.1',
        remotePort: 3128,
        hosts: ['proxy.lan'],
      }),
    };
    const proxyUrl = (seen['settings.get'] as { settings: { proxy: { url: string } } }).settings.proxy.url;
    assert.equal(proxyUrl, 'http://proxyuser:***@proxy.lan:3128');
    assert.match(JSON.stringify(seen['config.diff']), /proxyuser:\*\*\*@/);

    // A console's round trip of what it was shown keeps the real password.
    const shown = (await admin.call(Methods.settingsGet, {})).settings;
    await admin.call(Methods.settingsSet, { settings: shown });
    assert.equal(engine.config.settings().proxy.url, `http://proxyuser:${SECRET2}@proxy.lan:3128`);

    // The environment's proxy is used (and explained) once the mode is auto.
    await admin.call(Methods.settingsSet, { settings: { proxy: { mode: 'auto' } } });
    const internal = await auditor.call(Methods.rulesList, { internal: true });
    const because = JSON.stringify(internal.internal);
    assert.match(because, /envuser:\*\*\*@/, 'the explanation names the unusable proxy, redacted');
    seen['rules.list (auto)'] = internal;

    const items = engine.logs.query({ limit: 10_000 } as never).items;
    assert.ok(items.some((i) => /settings changed: .*proxyuser:\*\*\*@/.test(i.message)));
    const deadline = Date.now() + 3000;
    while (!datagrams.some((d) => d.includes('settings changed')) && Date.now() < deadline)
      await new Promise((r) => setTimeout(r, 20));
    assert.ok(
      datagrams.some((d) => d.includes('settings changed')),
      'the audit item reached syslog',
    );
    seen['log items'] = items;
    seen.syslog = datagrams;
    for (const [where, what] of Object.entries(seen)) {
      const text = JSON.stringify(what);
      for (const secret of [SECRET, SECRET2, ENV_SECRET])
        assert.ok(!text.includes(secret), `${where} carries the secret ${secret}`);
    }
  } finally {
    for (const c of clients) c.close();
    await engine.stop();
    receiver.close();
    if (savedProxy === undefined) delete process.env.https_proxy;
    else process.env.https_proxy = savedProxy;
    rmSync(dir, { recursive: true, force: true });
  }
});

test('an existing logs.db and config history that others could read are made owner-only when opened', async () => {
  const { SqliteLogStore } = await import('../../src/admin/sqlite-log-store.js');
  const { FileConfigStore } = await import('../../src/admin/config-store.js');
  const dir = mkdtempSync(join(tmpdir(), 'warden-adv-secrets-'));
  try {
    const db = join(dir, 'logs.db');
    const first = SqliteLogStore.open(db, { retentionIntervalMs: 0 });
    // Whatever code writes an item, no secret is stored or sent with it.
    const item = first.append({ kind: 'system', message: `proxy http://u:${SECRET}@p.lan:3128 failed` });
    assert.equal(item.message, 'proxy http://u:***@p.lan:3128 failed');
    await first.close();
    chmodSync(db, 0o644);
    const again = SqliteLogStore.open(db, { retentionIntervalMs: 0 });
    assert.equal(statSync(db).mode & 0o777, 0o600);
    await again.close();

    const store = await FileConfigStore.open(dir);
    await store.setSettings(
      { ...store.settings(), proxy: { mode: 'manual', url: `http://u:${SECRET}@p.lan:3128` } },
      { user: 't', source: 'test' },
    );
    chmodSync(join(dir, 'settings.yaml'), 0o644);
    chmodSync(join(dir, 'history'), 0o755);
    for (const f of readdirSync(join(dir, 'history'))) chmodSync(join(dir, 'history', f), 0o644);
    await FileConfigStore.open(dir);
    assert.equal(statSync(join(dir, 'settings.yaml')).mode & 0o777, 0o600);
    assert.equal(statSync(join(dir, 'history')).mode & 0o777, 0o700);
    for (const f of readdirSync(join(dir, 'history')))
      assert.equal(statSync(join(dir, 'history', f)).mode & 0o777, 0o600, f);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
