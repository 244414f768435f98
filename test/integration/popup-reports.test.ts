/**
 * The blocked pop-up endpoint of a real engine: malformed reports are refused with the field named,
 * good ones answered with their log sequence number and found by logs.query; other hosts are refused;
 * a change of blockedPopups.port moves the endpoint.
 */
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { networkInterfaces, tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { EngineClient } from '../../src/client/engine-client.js';
import { Engine } from '../../src/engine/daemon.js';
import { MAX_REPORT_LINE, startPopupEndpoint } from '../../src/engine/services/popup-reports.js';
import { ErrorCode } from '../../src/errors.js';
import { Methods } from '../../src/protocol/methods.js';
import { freePort } from '../support/stand-ins.js';

/** A line-oriented client: send(line) resolves with the next answer line. */
async function reporter(port: number, host = '127.0.0.1', localAddress?: string) {
  const socket = net.connect({ port, host, ...(localAddress ? { localAddress } : {}) });
  await new Promise<void>((resolve, reject) => {
    socket.once('connect', resolve);
    socket.once('error', reject);
  });
  let buffered = '';
  const waiting: ((line: string) => void)[] = [];
  const lines: string[] = [];
  socket.on('data', (d) => {
    buffered += d.toString();
    for (let nl = buffered.indexOf('\n'); nl >= 0; nl = buffered.indexOf('\n')) {
      const line = buffered.slice(0, nl);
      buffered = buffered.slice(nl + 1);
      const w = waiting.shift();
      if (w) w(line);
      else lines.push(line);
    }
  });
  const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
  socket.on('error', () => {});
  const next = () =>
    new Promise<Record<string, unknown>>((resolve) => {
      const l = lines.shift();
      if (l !== undefined) resolve(JSON.parse(l));
      else waiting.push((x) => resolve(JSON.parse(x)));
    });
  return {
    send: (line: string) => {
      socket.write(`${line}\n`);
      return next();
    },
    next,
    closed,
    close: () => socket.destroy(),
  };
}

test('blocked pop-up endpoint: malformed reports get a clear error, good ones become log items in logs.query', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'warden-popups-'));
  const stateDir = join(dir, 'state');
  const engine = await Engine.start({
    configDir: join(dir, 'etc'),
    stateDir,
    port: 0,
    bindAddress: '127.0.0.1',
    services: { popupPort: 0 },
  });
  try {
    const port = engine.services.popupPort();
    assert.ok(port !== undefined && port > 0);
    const r = await reporter(port);
    const refused = async (line: string, pattern: RegExp, field?: string) => {
      const a = (await r.send(line)) as {
        ok: boolean;
        error: { code: string; message: string; field?: string };
      };
      assert.equal(a.ok, false, line);
      assert.equal(a.error.code, ErrorCode.POPUP_REPORT_INVALID);
      assert.match(a.error.message, pattern);
      assert.equal(a.error.field, field);
    };
    await refused('this is not json', /the report is not JSON/);
    await refused('[1,2]', /must be a JSON object/);
    await refused(
      '{"url":"https://ads.example/pop"}',
      /report field "application" is missing/,
      'application',
    );
    await refused(
      '{"application":"/usr/bin/firefox","url":"javascript:alert(1)"}',
      /"url": is not an http\(s\) URL/,
      'url',
    );
    await refused('{"application":"/usr/bin/firefox"}', /needs url or host/, 'url');
    await refused(
      '{"application":"/usr/bin/firefox","host":"ads.example","colour":"red"}',
      /unknown report field "colour"/,
      'colour',
    );
    await refused(
      '{"application":"/usr/bin/firefox","host":"ads.example","time":"yesterday"}',
      /"time": is not an ISO 8601/,
      'time',
    );

    const good = await r.send(
      JSON.stringify({
        application: '/usr/bin/firefox',
        url: 'https://ads.example/pop?id=1',
        reason: 'opened without a click',
      }),
    );
    assert.equal(good.ok, true);
    assert.equal(typeof good.seq, 'number');
    const hostOnly = await r.send('{"application":"/opt/mail/mailer","host":"tracker.example"}');
    assert.equal(hostOnly.ok, true);
    r.close();

    const client = await EngineClient.connect({
      host: '127.0.0.1',
      port: engine.server.port,
      verifyFingerprint: async (fp) => assert.equal(fp, engine.identity.fingerprint),
      timeoutMs: 5000,
    });
    try {
      await client.login({ localToken: readFileSync(join(stateDir, 'local-token'), 'utf8').trim() });
      const items = (
        await client.call(Methods.logsQuery, { kind: 'security', text: 'blocked pop-up', limit: 10 })
      ).items;
      assert.equal(items.length, 2);
      assert.equal(items[0]!.seq, good.seq);
      assert.equal(
        items[0]!.message,
        'blocked pop-up: https://ads.example/pop?id=1 in /usr/bin/firefox (opened without a click) [unverified report from a local program]',
      );
      assert.equal(items[0]!.application, '/usr/bin/firefox');
      assert.equal(items[0]!.host, 'ads.example');
      assert.match(items[0]!.source ?? '', /^blocked pop-up report from 127\.0\.0\.1:\d+$/);
      assert.equal(items[1]!.host, 'tracker.example');
    } finally {
      client.close();
    }
  } finally {
    await engine.stop();
    rmSync(dir, { recursive: true, force: true });
  }
});

