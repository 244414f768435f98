/**
 * An outside client written from docs/protocol.md alone (issue 11, item 17): what the document
 * says must be what the engine and the CLI do. logs.query `address` finds login items by their
 * source; `warden logs --limit 10000` prints 10,000 items although each answer is capped at 512 KiB;
 * a remote console whose SYN the engine's host drops (remote administration off) is told what may
 * be wrong, not only "timeout". (config.rollback's number and the served port: config-history and
 * admin-protocol tests.)
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { EngineClient } from '../../src/client/engine-client.js';
import { Engine } from '../../src/engine/daemon.js';
import { Methods } from '../../src/protocol/methods.js';
import { type Harness, startHarness } from '../integration/admin-harness.js';
import { createNetnsPair, kernelTestsUnavailable, SERVER_ADDR } from '../kernel/netns.js';
import { NODE, startWardend } from '../kernel/wardend.js';
import { repoRoot } from '../repo-root.js';

const bin = join(repoRoot(import.meta.url), 'dist/src/console/bin.js');

describe('the protocol document and the engine agree', () => {
  let h: Harness;
  let home: string;
  before(async () => {
    h = await startHarness();
    home = mkdtempSync(join(tmpdir(), 'warden-adv-doc-'));
  });
  after(async () => {
    await h.close();
    rmSync(home, { recursive: true, force: true });
  });

  const cli = (args: string[]) =>
    new Promise<{ code: number; stdout: string; stderr: string }>((resolve) => {
      execFile(
        process.execPath,
        [bin, ...args],
        {
          env: {
            PATH: process.env.PATH ?? '',
            XDG_CONFIG_HOME: home,
            WARDEN_PASSWORD: 'correct horse battery',
          },
          maxBuffer: 64 * 1024 * 1024,
        },
        (error, stdout, stderr) => resolve({ code: error ? Number(error.code ?? 1) : 0, stdout, stderr }),
      );
    });

  test('logs.query address matches the source of login items (no local or remote end)', async () => {
    // A failed login is an item (a successful one is not: every CLI command logs in).
    const wrong = await h.connect();
    await assert.rejects(wrong.login({ user: 'alice', password: 'not the password' }));
    const c = await h.login('alice');
    const whoami = await c.call(Methods.whoami, {});
    const found = await c.call(Methods.logsQuery, {
      address: whoami.remoteAddress,
      kind: 'admin',
      limit: 100,
    });
    assert.ok(
      found.items.some((i) => /failed login/.test(i.message) && i.source === whoami.remoteAddress),
      JSON.stringify(found.items),
    );
    const none = await c.call(Methods.logsQuery, { address: '192.0.2.77', kind: 'admin', limit: 100 });
    assert.deepEqual(none.items, []);
  });

  test('warden logs --limit 10000 prints 10,000 items across answers capped at 512 KiB', async () => {
    const first = h.logs.lastSeq + 1;
    for (let i = 0; i < 12_000; i++) {
      h.logs.append({
        kind: 'connection',
        verdict: 'allow',
        application: '/usr/lib/firefox/firefox-bin-with-a-rather-long-path',
        local: '10.0.0.1:40000',
        remote: '93.184.216.34:443',
        host: 'www.example.com',
        rule: 'browsers may reach the web',
        message: `Outgoing TCP connection number ${i} allowed by rule "browsers may reach the web"`,
      });
    }
    const pin = await cli([
      'connect',
      `127.0.0.1:${h.server.port}`,
      '--user',
      'alice',
      '--name',
      'lab',
      '--accept',
      h.fingerprint,
    ]);
    assert.equal(pin.code, 0, pin.stderr);
    const out = await cli([
      'logs',
      '--kind',
      'connection',
      '--from-seq',
      String(first),
      '--limit',
      '10000',
      '--json',
      '--engine',
      'lab',
    ]);
    assert.equal(out.code, 0, out.stderr);
    const seqs = out.stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l).seq as number);
    assert.equal(seqs.length, 10_000);
    assert.deepEqual(seqs.slice(0, 2), [first, first + 1]);
    assert.equal(seqs.at(-1), first + 9_999);
  });
});

test('wardend --port: engine.status, firewall.hints and the internal rules all name the port served', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'warden-adv-doc-'));
  const engine = await Engine.start({
    configDir: join(dir, 'etc'),
    stateDir: join(dir, 'state'),
    port: 0,
    bindAddress: '127.0.0.1',
    services: { popupPort: 0, updateFirstDelayMs: 3_600_000 },
  });
  const c = await EngineClient.connect({
    host: '127.0.0.1',
    port: engine.server.port,
    verifyFingerprint: async () => {},
    timeoutMs: 5000,
  });
  try {
    await c.login({ localToken: readFileSync(engine.localTokenPath, 'utf8').trim() });
    const served = engine.server.port;
    assert.notEqual(served, engine.config.settings().applicationPort);
    assert.equal((await c.call(Methods.status, {})).applicationPort, served);
    const hints = JSON.stringify(await c.call(Methods.hints, {}));
    assert.ok(hints.includes(String(served)) && !hints.includes('44334'), hints);
    const internal = (await c.call(Methods.rulesList, { internal: true })).internal ?? [];
    const remoteConfig = internal.find((r) => r.id === 'internal.remote-configuration');
    assert.equal(remoteConfig?.localPorts, served, JSON.stringify(remoteConfig));
  } finally {
    c.close();
    await engine.stop();
    rmSync(dir, { recursive: true, force: true });
  }
});

test('remote administration off: a remote console whose SYN is dropped is told what may be wrong', {
  skip: kernelTestsUnavailable(),
}, async () => {
  const pair = createNetnsPair('doc');
  const dir = mkdtempSync(join(tmpdir(), 'warden-adv-doc-'));
  const port = 44334;
  try {
    mkdirSync(join(dir, 'etc'));
    // Default deny in: only the internal rule lets the application port in, from localhost only.
    writeFileSync(
      join(dir, 'etc/policy.yaml'),
      'version: 1\nmode: enforce\ndefaults:\n  incoming: { action: deny, log: true }\n  outgoing: { action: allow }\nrules: []\n',
    );
    const engine = await startWardend(pair, pair.server, dir, port);
    try {
      const cli = pair.spawn(pair.client, NODE, [bin, 'logs', '--engine', `${SERVER_ADDR}:${port}`], {
        stdio: ['ignore', 'pipe', 'pipe'],
        env: { PATH: process.env.PATH ?? '', XDG_CONFIG_HOME: join(dir, 'home'), WARDEN_PASSWORD: 'x' },
      });
      let stderr = '';
      cli.stderr!.on('data', (d) => (stderr += d));
      cli.stdout!.on('data', (d) => (stderr += d));
      const code = await new Promise<number | null>((resolve) => cli.once('exit', resolve));
      assert.equal(code, 1, stderr);
      assert.match(stderr, /no answer from 10\.200\.0\.2:44334/);
      assert.match(stderr, /remote administration off/);
      assert.match(stderr, /hint: .*warden status/);
    } finally {
      if (engine.pid && engine.exitCode === null) process.kill(engine.pid, 'SIGTERM');
    }
  } finally {
    pair.close();
    rmSync(dir, { recursive: true, force: true });
  }
});
