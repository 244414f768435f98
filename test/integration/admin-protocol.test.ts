/** The administration protocol end to end: real TLS on 127.0.0.1, real UDP, real files. */
import assert from 'node:assert/strict';
import { createSocket } from 'node:dgram';
import { after, before, describe, test } from 'node:test';
import { connect as tlsConnect } from 'node:tls';
import { LoginThrottle } from '../../src/admin/auth/throttle.js';
import { DatagramType, sealDatagram } from '../../src/protocol/datagram.js';
import { encodeFrame, FrameDecoder } from '../../src/protocol/frame.js';
import type { LogItem } from '../../src/protocol/log-item.js';
import { Methods } from '../../src/protocol/methods.js';
import { fixtureIdentity, type Harness, startHarness, until } from './admin-harness.js';

/** A raw TLS connection that speaks frames by hand. */
async function rawConnection(port: number) {
  const socket = tlsConnect({ host: '127.0.0.1', port, rejectUnauthorized: false, minVersion: 'TLSv1.3' });
  await new Promise((r, j) => socket.once('secureConnect', r).once('error', j));
  const decoder = new FrameDecoder();
  const frames: unknown[] = [];
  let closed = false;
  socket.on('data', (c: Buffer) => {
    for (const f of decoder.push(c)) frames.push(JSON.parse(f.toString()));
  });
  socket.on('close', () => {
    closed = true;
  });
  socket.on('error', () => {});
  return { socket, frames, isClosed: () => closed };
}