test('blocked pop-up endpoint: an overlong line is refused and the connection closed; IPv6 loopback works too', async () => {
  const items: unknown[] = [];
  const endpoint = await startPopupEndpoint({
    port: 0,
    logs: {
      append: (i) => {
        items.push(i);
        return { ...i, seq: items.length, time: '' };
      },
    },
  });
  try {
    const r = await reporter(endpoint.port);
    const a = await r.send(`{"application":"${'a'.repeat(MAX_REPORT_LINE + 10)}"}`);
    assert.equal(a.ok, false);
    assert.match(
      String((a.error as { message: string }).message),
      /longer than 8192 bytes; connection closed/,
    );
    await r.closed;
    if (endpoint.addresses.includes('::1')) {
      const v6 = await reporter(endpoint.port, '::1');
      assert.equal((await v6.send('{"application":"app","host":"x.example"}')).ok, true);
      v6.close();
    }
    assert.equal(items.length, endpoint.addresses.includes('::1') ? 1 : 0);
  } finally {
    await endpoint.stop();
  }
});

test('blocked pop-up endpoint: a flood of reports is cut to the budget, the rest answered WARDEN_E_POPUP_THROTTLED', async () => {
  let logged = 0;
  const endpoint = await startPopupEndpoint({
    port: 0,
    logs: {
      append: (i) => {
        logged++;
        return { ...i, seq: logged, time: '' };
      },
    },
  });
  try {
    const r = await reporter(endpoint.port);
    const report = '{"application":"flooder","host":"x.example"}\n';
    const answers: Record<string, unknown>[] = [];
    const first = r.send(report.repeat(300).trimEnd());
    answers.push(await first);
    for (let i = 1; i < 300; i++) answers.push(await r.next());
    const throttled = answers.filter((a) => !a.ok);
    assert.ok(throttled.length >= 50, `only ${throttled.length} throttled`);
    assert.equal(logged, 300 - throttled.length);
    assert.equal((throttled[0]!.error as { code: string }).code, ErrorCode.POPUP_THROTTLED);
    assert.match((throttled[0]!.error as { message: string }).message, /at most 50 reports per second/);
    r.close();
  } finally {
    await endpoint.stop();
  }
});

