/** The engine in unprivileged mode: files made on first start, local login, reload that refuses a broken file. */
import assert from 'node:assert/strict';
import { createSocket } from 'node:dgram';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { EngineClient } from '../../src/client/engine-client.js';
import { Engine } from '../../src/engine/daemon.js';
import { Methods } from '../../src/protocol/methods.js';

test('an engine starts with safe defaults, a local administrator logs in with the token, a broken hand edit is refused', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'warden-engine-'));
  const configDir = join(dir, 'etc');
  const stateDir = join(dir, 'state');
  const engine = await Engine.start({ configDir, stateDir, port: 0, bindAddress: '127.0.0.1' });
  try {
    assert.equal(statSync(join(stateDir, 'local-token')).mode & 0o777, 0o600);
    assert.equal(statSync(join(configDir, 'users.json')).mode & 0o777, 0o600);
    const client = await EngineClient.connect({
      host: '127.0.0.1',
      port: engine.server.port,
      verifyFingerprint: async (fp) => assert.equal(fp, engine.identity.fingerprint),
      timeoutMs: 5000,
    });
    const login = await client.login({
      localToken: readFileSync(join(stateDir, 'local-token'), 'utf8').trim(),
    });
    assert.equal(login.role, 'administrator');
    const status = await client.call(Methods.status, {});
    assert.match(status.kernel, /unprivileged/);
    assert.equal(status.remoteAdministration, false);
    const defaults = engine.config.policy().defaults;
    assert.deepEqual(defaults.incoming, { action: 'deny', log: true });
    assert.deepEqual(defaults.outgoing, { action: 'allow', log: true });

    await client.call(Methods.rulesAdd, {
      rule: { name: 'web', direction: 'outgoing', protocol: 'tcp', remotePorts: '443', action: 'allow' },
    });
    // A hand edit with an error: the reload is refused with file, line and field, and the policy in force stays.
    writeFileSync(join(configDir, 'policy.yaml'), 'rules:\n  - name: broken\n    action: maybe\n');
    await assert.rejects(engine.config.reload(), (e: Error & { problems?: { line?: number }[] }) => {
      assert.match(e.message + JSON.stringify(e.problems), /policy\.yaml/);
      assert.match(JSON.stringify(e.problems), /action/);
      return true;
    });
    assert.equal((await client.call(Methods.rulesList, { internal: false })).rules.length, 1);
    // A good hand edit is taken on reload.
    writeFileSync(join(configDir, 'policy.yaml'), 'rules: []\n');
    await engine.config.reload();
    assert.equal((await client.call(Methods.rulesList, { internal: false })).rules.length, 0);
    const started = (await client.call(Methods.logsQuery, { kind: 'system', limit: 10 })).items;
    assert.match(started[0]!.message, /engine started on port/);
    client.close();
  } finally {
    await engine.stop();
    rmSync(dir, { recursive: true, force: true });
  }
});

test('log items survive a restart in the SQLite store; a damaged store is reported and the engine runs on', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'warden-engine-'));
  const configDir = join(dir, 'etc');
  const stateDir = join(dir, 'state');
  try {
    const first = await Engine.start({ configDir, stateDir, port: 0, bindAddress: '127.0.0.1' });
    first.logs.append({ kind: 'security', message: 'kept across restarts' });
    await first.stop();
    const second = await Engine.start({ configDir, stateDir, port: 0, bindAddress: '127.0.0.1' });
    const kept = second.logs.query({ limit: 100, text: 'kept across restarts' }).items;
    assert.equal(kept.length, 1);
    await second.stop();

    writeFileSync(join(stateDir, 'logs.db'), 'this is not a database '.repeat(500));
    for (const f of ['logs.db-wal', 'logs.db-shm']) rmSync(join(stateDir, f), { force: true });
    const errors: string[] = [];
    const third = await Engine.start({
      configDir,
      stateDir,
      port: 0,
      bindAddress: '127.0.0.1',
      log: (level, message) => level === 'error' && errors.push(message),
    });
    try {
      assert.match(errors.join('\n'), /logs\.db/);
      const notice = third.logs.query({ limit: 10, kind: 'system', text: 'log store unusable' }).items;
      assert.equal(notice.length, 1, 'the engine says so in its own log too');
    } finally {
      await third.stop();
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('with syslog enabled in the settings, the engine forwards its log items (RFC 5424 over UDP)', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'warden-engine-'));
  const receiver = createSocket('udp4');
  const lines: string[] = [];
  receiver.on('message', (m) => lines.push(m.toString()));
  await new Promise<void>((r) => receiver.bind(0, '127.0.0.1', () => r()));
  mkdirSync(join(dir, 'etc'));
  writeFileSync(
    join(dir, 'etc/settings.yaml'),
    `syslog:\n  enabled: true\n  host: 127.0.0.1\n  port: ${receiver.address().port}\n  transport: udp\n`,
  );
  const engine = await Engine.start({
    configDir: join(dir, 'etc'),
    stateDir: join(dir, 'state'),
    port: 0,
    bindAddress: '127.0.0.1',
  });
  try {
    engine.logs.append({ kind: 'security', message: 'forwarded to syslog' });
    const end = Date.now() + 3000;
    while (!lines.some((l) => l.includes('forwarded to syslog'))) {
      assert.ok(Date.now() < end, `nothing arrived: ${lines.join('\n')}`);
      await new Promise((r) => setTimeout(r, 20));
    }
    assert.match(
      lines.find((l) => l.includes('forwarded to syslog'))!,
      /^<\d+>1 \S+ \S+ wardend \d+ security \[warden@32473 /,
    );
  } finally {
    await engine.stop();
    receiver.close();
    rmSync(dir, { recursive: true, force: true });
  }
});
