/**
 * The services' HTTPS requests against local stand-ins: direct and through a CONNECT proxy, with the
 * failures named; the update checker and registration running inside a real engine.
 */
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { Engine } from '../../src/engine/daemon.js';
import { httpRequest } from '../../src/engine/services/http-client.js';
import { ErrorCode, WardenError } from '../../src/errors.js';
import { parseProxyUrl } from '../../src/settings/proxy.js';
import { eventually, startConnectProxy, startHttpsStandIn, TEST_CA } from '../support/stand-ins.js';

const direct = { kind: 'direct', because: 'test' } as const;

test('http client: direct and through a CONNECT proxy; untrusted certificate, bad status, timeout and size are named', async () => {
  const server = await startHttpsStandIn((req) =>
    req.path === '/big'
      ? { status: 200, text: 'x'.repeat(5000) }
      : req.path === '/missing'
        ? { status: 404, text: 'no such feed' }
        : { status: 200, json: { echo: req.body } },
  );
  const proxy = await startConnectProxy();
  try {
    const plain = await httpRequest({ url: server.url('/a'), route: direct, ca: TEST_CA });
    assert.equal(plain.status, 200);
    assert.equal(plain.via, 'directly');

    const route = {
      kind: 'proxy',
      host: '127.0.0.1',
      port: Number(new URL(proxy.url).port),
      url: proxy.url,
      because: 'test',
    } as const;
    const viaProxy = await httpRequest({
      url: server.url('/b'),
      method: 'POST',
      json: { n: 1 },
      route,
      ca: TEST_CA,
    });
    assert.deepEqual(JSON.parse(viaProxy.body), { echo: '{"n":1}' });
    assert.equal(proxy.tunnels.length, 1);
    assert.equal(proxy.tunnels[0], new URL(server.url('/')).host);
    assert.match(viaProxy.via, /through proxy http:\/\/127\.0\.0\.1:\d+/);

    const failing = async (request: Parameters<typeof httpRequest>[0], pattern: RegExp) =>
      assert.rejects(httpRequest(request), (e: unknown) => {
        assert.ok(e instanceof WardenError);
        assert.equal(e.code, ErrorCode.SERVICE_REQUEST_FAILED);
        assert.match(e.message, pattern);
        return true;
      });
    await failing(
      { url: server.url('/a'), route: direct },
      /https:\/\/127\.0\.0\.1:\d+\/a directly: .*certificate/i,
    );
    await failing(
      { url: server.url('/missing'), route, ca: TEST_CA },
      /through proxy .*HTTP 404: no such feed/,
    );
    await failing(
      { url: server.url('/big'), route: direct, ca: TEST_CA, maxBytes: 1000 },
      /larger than 1000 bytes/,
    );
    // A plain http:// URL through the proxy: the absolute URI goes to the proxy.
    const plainServer = http.createServer((_q, a) => a.end('{"plain":true}'));
    await new Promise<void>((r) => plainServer.listen(0, '127.0.0.1', r));
    try {
      const plainUrl = `http://127.0.0.1:${(plainServer.address() as AddressInfo).port}/feed?x=1`;
      const viaHttpProxy = await httpRequest({ url: plainUrl, route });
      assert.deepEqual(JSON.parse(viaHttpProxy.body), { plain: true });
      assert.equal(proxy.tunnels.at(-1), `GET ${plainUrl}`);
      assert.deepEqual(JSON.parse((await httpRequest({ url: plainUrl, route: direct })).body), {
        plain: true,
      });
    } finally {
      plainServer.close();
    }
    const refused = { ...route, port: 1 };
    await failing({ url: server.url('/a'), route: refused, ca: TEST_CA }, /cannot reach the proxy/);
    const socks = { ...route, url: 'socks5://127.0.0.1:1080' };
    await failing({ url: server.url('/a'), route: socks, ca: TEST_CA }, /only http:\/\/ proxies/);
  } finally {
    await proxy.close();
    await server.close();
  }
});

