/**
 * The web console's bridge over real engine connections (no browser): a session the engine ended
 * on purpose is not resumed; one whose engine went away is logged in again when the engine is back
 * (same port, same certificate), with the log items stored meanwhile; and an impostor on that port
 * (another certificate) gets no credentials: the session ends instead.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { KnownHosts } from '../../src/client/known-hosts.js';
import { EngineList } from '../../src/console/engines.js';
import { Bridge } from '../../src/console/web/bridge.js';
import { Methods } from '../../src/protocol/methods.js';
import { fixtureIdentity, type Harness, startHarness, USERS, until } from '../integration/admin-harness.js';

type Message = {
  id?: number;
  push?: string;
  result?: unknown;
  error?: { code?: string; message: string };
} & Record<string, unknown>;

describe('web console bridge: sessions across engine restarts', () => {
  let dir: string;
  let h: Harness;
  let port = 0;
  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'warden-web-bridge-'));
    h = await startHarness();
    port = h.server.port;
    await (await KnownHosts.open(join(dir, 'known.json'))).pin(`127.0.0.1:${port}`, h.fingerprint);
    await (await EngineList.open(join(dir, 'engines.json'))).save('lab', { host: '127.0.0.1', port });
  });
  after(async () => {
    await h?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  function bridge() {
    const got: Message[] = [];
    let next = 1;
    const b = new Bridge({
      engines: () => EngineList.open(join(dir, 'engines.json')),
      knownHosts: () => KnownHosts.open(join(dir, 'known.json')),
      localTokenPath: join(dir, 'no-token'),
      send: (m) => got.push(m as Message),
      queuedBytes: () => 0,
      reconnect: { firstMs: 50, maxMs: 200, giveUpMs: 20_000 },
    });
    const ask = async (request: Record<string, unknown>) => {
      const id = next++;
      await b.handle(JSON.stringify({ id, ...request }));
      const answer = got.find((m) => m.id === id)!;
      if (answer.error) throw Object.assign(new Error(answer.error.message), answer.error);
      return answer.result as Record<string, unknown>;
    };
    const pushes = (kind: string) => got.filter((m) => m.push === kind);
    return { b, got, ask, pushes };
  }

  test('a session the engine ends (its user got another role) is closed, not resumed', async () => {
    const { b, ask, pushes } = bridge();
    try {
      await ask({ op: 'login', engine: 'lab', user: 'bob', password: USERS.bob!.password });
      const alice = await h.login('alice');
      await alice.call(Methods.usersSetRole, { name: 'bob', role: 'administrator' });
      await until(() => pushes('closed').length === 1, 5000, 'the closed push');
      assert.equal(pushes('reconnecting').length, 0);
      await alice.call(Methods.usersSetRole, { name: 'bob', role: 'auditor' });
    } finally {
      b.close();
    }
  });

  test('the engine restarts: the bridge logs in again and reads the items stored meanwhile', async () => {
    const { b, ask, pushes, got } = bridge();
    try {
      await ask({ op: 'login', engine: 'lab', user: 'bob', password: USERS.bob!.password });
      h.logs.append({ kind: 'system', message: 'before the restart' });
      await until(
        () => got.some((m) => m.push === 'log' && JSON.stringify(m).includes('before the restart')),
        5000,
      );
      await h.close();
      await until(() => pushes('reconnecting').length > 0, 5000, 'the reconnecting push');
      await assert.rejects(ask({ op: 'call', engine: 'lab', method: 'rules.list', params: {} }), {
        code: 'WARDEN_E_CONNECTION_FAILED',
      });
      h = await startHarness({ port });
      // The new engine's store starts empty: its items are new to the bridge, as the restarted engine's would be.
      h.logs.append({ kind: 'system', message: 'while the console was away' });
      await until(() => pushes('reconnected').length === 1, 15_000, 'the reconnected push');
      assert.deepEqual((pushes('reconnected')[0]!.session as { user: string }).user, 'bob');
      await until(
        () => got.some((m) => m.push === 'log' && JSON.stringify(m).includes('while the console was away')),
        5000,
      );
      const rules = await ask({ op: 'call', engine: 'lab', method: 'rules.list', params: {} });
      assert.ok(Array.isArray(rules.rules));
      assert.equal(pushes('closed').length, 0);
      assert.deepEqual(Object.keys(b.sessions()), ['lab']);
    } finally {
      b.close();
    }
  });

  test('an impostor on the engine’s port gets no password: the session ends', async () => {
    const { b, ask, pushes } = bridge();
    try {
      await ask({ op: 'login', engine: 'lab', user: 'bob', password: USERS.bob!.password });
      await h.close();
      await until(() => pushes('reconnecting').length > 0, 5000, 'the reconnecting push');
      h = await startHarness({ port, identity: fixtureIdentity('other') });
      await until(() => pushes('closed').length === 1, 15_000, 'the closed push');
      assert.match(String(pushes('closed')[0]!.reason), /fingerprint/i);
      assert.equal(
        h.logs.query({ limit: 1000 }).items.filter((i) => i.kind === 'admin' || i.kind === 'security').length,
        0,
        'no login attempt reached the impostor',
      );
    } finally {
      b.close();
      await h.close();
      h = await startHarness({ port });
    }
  });

  test('a page that went away keeps its sessions only until its ticket expires, then they are logged out', async () => {
    const { startConsoleServer } = await import('../../src/console/web/server.js');
    const { WebSocket } = await import('ws');
    const web = await startConsoleServer({
      staticDir: dir,
      enginesPath: join(dir, 'engines.json'),
      knownHostsPath: join(dir, 'known.json'),
      parkMs: 300,
    });
    const open = async () => {
      const ws = new WebSocket(`ws://127.0.0.1:${web.port}/ws`, {
        headers: { authorization: `Bearer ${web.token}`, origin: `http://127.0.0.1:${web.port}` },
      });
      const answers: Message[] = [];
      ws.on('message', (d) => answers.push(JSON.parse(d.toString())));
      await new Promise((ok, fail) => {
        ws.once('open', ok);
        ws.once('error', fail);
      });
      let id = 0;
      const ask = async (request: Record<string, unknown>) => {
        const mine = ++id;
        ws.send(JSON.stringify({ id: mine, ...request }));
        await until(() => answers.some((a) => a.id === mine), 5000, `answer ${mine}`);
        return answers.find((a) => a.id === mine)!;
      };
      return { ws, ask };
    };
    try {
      const before = h.server.consoles;
      const first = await open();
      const { ticket } = (await first.ask({ op: 'resume', ticket: '' })).result as { ticket: string };
      await first.ask({ op: 'login', engine: 'lab', user: 'bob', password: USERS.bob!.password });
      assert.equal(h.server.consoles, before + 1);
      first.ws.close();
      // Gone for longer than the park time: the engine session is closed, and the ticket opens nothing.
      await until(() => h.server.consoles === before, 5000, 'the parked session to be logged out');
      const second = await open();
      const r = (await second.ask({ op: 'resume', ticket })).result as { resumed: boolean; sessions: object };
      assert.equal(r.resumed, false);
      assert.deepEqual(r.sessions, {});
      second.ws.close();
    } finally {
      await web.close();
    }
  });
});
