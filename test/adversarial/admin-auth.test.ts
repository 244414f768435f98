/**
 * Attacks on the login (issue 11 items 11 and 12) against a real administration server with the real
 * throttle: pipelined wrong passwords on one connection and on many, a local user's failures aimed at
 * locking root's local-token login out, one user's password tried from many sources.
 */
import assert from 'node:assert/strict';
import { connect as netConnect } from 'node:net';
import { afterEach, beforeEach, describe, test } from 'node:test';
import { type TLSSocket, connect as tlsConnect } from 'node:tls';
import { LoginThrottle } from '../../src/admin/auth/throttle.js';
import { encodeFrame, FrameDecoder } from '../../src/protocol/frame.js';
import { type Harness, startHarness } from '../integration/admin-harness.js';

/** A raw TLS connection that sends frames and collects the answers' error codes (or "ok"). */
async function rawConsole(port: number, localAddress = '127.0.0.1') {
  const raw = netConnect({ port, host: '127.0.0.1', localAddress });
  raw.on('error', () => {});
  const socket: TLSSocket = tlsConnect({ socket: raw, rejectUnauthorized: false });
  socket.on('error', () => {});
  await new Promise((r) => socket.once('secureConnect', r));
  const decoder = new FrameDecoder();
  const answers: string[] = [];
  socket.on('data', (chunk: Buffer) => {
    for (const f of decoder.push(chunk)) {
      const m = JSON.parse(f.toString('utf8')) as { id?: number; error?: { data?: { code?: string } } };
      if (m.id !== undefined) answers.push(m.error ? (m.error.data?.code ?? 'error') : 'ok');
    }
  });
  return {
    answers,
    /** Sends `n` login requests in one write. */
    pipeline(n: number, params: Record<string, unknown>) {
      const frames = Array.from({ length: n }, (_, i) =>
        encodeFrame(JSON.stringify({ jsonrpc: '2.0', id: i + 1, method: 'session.login', params })),
      );
      socket.write(Buffer.concat(frames));
    },
    async until(n: number, ms = 20_000) {
      const end = Date.now() + ms;
      while (answers.length < n && Date.now() < end) await new Promise((r) => setTimeout(r, 20));
      return answers;
    },
    close: () => socket.destroy(),
  };
}

const count = (a: string[], code: string) => a.filter((x) => x === code).length;

describe('login throttling cannot be bypassed, and nobody is locked out of the token login', () => {
  let h: Harness;

  beforeEach(async () => {
    // The real throttle on the real clock, its first delay 5 s (not 0.5 s) so that a loaded machine's
    // pauses between attempts cannot let one through: the attempts must be refused for what they are.
    h = await startHarness({ throttle: new LoginThrottle({ now: Date.now, baseDelayMs: 5000 }) });
  });

  afterEach(async () => {
    await h.close();
  });

  test('200 wrong passwords pipelined in one write: 2 are verified, the other 198 are AUTH_THROTTLED', async () => {
    const c = await rawConsole(h.server.port);
    c.pipeline(200, { user: 'alice', password: 'wrong password!' });
    const answers = await c.until(200);
    c.close();
    assert.equal(answers.length, 200);
    assert.equal(
      count(answers, 'WARDEN_E_AUTH_FAILED'),
      2,
      'the third attempt is the first throttled (docs/protocol.md)',
    );
    assert.equal(count(answers, 'WARDEN_E_AUTH_THROTTLED'), 198);
    // The refusals are security items, but a flood of them does not flood the log store.
    const items = h.logs.query({ kind: 'security', text: 'too many failures', limit: 1000 }).items;
    assert.ok(items.length >= 1 && items.length <= 4, `${items.length} security items for 198 refusals`);
    assert.match(items.at(-1)!.message, /more refused since the last such item|too many failures/);
  });

  test('the same attack spread over 20 connections verifies no more passwords', async () => {
    const consoles = await Promise.all(Array.from({ length: 20 }, () => rawConsole(h.server.port)));
    for (const c of consoles) c.pipeline(10, { user: 'alice', password: 'wrong password!' });
    const all = (await Promise.all(consoles.map((c) => c.until(10)))).flat();
    for (const c of consoles) c.close();
    assert.equal(all.length, 200);
    assert.equal(count(all, 'WARDEN_E_AUTH_FAILED'), 2);
  });

  test("a local user's 12 wrong passwords from 127.0.0.1 do not lock root's local-token login out", async () => {
    const attacker = await rawConsole(h.server.port);
    for (let i = 1; i <= 12; i++) {
      attacker.pipeline(1, { user: 'alice', password: 'wrong password!' });
      await attacker.until(i);
    }
    assert.ok(count(attacker.answers, 'WARDEN_E_AUTH_THROTTLED') >= 9, 'the source is throttled');
    attacker.close();
    const root = await rawConsole(h.server.port);
    root.pipeline(1, { localToken: 'local-token-for-tests' });
    assert.deepEqual(await root.until(1), ['ok'], 'the token login is outside the password throttle');
    root.close();
  });

  test('500 wrong tokens pipelined: each refused, a few audit items, and the right token still works at once', async () => {
    const attacker = await rawConsole(h.server.port);
    attacker.pipeline(500, { localToken: 'guessed-token' });
    const answers = await attacker.until(500);
    attacker.close();
    assert.equal(count(answers, 'WARDEN_E_AUTH_FAILED'), 500);
    const items = h.logs.query({
      kind: 'admin',
      text: 'failed login as local administrator',
      limit: 1000,
    }).items;
    assert.ok(items.length <= 3, `${items.length} audit items for 500 wrong tokens`);
    const root = await rawConsole(h.server.port);
    root.pipeline(1, { localToken: 'local-token-for-tests' });
    assert.deepEqual(await root.until(1), ['ok']);
    root.close();
  });

  test("one user's password tried from many source addresses is throttled per user", async () => {
    const consoles = await Promise.all(
      Array.from({ length: 10 }, (_, i) => rawConsole(h.server.port, `127.0.0.${i + 2}`)),
    );
    for (const c of consoles) c.pipeline(1, { user: 'alice', password: 'wrong password!' });
    const answers = (await Promise.all(consoles.map((c) => c.until(1)))).flat();
    for (const c of consoles) c.close();
    assert.equal(count(answers, 'WARDEN_E_AUTH_FAILED'), 2, answers.join(' '));
    assert.equal(count(answers, 'WARDEN_E_AUTH_THROTTLED'), 8);
    // Another user, from another source, is not affected by alice's counter.
    const other = await rawConsole(h.server.port, '127.0.0.50');
    other.pipeline(1, { user: 'bob', password: 'auditor password' });
    assert.deepEqual(await other.until(1), ['ok']);
    other.close();
  });
});