test('http client: a proxy that wants credentials gets them from the proxy URL, and says so when they are missing', async () => {
  const server = await startHttpsStandIn(() => ({ status: 200, json: { ok: true } }));
  const proxy = await startConnectProxy({ credentials: 'alice:p@ss:word' });
  try {
    const port = new URL(proxy.url).port;
    const withCredentials = parseProxyUrl(`http://alice:p%40ss%3Aword@127.0.0.1:${port}`)!;
    const route = { kind: 'proxy', ...withCredentials, because: 'test' } as const;
    const answer = await httpRequest({ url: server.url('/x'), route, ca: TEST_CA });
    assert.equal(answer.status, 200);
    assert.doesNotMatch(answer.via, /alice|p@ss/, 'credentials never appear in messages');
    const without = { ...route, credentials: undefined };
    await assert.rejects(
      httpRequest({ url: server.url('/x'), route: without, ca: TEST_CA }),
      /HTTP 407 \(proxy authentication required/,
    );
  } finally {
    await proxy.close();
    await server.close();
  }
});

test('http client: a server that never answers fails after the deadline', async () => {
  const net = await import('node:net');
  const silent = net.createServer((s) => s.resume()); // reads (so it sees the close) but never answers
  await new Promise<void>((r) => silent.listen(0, '127.0.0.1', r));
  const port = (silent.address() as import('node:net').AddressInfo).port;
  try {
    const started = Date.now();
    await assert.rejects(
      httpRequest({ url: `https://127.0.0.1:${port}/`, route: direct, ca: TEST_CA, timeoutMs: 200 }),
      /no answer within 200 ms/,
    );
    assert.ok(Date.now() - started < 2000);
    // A proxy that never answers CONNECT: the same deadline, and its socket is closed.
    const silentProxy = {
      kind: 'proxy',
      host: '127.0.0.1',
      port,
      url: `http://127.0.0.1:${port}`,
      because: 'test',
    } as const;
    await assert.rejects(
      httpRequest({ url: 'https://127.0.0.1:1/', route: silentProxy, ca: TEST_CA, timeoutMs: 200 }),
      /through proxy http:\/\/127\.0\.0\.1:\d+: no answer within 200 ms/,
    );
    const connections = () => new Promise<number>((r) => silent.getConnections((_e, n) => r(n)));
    const until = Date.now() + 2000;
    while ((await connections()) > 0) {
      assert.ok(Date.now() < until, 'a connection was left open');
      await new Promise((r) => setTimeout(r, 20));
    }
  } finally {
    silent.close();
  }
});

function engineDirs(settingsYaml: string) {
  const dir = mkdtempSync(join(tmpdir(), 'warden-services-'));
  const configDir = join(dir, 'etc');
  mkdirSync(configDir, { recursive: true });
  writeFileSync(join(configDir, 'settings.yaml'), settingsYaml);
  return { dir, configDir, stateDir: join(dir, 'state') };
}

test('update checker: the engine reads the feed through the proxy named by https_proxy and logs a newer version once', async () => {
  const feed = await startHttpsStandIn(() => ({
    status: 200,
    json: { latest: '9.1.0', url: 'https://example.test/warden-9.1.0' },
  }));
  const proxy = await startConnectProxy();
  const d = engineDirs(
    `updates: {enabled: true, feedUrl: "${feed.url('/releases.json')}", intervalHours: 1}\n` +
      'proxy: {mode: auto}\n',
  );
  // The proxy comes from the OS configuration (the environment the engine starts with).
  const before = process.env.https_proxy;
  process.env.https_proxy = proxy.url;
  const engine = await Engine.start({
    configDir: d.configDir,
    stateDir: d.stateDir,
    port: 0,
    bindAddress: '127.0.0.1',
    services: { ca: TEST_CA, popupPort: 0, updateFirstDelayMs: 0 },
  });
  if (before === undefined) delete process.env.https_proxy;
  else process.env.https_proxy = before;
  try {
    const item = await eventually(
      () => engine.logs.query({ kind: 'system', text: 'update available', limit: 10 }).items[0],
      5000,
      'the update log item',
    );
    assert.equal(
      item.message,
      'update available: Warden 9.1.0 (running 0.1.0): https://example.test/warden-9.1.0',
    );
    assert.equal(feed.requests[0]!.path, '/releases.json');
    assert.deepEqual(proxy.tunnels, [new URL(feed.url('/')).host]);
    // A settings change restarts the checker (a first check soon); the same version is not announced twice.
    const s = engine.config.settings();
    await engine.config.setSettings({ ...s, updates: { ...s.updates, intervalHours: 2 } });
    await eventually(() => (feed.requests.length === 2 ? true : undefined), 5000, 'the second check');
    await new Promise((r) => setTimeout(r, 100));
    assert.equal(engine.logs.query({ kind: 'system', text: 'update available', limit: 10 }).items.length, 1);
    // Turning updates off stops the checker.
    await engine.config.setSettings({ ...s, updates: { ...s.updates, enabled: false } });
    await new Promise((r) => setTimeout(r, 100));
    assert.equal(feed.requests.length, 2);
  } finally {
    await engine.stop();
    await proxy.close();
    await feed.close();
    rmSync(d.dir, { recursive: true, force: true });
  }
});

test('update checker: a feed that is not the documented format is logged with the field', async () => {
  const feed = await startHttpsStandIn(() => ({ status: 200, json: { newest: '2.0.0' } }));
  const d = engineDirs(`updates: {enabled: true, feedUrl: "${feed.url('/f')}"}\nproxy: {mode: direct}\n`);
  const engine = await Engine.start({
    configDir: d.configDir,
    stateDir: d.stateDir,
    port: 0,
    bindAddress: '127.0.0.1',
    services: { ca: TEST_CA, popupPort: 0, updateFirstDelayMs: 0 },
  });
  try {
    const item = await eventually(
      () => engine.logs.query({ kind: 'system', text: 'update check failed', limit: 10 }).items[0],
      5000,
      'the failure log item',
    );
    assert.match(item.message, /release feed https:\/\/127\.0\.0\.1:\d+\/f: latest: /);
  } finally {
    await engine.stop();
    await feed.close();
    rmSync(d.dir, { recursive: true, force: true });
  }
});

test('registration: enrols directly after a failed attempt, keeps the id, does not enrol again on restart', async () => {
  const server = await startHttpsStandIn((_req, i) =>
    i === 0 ? { status: 503, text: 'busy' } : { status: 201, json: { registrationId: 'reg-42' } },
  );
  const d = engineDirs(
    `registration: {enabled: true, server: "${server.url('/enrol')}"}\nproxy: {mode: direct}\n`,
  );
  const options = {
    configDir: d.configDir,
    stateDir: d.stateDir,
    port: 0,
    bindAddress: '127.0.0.1',
    services: { ca: TEST_CA, popupPort: 0, registrationBackoffMs: { min: 50, max: 200 } },
  };
  try {
    const engine = await Engine.start(options);
    try {
      await eventually(
        () => engine.logs.query({ kind: 'system', text: 'registered with', limit: 10 }).items[0],
        5000,
        'the registration log item',
      );
      assert.match(
        engine.logs.query({ kind: 'system', text: 'registration failed', limit: 10 }).items[0]!.message,
        /HTTP 503: busy/,
      );
      const file = join(d.stateDir, 'registration.json');
      assert.equal(statSync(file).mode & 0o777, 0o600);
      const saved = JSON.parse(readFileSync(file, 'utf8'));
      assert.equal(saved.registrationId, 'reg-42');
      assert.equal(saved.server, server.url('/enrol'));
      assert.equal(server.requests.length, 2);
      const body = JSON.parse(server.requests[1]!.body);
      assert.equal(body.engineId, saved.engineId);
      assert.equal(body.fingerprint, engine.identity.fingerprint);
      assert.equal(body.version, '0.1.0');
      assert.equal(typeof body.hostname, 'string');
      assert.equal(server.requests[1]!.method, 'POST');
    } finally {
      await engine.stop();
    }
    const again = await Engine.start(options);
    await new Promise((r) => setTimeout(r, 150));
    await again.stop();
    assert.equal(server.requests.length, 2, 'no second enrolment with the same server');
  } finally {
    await server.close();
    rmSync(d.dir, { recursive: true, force: true });
  }
});
