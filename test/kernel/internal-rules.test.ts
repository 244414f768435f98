/**
 * Warden's internal rules on the packet path, with `wardend run` enforcing a deny-all policy in the
 * client namespace: the engine's own DNS queries still get out (and a host-name rule works through
 * them), and remote administration reaches the engine from the other namespace only while it is
 * enabled (switched off by a hand edit and SIGHUP: then the kernel drops the console's SYN).
 */
import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { execFileSync } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { USERS } from '../integration/admin-harness.js';
import { fixture } from './fixture-process.js';
import {
  CLIENT_ADDR,
  createNetnsPair,
  kernelTestsUnavailable,
  type NetnsPair,
  SERVER_ADDR,
} from './netns.js';
import { NODE, startWardend, useFixtureIdentity, WARDEND } from './wardend.js';

const skip = kernelTestsUnavailable() ?? (existsSync('/usr/bin/curl') ? undefined : 'needs curl');
const PORT = 44334;

const POLICY = `
version: 1
defaults:
  incoming: { action: deny, log: true }
  outgoing: { action: deny, log: true }
rules:
  - name: curl to web.test
    direction: outgoing
    protocol: tcp
    application: /usr/bin/curl
    remote: web.test
    remotePorts: 8000
    action: allow
`;

const settings = (remote: boolean) =>
  `remoteAdministration:\n  enabled: ${remote}\ndns:\n  resolvers: [${SERVER_ADDR}]\n`;

describe('internal rules under a deny-all policy', { skip }, () => {
  let pair: NetnsPair;
  let dir: string;
  let engine: (ChildProcess & { output: () => string }) | undefined;
  let dns: ReturnType<typeof fixture>;

  before(async () => {
    pair = createNetnsPair('i');
    dir = mkdtempSync(join(tmpdir(), 'warden-internal-'));
    mkdirSync(join(dir, 'etc'));
    writeFileSync(join(dir, 'etc/policy.yaml'), POLICY);
    writeFileSync(join(dir, 'etc/settings.yaml'), settings(true));
    useFixtureIdentity(join(dir, 'state'));
    execFileSync(
      NODE,
      [WARDEND, 'user', 'add', 'alice', '--config-dir', join(dir, 'etc'), '--state-dir', join(dir, 'state')],
      {
        env: { ...process.env, WARDEN_PASSWORD: USERS.alice!.password },
        stdio: 'ignore',
      },
    );
    const web = pair.spawn(pair.server, NODE, [
      '-e',
      `require('node:http').createServer((q, r) => r.end('ok')).listen(8000, () => console.log('ready'));`,
    ]);
    await once(web.stdout!, 'data');
    dns = fixture(pair, pair.server, 'dns-server.js', [JSON.stringify({ 'web.test': SERVER_ADDR })]);
    await dns.next((l) => l.ready === true, 'dns ready');
    engine = await startWardend(pair, pair.client, dir, PORT);
  });
  after(() => {
    if (engine?.pid && engine.exitCode === null) process.kill(engine.pid, 'SIGTERM');
    pair.close();
    rmSync(dir, { recursive: true, force: true });
  });

  test("the engine's DNS gets out under deny-all, and the host-name rule it feeds lets curl through", async () => {
    await dns.next((l) => l.question === 'A web.test', 'the engine asking for web.test');
    const curl = (url: string) => {
      try {
        return pair.run(pair.client, 'curl', ['-s', '-m', '2', url]);
      } catch {
        return 'blocked';
      }
    };
    assert.equal(curl(`http://${SERVER_ADDR}:8000/`), 'ok', 'curl to the address web.test resolved to');
    const node = pair.run(pair.client, NODE, [
      '-e',
      `const s = require('node:net').connect(8000, '${SERVER_ADDR}');
       s.setTimeout(1500, () => { process.stdout.write('timeout'); process.exit(0); });
       s.on('connect', () => { process.stdout.write('connected'); process.exit(0); });`,
    ]);
    assert.equal(node, 'timeout', 'another program to the same address is denied');
  });

  test('remote administration: a console in the other namespace logs in while enabled, not after it is switched off', async () => {
    const remote = fixture(pair, pair.server, 'admin-console.js', [CLIENT_ADDR, String(PORT)]);
    assert.equal((await remote.next((l) => l.event === 'login', 'login', 8000)).role, 'administrator');
    await remote.next((l) => l.event === 'following', 'following');
    remote.send('counters');

    writeFileSync(join(dir, 'etc/settings.yaml'), settings(false));
    process.kill(engine!.pid!, 'SIGHUP');
    const end = Date.now() + 5000;
    while (!engine!.output().includes('"message":"reloaded"')) {
      assert.ok(Date.now() < end, `no reload: ${engine!.output()}`);
      await new Promise((r) => setTimeout(r, 20));
    }
    const refused = fixture(pair, pair.server, 'admin-console.js', [CLIENT_ADDR, String(PORT)]);
    await assert.rejects(
      refused.next((l) => l.event === 'login', 'login', 7000),
      /no login/,
    );
    assert.ok(!refused.lines.some((l) => l.event === 'login'));
  });
});