describe('administration protocol', () => {
  let h: Harness;
  before(async () => {
    h = await startHarness();
  });
  after(() => h.close());

  test('login with the right password gives an unguessable identifier and a key', async () => {
    const c = await h.connect();
    const r = await c.login({ user: 'alice', password: 'correct horse battery' });
    assert.match(r.connectionId, /^[0-9a-f]{32}$/);
    assert.equal(Buffer.from(r.udpKey, 'base64').length, 32);
    assert.equal(r.role, 'administrator');
    const who = await c.call(Methods.whoami, {});
    assert.equal(who.user, 'alice');
    assert.equal(who.connectionId, r.connectionId);
    c.close();
  });

  test('a wrong password is refused and logged as an audit item', async () => {
    const c = await h.connect();
    await assert.rejects(c.login({ user: 'alice', password: 'wrong' }), { code: 'WARDEN_E_AUTH_FAILED' });
    await assert.rejects(c.call(Methods.status, {}), { code: 'WARDEN_E_NOT_AUTHENTICATED' });
    const items = h.logs.query({ kind: 'admin', limit: 100 }).items;
    assert.ok(items.some((i) => /failed login as alice/.test(i.message)));
    c.close();
  });

  test('an auditor may read but not change anything', async () => {
    const c = await h.login('bob');
    const status = await c.call(Methods.status, {});
    assert.equal(status.rules, 0);
    await assert.rejects(
      c.call(Methods.rulesAdd, { rule: { name: 'x', direction: 'outgoing', action: 'deny' } }),
      {
        code: 'WARDEN_E_FORBIDDEN',
      },
    );
    await assert.rejects(c.call(Methods.settingsSet, { settings: { syslog: { enabled: true } } }), {
      code: 'WARDEN_E_FORBIDDEN',
    });
    c.close();
  });

  test('the local administrator token logs in from loopback', async () => {
    const c = await h.connect();
    const r = await c.login({ localToken: 'local-token-for-tests' });
    assert.equal(r.role, 'administrator');
    c.close();
    const d = await h.connect();
    await assert.rejects(d.login({ localToken: 'guess' }), { code: 'WARDEN_E_AUTH_FAILED' });
    d.close();
  });

  test('rules: add, list, get, move, update, remove; every change is an audit item; bad rules name the field', async () => {
    const c = await h.login();
    await c.call(Methods.rulesAdd, {
      rule: { name: 'ssh', direction: 'incoming', protocol: 'tcp', localPorts: 22, action: 'allow' },
    });
    await c.call(Methods.rulesAdd, {
      rule: { name: 'web', direction: 'outgoing', protocol: 'tcp', remotePorts: [80, 443], action: 'allow' },
    });
    await c.call(Methods.rulesMove, { name: 'web', position: 0 });
    let list = await c.call(Methods.rulesList, { internal: false });
    assert.deepEqual(
      list.rules.map((r) => r.name),
      ['web', 'ssh'],
    );
    assert.equal(list.internal, undefined);
    list = await c.call(Methods.rulesList, { internal: true });
    assert.ok(list.internal?.some((r) => r.id === 'internal.remote-configuration' && r.readOnly === true));
    await c.call(Methods.rulesUpdate, {
      name: 'ssh',
      rule: { name: 'ssh', direction: 'incoming', protocol: 'tcp', localPorts: 2222, action: 'allow' },
    });
    assert.equal((await c.call(Methods.rulesGet, { name: 'ssh' })).rule.localPorts, 2222);
    await assert.rejects(
      c.call(Methods.rulesAdd, { rule: { name: 'ssh', direction: 'outgoing', action: 'deny' } }),
      { code: 'WARDEN_E_ALREADY_EXISTS' },
    );
    await assert.rejects(
      c.call(Methods.rulesAdd, {
        rule: { name: 'bad', direction: 'outgoing', remotePorts: 70000, protocol: 'tcp', action: 'deny' },
      }),
      (e: Error & { code: string; problems: { path: (string | number)[] }[] }) => {
        assert.equal(e.code, 'WARDEN_E_POLICY_INVALID');
        assert.deepEqual(e.problems[0]?.path, ['remotePorts']);
        return true;
      },
    );
    const explained = await c.call(Methods.explain, {
      direction: 'outgoing',
      protocol: 'tcp',
      remoteAddress: '93.184.215.14',
      remotePort: 443,
      hosts: [],
    });
    assert.equal((explained.decision as { ruleName: string }).ruleName, 'web');
    await c.call(Methods.rulesRemove, { name: 'web' });
    await assert.rejects(c.call(Methods.rulesGet, { name: 'web' }), { code: 'WARDEN_E_NOT_FOUND' });
    const audit = h.logs.query({ kind: 'admin', limit: 1000 }).items.map((i) => i.message);
    for (const m of ['rule "ssh" added', 'rule "web" moved', 'rule "ssh" updated', 'rule "web" removed']) {
      assert.ok(
        audit.some((a) => a.includes(m)),
        `audit has "${m}"`,
      );
    }
    assert.ok(
      h.logs
        .query({ kind: 'admin', limit: 1000 })
        .items.every((i) => i.user !== undefined && i.source === '127.0.0.1'),
    );
    // The policy file on disk holds the change.
    assert.deepEqual(
      h.config.policy().rules.map((r) => r.name),
      ['ssh'],
    );
    c.close();
  });

  test('rules.move and rules.add refuse positions outside the list instead of clamping them', async () => {
    const c = await h.login();
    await c.call(Methods.rulesAdd, {
      rule: { name: 'pos', direction: 'outgoing', protocol: 'tcp', remotePorts: 8, action: 'allow' },
    });
    const n = (await c.call(Methods.rulesList, { internal: false })).rules.length;
    await assert.rejects(
      c.call(Methods.rulesMove, { name: 'pos', position: n + 5 }),
      (e: Error & { code?: string }) => {
        assert.equal(e.code, 'WARDEN_E_PARAMS_INVALID');
        assert.match(e.message, new RegExp(`valid positions are 1\\.\\.${n}\\b`));
        return true;
      },
    );
    const rule = { name: 'far', direction: 'outgoing', protocol: 'tcp', remotePorts: 9, action: 'allow' };
    await assert.rejects(c.call(Methods.rulesAdd, { rule, position: n + 1 }), {
      code: 'WARDEN_E_PARAMS_INVALID',
    });
    assert.equal((await c.call(Methods.rulesList, { internal: false })).rules.length, n);
    const at = await c.call(Methods.rulesAdd, { rule, position: n });
    assert.equal(at.position, n);
    await c.call(Methods.rulesRemove, { name: 'far' });
    await c.call(Methods.rulesRemove, { name: 'pos' });
  });

  test('firewall.hints gives ready rules for both situations', async () => {
    const c = await h.login('bob');
    const hints = (await c.call(Methods.hints, {})) as {
      situations: { id: string; rules: { nftables: string } }[];
    };
    assert.deepEqual(hints.situations.map((s) => s.id).sort(), [
      'console-behind-firewall',
      'engine-behind-firewall',
    ]);
    // The port the engine serves (here an ephemeral one, as wardend --port gives), not the settings' 44334.
    assert.ok(h.server.port !== 44334);
    assert.ok(hints.situations.every((s) => s.rules.nftables.includes(String(h.server.port))));
    assert.equal((await c.call(Methods.status, {})).applicationPort, h.server.port);
    c.close();
  });

  test('settings are validated with the settings schema', async () => {
    const c = await h.login();
    await assert.rejects(c.call(Methods.settingsSet, { settings: { syslog: { port: 70000 } } }), {
      code: 'WARDEN_E_SETTINGS_INVALID',
    });
    const r = await c.call(Methods.settingsSet, {
      settings: { syslog: { enabled: true, host: '192.0.2.1' } },
    });
    assert.equal((r.settings.syslog as { port: number }).port, 514);
    c.close();
  });

  test('log items arrive over UDP after registration, numbered and in order', async () => {
    const c = await h.login();
    const got: LogItem[] = [];
    const f = await c.follow((items) => got.push(...items));
    await until(() => f.transport === 'udp', 3000, 'UDP transport');
    const first = h.logs.lastSeq + 1;
    for (let i = 0; i < 300; i++)
      h.logs.append({ kind: 'connection', verdict: 'deny', message: `item ${i}` });
    await until(() => got.length === 300, 3000, '300 items');
    assert.deepEqual(
      got.map((i) => i.seq),
      Array.from({ length: 300 }, (_, i) => first + i),
    );
    assert.ok(f.counters.udpDatagrams > 1);
    assert.equal(f.counters.tcpBatches, 0);
    c.close();
  });

  test('datagrams dropped on the way are recovered by backfill over TCP', async () => {
    const c = await h.login();
    const got: LogItem[] = [];
    const f = await c.follow((items) => got.push(...items), { dropDatagram: (n) => n > 1 && n % 3 === 0 });
    await until(() => f.transport === 'udp', 3000, 'UDP transport');
    for (let i = 0; i < 500; i++)
      h.logs.append({ kind: 'connection', verdict: 'allow', message: `x${i} ${'y'.repeat(100)}` });
    await until(() => got.length === 500, 5000, '500 items');
    const seqs = got.map((i) => i.seq);
    assert.deepEqual(
      seqs,
      [...seqs].sort((a, b) => a - b),
    );
    assert.ok(f.counters.backfilled > 0, 'some items came by backfill');
    assert.equal(f.counters.lost, 0);
    c.close();
  });

  test('when the TCP connection ends, UDP from the same port is ignored', async () => {
    const c = await h.login();
    const login = c.session!;
    const udp = createSocket('udp4');
    await new Promise<void>((r) => udp.bind(0, '127.0.0.1', () => r()));
    const send = (seq: bigint) =>
      new Promise<void>((r) =>
        udp.send(
          sealDatagram(
            DatagramType.REGISTER,
            Buffer.from(login.connectionId, 'hex'),
            seq,
            Buffer.from(login.udpKey, 'base64'),
            Buffer.from('{}'),
          ),
          h.server.port,
          '127.0.0.1',
          () => r(),
        ),
      );
    let acks = 0;
    udp.on('message', () => acks++);
    await send(1n);
    await until(() => acks === 1, 2000, 'acknowledgement');
    const before = h.server.udpCounters;
    const consoles = h.server.consoles;
    c.close();
    await until(() => h.server.consoles === consoles - 1, 2000, 'session dropped');
    await send(2n);
    await until(
      () => h.server.udpCounters.unknownConnection === before.unknownConnection + 1,
      2000,
      'datagram counted',
    );
    await new Promise((r) => setTimeout(r, 100));
    assert.equal(acks, 1, 'no answer after the TCP connection ended');
    udp.close();
  });

  test('forged and replayed datagrams are ignored, counted and never answered', async () => {
    const c = await h.login();
    const login = c.session!;
    const id = Buffer.from(login.connectionId, 'hex');
    const key = Buffer.from(login.udpKey, 'base64');
    const udp = createSocket('udp4');
    await new Promise<void>((r) => udp.bind(0, '127.0.0.1', () => r()));
    let answers = 0;
    udp.on('message', () => answers++);
    const send = (d: Buffer) => new Promise<void>((r) => udp.send(d, h.server.port, '127.0.0.1', () => r()));
    const start = h.server.udpCounters;
    const good = sealDatagram(DatagramType.REGISTER, id, 7n, key, Buffer.from('{}'));
    await send(good);
    await until(() => answers === 1, 2000, 'acknowledgement');
    await send(good); // replay
    await send(sealDatagram(DatagramType.REGISTER, id, 8n, Buffer.alloc(32, 1), Buffer.from('{}'))); // wrong key
    const tampered = Buffer.from(sealDatagram(DatagramType.REGISTER, id, 9n, key, Buffer.from('{}')));
    tampered[tampered.length - 1]! ^= 1;
    await send(tampered);
    await send(Buffer.from('hello')); // not ours at all
    await until(
      () => {
        const n = h.server.udpCounters;
        return (
          n.replayed === start.replayed + 1 &&
          n.forged === start.forged + 2 &&
          n.malformed === start.malformed + 1
        );
      },
      2000,
      'counters',
    );
    await new Promise((r) => setTimeout(r, 100));
    assert.equal(answers, 1);
    udp.close();
    c.close();
  });

  test('a changed engine certificate is refused', async () => {
    const other = fixtureIdentity('other');
    await assert.rejects(h.connect({ fingerprint: other.fingerprint }), {
      code: 'WARDEN_E_FINGERPRINT_MISMATCH',
    });
  });

  test('when UDP does not get through, log items come over TCP and the console knows', async () => {
    const c = await h.login();
    const got: LogItem[] = [];
    const f = await c.follow((items) => got.push(...items), {
      dropDatagram: () => true,
      udpAckTimeoutMs: 200,
    });
    await until(() => f.transport === 'tcp', 3000, 'TCP fallback');
    for (let i = 0; i < 50; i++) h.logs.append({ kind: 'system', message: `fallback ${i}` });
    await until(() => got.length === 50, 3000, '50 items over TCP');
    assert.ok(f.counters.tcpBatches > 0);
    c.close();
  });

  test('without any UDP registration the engine falls back to TCP by itself', async () => {
    const c = await h.login();
    const transports: string[] = [];
    c.onTransport((t) => transports.push(t));
    await c.call(Methods.logsSubscribe, {});
    await until(() => transports.includes('tcp'), 3000, 'engine-side fallback');
    c.close();
  });

  test('malformed frames get JSON-RPC errors and the connection survives', async () => {
    const r = await rawConnection(h.server.port);
    r.socket.write(encodeFrame('this is not json'));
    r.socket.write(encodeFrame(JSON.stringify({ hello: 'world' })));
    r.socket.write(encodeFrame(JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'no.such.method' })));
    r.socket.write(
      encodeFrame(JSON.stringify({ jsonrpc: '2.0', id: 2, method: 'session.login', params: { user: 42 } })),
    );
    await until(() => r.frames.length === 4, 2000, 'four answers');
    const codes = (r.frames as { error: { code: number } }[]).map((f) => f.error.code);
    assert.deepEqual(codes, [-32700, -32600, -32601, -32602]);
    assert.equal(r.isClosed(), false);
    r.socket.destroy();
  });

  test('an oversized frame is refused and the connection closed', async () => {
    const r = await rawConnection(h.server.port);
    const head = Buffer.alloc(4);
    head.writeUInt32BE(50 * 1024 * 1024);
    r.socket.write(head);
    await until(() => r.isClosed(), 2000, 'connection closed');
    assert.equal((r.frames[0] as { error: { data: { code: string } } }).error.data.code, 'WARDEN_E_PROTOCOL');
  });
});

