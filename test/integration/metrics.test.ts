/** The localhost Prometheus endpoint of an unprivileged engine: failed logins and consoles over HTTP, following the settings. */
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { networkInterfaces, tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { EngineClient } from '../../src/client/engine-client.js';
import { Engine } from '../../src/engine/daemon.js';
import { Methods } from '../../src/protocol/methods.js';

/** A TCP port free on 127.0.0.1 right now (the settings take 1-65535, not 0). */
async function freePort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', () => r()));
  const { port } = s.address() as { port: number };
  await new Promise((r) => s.close(r));
  return port;
}

const scrape = async (port: number, host = '127.0.0.1') => {
  const res = await fetch(`http://${host}:${port}/metrics`);
  return { status: res.status, type: res.headers.get('content-type'), text: await res.text() };
};
/** Waits (up to 3 s) until `ok` holds. */
async function until(ok: () => boolean | Promise<boolean>): Promise<void> {
  const end = Date.now() + 3000;
  while (!(await ok())) {
    assert.ok(Date.now() < end, 'timed out');
    await new Promise((r) => setTimeout(r, 20));
  }
}

const value = (text: string, series: string) =>
  Number(new RegExp(`^${series.replace(/[{}]/g, '\\$&')} (\\S+)$`, 'm').exec(text)?.[1]);

test('metrics on 127.0.0.1: a wrong password counts as a failed login, consoles are counted, settings turn it off', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'warden-metrics-'));
  const port = await freePort();
  mkdirSync(join(dir, 'etc'));
  writeFileSync(join(dir, 'etc/settings.yaml'), `metrics:\n  enabled: true\n  port: ${port}\n`);
  const stateDir = join(dir, 'state');
  const engine = await Engine.start({
    configDir: join(dir, 'etc'),
    stateDir,
    port: 0,
    bindAddress: '127.0.0.1',
  });
  const connect = () =>
    EngineClient.connect({
      host: '127.0.0.1',
      port: engine.server.port,
      verifyFingerprint: async () => {},
      timeoutMs: 5000,
    });
  try {
    const before = await scrape(port);
    assert.equal(before.status, 200);
    assert.equal(before.type, 'text/plain; version=0.0.4; charset=utf-8');
    assert.equal(value(before.text, 'warden_logins_failed_total'), 0);

    const wrong = await connect();
    await assert.rejects(wrong.login({ user: 'alice', password: 'not the password' }), {
      code: 'WARDEN_E_AUTH_FAILED',
    });
    wrong.close();
    const admin = await connect();
    await admin.login({ localToken: readFileSync(join(stateDir, 'local-token'), 'utf8').trim() });
    const after = await scrape(port);
    assert.equal(value(after.text, 'warden_logins_failed_total'), 1);
    assert.equal(value(after.text, 'warden_consoles_connected'), 1);
    assert.equal(value(after.text, 'warden_decisions_total{verdict="allow"}'), 0, 'nothing enforced here');
    assert.equal((await fetch(`http://127.0.0.1:${port}/other`)).status, 404);

    // Log items pushed to a following console, and fetched again after a gap (backfill).
    const got: string[] = [];
    const follower = await admin.follow((items) => got.push(...items.map((i) => i.message)), { udp: false });
    engine.logs.append({ kind: 'security', message: 'pushed to the console' });
    await until(() => got.includes('pushed to the console'));
    await until(async () => value((await scrape(port)).text, 'warden_log_items_pushed_total') >= 1);
    const backfill = await admin.call(Methods.logsQuery, { fromSeq: 1, limit: 5 });
    const afterBackfill = await scrape(port);
    assert.equal(value(afterBackfill.text, 'warden_log_items_backfilled_total'), backfill.items.length);
    follower.stop();

    // Bound to 127.0.0.1 only: not reachable on another address of this host.
    const other = Object.values(networkInterfaces())
      .flat()
      .find((a) => a && !a.internal && a.family === 'IPv4')?.address;
    if (other !== undefined) await assert.rejects(scrape(port, other));

    // Turned off through the settings: the endpoint goes away.
    await admin.call(Methods.settingsSet, { settings: { metrics: { enabled: false } } });
    await until(() =>
      scrape(port).then(
        () => false,
        () => true,
      ),
    );
    admin.close();
  } finally {
    await engine.stop();
    rmSync(dir, { recursive: true, force: true });
  }
});
