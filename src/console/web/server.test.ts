/** The console's web server: the token, Host and Origin checks, and static files that stay inside their folder. */
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { type ConsoleServer, startConsoleServer } from './server.js';

let dir: string;
let web: ConsoleServer;
before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'warden-web-server-'));
  mkdirSync(join(dir, 'site/assets'), { recursive: true });
  writeFileSync(join(dir, 'site/index.html'), '<div id="app"></div>');
  writeFileSync(join(dir, 'site/assets/a.js'), 'export {}');
  writeFileSync(join(dir, 'secret.txt'), 'secret');
  web = await startConsoleServer({
    staticDir: join(dir, 'site'),
    enginesPath: join(dir, 'engines.json'),
    knownHostsPath: join(dir, 'known.json'),
  });
});
after(async () => {
  await web.close();
  rmSync(dir, { recursive: true, force: true });
});

/** A raw GET (fetch would normalize the path and forbids setting Host). */
function get(path: string, headers: Record<string, string> = {}) {
  return new Promise<{ status: number; body: string; headers: Record<string, unknown> }>(
    (resolve, reject) => {
      const r = request({ host: '127.0.0.1', port: web.port, path, headers }, (res) => {
        let body = '';
        res.on('data', (d) => (body += d));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body, headers: res.headers }));
      });
      r.on('error', reject);
      r.end();
    },
  );
}
const auth = () => ({ authorization: `Bearer ${web.token}` });

test('the URL holds a 256-bit token and the server listens on 127.0.0.1', () => {
  assert.match(web.url, /^http:\/\/127\.0\.0\.1:\d+\/\?token=[0-9a-f]{64}$/);
});

test('no token: 401; a wrong one: 403; the right one: a cookie and a redirect without it', async () => {
  assert.equal((await get('/')).status, 401);
  assert.equal((await get('/?token=00')).status, 403);
  const r = await get(`/rules?token=${web.token}&x=1`);
  assert.equal(r.status, 302);
  assert.equal(r.headers.location, '/rules?x=1');
  const cookie = String(r.headers['set-cookie']).split(';')[0]!;
  const page = await get('/', { cookie });
  assert.equal(page.status, 200);
  assert.match(String(page.headers['content-security-policy']), /default-src 'self'/);
});

test('a foreign Host header (DNS rebinding) is refused even with the token', async () => {
  assert.equal((await get('/', { ...auth(), host: `attacker.example:${web.port}` })).status, 421);
  assert.equal((await get('/', { ...auth(), host: `localhost:${web.port}` })).status, 200);
});

test('paths cannot leave the static folder; unknown paths get the page', async () => {
  for (const path of ['/../secret.txt', '/%2e%2e/secret.txt', '/assets/../../secret.txt']) {
    const r = await get(path, auth());
    assert.doesNotMatch(r.body, /secret/, path);
  }
  assert.equal((await get('/assets/a.js', auth())).body, 'export {}');
  assert.match((await get('/engines', auth())).body, /id="app"/);
});

test('the WebSocket needs the token and this origin', async () => {
  const upgrade = (headers: Record<string, string>) =>
    new Promise<number>((resolve) => {
      const r = request({
        host: '127.0.0.1',
        port: web.port,
        path: '/ws',
        headers: {
          connection: 'Upgrade',
          upgrade: 'websocket',
          'sec-websocket-version': '13',
          'sec-websocket-key': 'dGhlIHNhbXBsZSBub25jZQ==',
          ...headers,
        },
      });
      r.on('upgrade', (res, socket) => {
        socket.destroy();
        resolve(res.statusCode ?? 0);
      });
      r.on('response', (res) => resolve(res.statusCode ?? 0));
      r.on('error', () => resolve(0));
      r.end();
    });
  const origin = `http://127.0.0.1:${web.port}`;
  assert.equal(await upgrade({ ...auth(), origin }), 101);
  assert.equal(await upgrade({ origin }), 403);
  assert.equal(await upgrade({ ...auth(), origin: 'http://attacker.example' }), 403);
});

test('the bridge calls only protocol methods, and only on engines the page logged in to', async () => {
  const { WebSocket } = await import('ws');
  const ws = new WebSocket(`ws://127.0.0.1:${web.port}/ws`, {
    headers: { ...auth(), origin: `http://127.0.0.1:${web.port}` },
  });
  await new Promise((resolve, reject) => {
    ws.once('open', resolve);
    ws.once('error', reject);
  });
  const answers = new Map<number, { error?: { code: string; message: string }; result?: unknown }>();
  ws.on('message', (d) => {
    const m = JSON.parse(d.toString());
    answers.set(m.id, m);
  });
  const ask = async (id: number, request: Record<string, unknown>) => {
    ws.send(JSON.stringify({ id, ...request }));
    const end = Date.now() + 3000;
    while (!answers.has(id) && Date.now() < end) await new Promise((r) => setTimeout(r, 10));
    return answers.get(id)!;
  };
  try {
    const login = await ask(1, { op: 'call', engine: 'lab', method: 'session.login', params: {} });
    assert.match(login.error!.message, /not a method the console may call/);
    const unknown = await ask(2, { op: 'call', engine: 'lab', method: 'shell.exec' });
    assert.match(unknown.error!.message, /not a method the console may call/);
    const notIn = await ask(3, { op: 'call', engine: 'lab', method: 'rules.list' });
    assert.equal(notIn.error!.code, 'WARDEN_E_NOT_AUTHENTICATED');
    const op = await ask(4, { op: 'format-disk' });
    assert.equal(op.error!.code, 'WARDEN_E_USAGE');
    assert.deepEqual((await ask(5, { op: 'engines' })).result, { engines: [] });
  } finally {
    ws.close();
  }
});