test('blocked pop-up endpoint: a peer that is not on loopback is refused (WARDEN_E_POPUP_NOT_LOCAL)', async (t) => {
  const external = Object.values(networkInterfaces())
    .flat()
    .find((i) => i !== undefined && i.family === 'IPv4' && !i.internal);
  if (external === undefined) {
    t.skip('no non-loopback IPv4 address on this host');
    return;
  }
  // Listening on all addresses only here, to let a non-loopback peer in: the engine binds loopback only.
  const endpoint = await startPopupEndpoint({
    port: 0,
    logs: { append: () => assert.fail('nothing is logged') },
    hosts: ['0.0.0.0'],
  });
  try {
    const r = await reporter(endpoint.port, external.address, external.address);
    const a = await r.next();
    assert.equal(a.ok, false);
    assert.equal((a.error as { code: string }).code, ErrorCode.POPUP_NOT_LOCAL);
    assert.match(
      (a.error as { message: string }).message,
      new RegExp(`not from ${external.address.replace(/\./g, '\\.')}`),
    );
    await r.closed;
  } finally {
    await endpoint.stop();
  }
});

test('blocked pop-up endpoint follows settings: a new blockedPopups.port moves it', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'warden-popups-'));
  const first = await freePort();
  mkdirSync(join(dir, 'etc'));
  writeFileSync(join(dir, 'etc/settings.yaml'), `blockedPopups: {port: ${first}}\n`);
  const engine = await Engine.start({
    configDir: join(dir, 'etc'),
    stateDir: join(dir, 'state'),
    port: 0,
    bindAddress: '127.0.0.1',
  });
  try {
    assert.equal(engine.services.popupPort(), first);
    const second = await freePort();
    const s = engine.config.settings();
    await engine.config.setSettings({ ...s, blockedPopups: { port: second } });
    const until = Date.now() + 3000;
    while (engine.services.popupPort() !== second) {
      assert.ok(Date.now() < until, 'the endpoint did not move');
      await new Promise((r) => setTimeout(r, 20));
    }
    const r = await reporter(second);
    assert.equal((await r.send('{"application":"app","host":"x.example"}')).ok, true);
    r.close();
    await assert.rejects(reporter(first), /ECONNREFUSED/);
  } finally {
    await engine.stop();
    rmSync(dir, { recursive: true, force: true });
  }
});

test('blocked pop-up endpoint: a taken port is reported once and tried again until it is free', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'warden-popups-'));
  const blocker = net.createServer();
  await new Promise<void>((r) => blocker.listen(0, '127.0.0.1', r));
  const port = (blocker.address() as net.AddressInfo).port;
  mkdirSync(join(dir, 'etc'));
  writeFileSync(join(dir, 'etc/settings.yaml'), `blockedPopups: {port: ${port}}\n`);
  const engine = await Engine.start({
    configDir: join(dir, 'etc'),
    stateDir: join(dir, 'state'),
    port: 0,
    bindAddress: '127.0.0.1',
    services: { popupRetryMs: 50 },
  });
  try {
    assert.equal(engine.services.popupPort(), undefined);
    const taken = engine.logs.query({ kind: 'system', text: 'cannot listen', limit: 10 }).items;
    assert.equal(taken.length, 1);
    assert.match(taken[0]!.message, new RegExp(`localhost port ${port}: .*EADDRINUSE.*\\(trying again\\)`));
    await new Promise((r) => setTimeout(r, 200));
    assert.equal(engine.logs.query({ kind: 'system', text: 'cannot listen', limit: 10 }).items.length, 1);
    await new Promise<void>((r) => blocker.close(() => r()));
    const until = Date.now() + 3000;
    while (engine.services.popupPort() !== port) {
      assert.ok(Date.now() < until, 'the endpoint never came up');
      await new Promise((r) => setTimeout(r, 20));
    }
    const r = await reporter(port);
    assert.equal((await r.send('{"application":"app","host":"x.example"}')).ok, true);
    r.close();
  } finally {
    blocker.close();
    await engine.stop();
    rmSync(dir, { recursive: true, force: true });
  }
});