describe('administration protocol: timeouts and throttling', () => {
  test('a client that connects and never speaks is closed', async () => {
    const h = await startHarness({ loginTimeoutMs: 300 });
    try {
      const r = await rawConnection(h.server.port);
      await until(() => r.isClosed(), 3000, 'silent client closed');
    } finally {
      await h.close();
    }
  });

  test('failed logins are throttled per source with a growing delay; a success resets', async () => {
    let now = 1_000_000;
    const h = await startHarness({ throttle: new LoginThrottle({ now: () => now }) });
    try {
      const attempt = async (password: string) => {
        const c = await h.connect();
        try {
          await c.login({ user: 'alice', password });
          return 'ok';
        } catch (e) {
          return (
            (e as { code: string; retryAfterMs?: number }).code +
            ((e as { retryAfterMs?: number }).retryAfterMs
              ? `:${(e as { retryAfterMs: number }).retryAfterMs}`
              : '')
          );
        } finally {
          c.close();
        }
      };
      const results: string[] = [];
      // docs/protocol.md: "after the second failure" each attempt waits: the third is the first throttled.
      for (let i = 0; i < 3; i++) results.push(await attempt('wrong'));
      assert.deepEqual(results.slice(0, 2), ['WARDEN_E_AUTH_FAILED', 'WARDEN_E_AUTH_FAILED']);
      assert.match(results[2]!, /^WARDEN_E_AUTH_THROTTLED:\d+$/);
      const firstDelay = Number(results[2]!.split(':')[1]);
      // Even the right password waits until the delay has passed.
      assert.match(await attempt('correct horse battery'), /^WARDEN_E_AUTH_THROTTLED/);
      now += firstDelay;
      assert.equal(await attempt('wrong'), 'WARDEN_E_AUTH_FAILED');
      const second = await attempt('wrong');
      assert.ok(Number(second.split(':')[1]) > firstDelay, `delay grows: ${second} after ${firstDelay}`);
      now += 120_000;
      assert.equal(await attempt('correct horse battery'), 'ok');
      assert.equal(await attempt('wrong'), 'WARDEN_E_AUTH_FAILED');
      // Refusals are security items, at most one a second per source or user (the log store is not flooded).
      assert.ok(h.logs.query({ kind: 'security', text: 'too many failures', limit: 100 }).items.length >= 1);
    } finally {
      await h.close();
    }
  });

  test('remote administration disabled: only loopback may connect (the server checks too)', async () => {
    const h = await startHarness();
    try {
      assert.equal(h.config.settings().remoteAdministration.enabled, false);
      const c = await h.login();
      assert.equal((await c.call(Methods.status, {})).remoteAdministration, false);
      c.close();
    } finally {
      await h.close();
    }
  });
});
