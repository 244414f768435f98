/**
 * Attacks on every listener of a real engine process (issue 11 items 5 and 8, and the listener fuzz):
 * the administration port (TLS over TCP, and UDP), the blocked pop-up port and the metrics port.
 * A local user (nobody) floods them with connect-then-RST, random bytes, half-open connections and
 * partial frames; connections that never finish TLS, send part of a ClientHello, or call methods
 * without a login are closed in bounded time; one source cannot hold more than its share of
 * connections. Afterwards the engine still runs, wrote no crash report, and answers a real console.
 */
import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { afterEach, beforeEach, describe, test } from 'node:test';
import { connect as tlsConnect } from 'node:tls';
import { encodeFrame } from '../../src/protocol/frame.js';
import { Methods } from '../../src/protocol/methods.js';
import { startHarness } from '../integration/admin-harness.js';
import { ATTACKER } from './attacker.js';
import { type EngineProcess, runAsNobody, startEngine } from './engine-process.js';

/** Opens a TCP connection from `localAddress` and records when it closes. */
function opened(
  port: number,
  localAddress: string,
  write?: Buffer,
): Promise<{ socket: Socket; openedAt: number; closedAt: () => number | undefined }> {
  return new Promise((resolve, reject) => {
    let closedAt: number | undefined;
    const socket = connect({ port, host: '127.0.0.1', localAddress });
    socket.on('error', () => {});
    socket.on('close', () => {
      closedAt = Date.now();
    });
    socket.once('connect', () => {
      if (write) socket.write(write);
      resolve({ socket, openedAt: Date.now(), closedAt: () => closedAt });
    });
    socket.once('error', reject);
  });
}

async function engineAnswers(engine: EngineProcess): Promise<void> {
  assert.ok(engine.alive(), `the engine stopped:\n${engine.output()}`);
  const c = await engine.console();
  try {
    const status = await c.call(Methods.status, {});
    assert.equal(typeof status.version, 'string');
  } finally {
    c.close();
  }
  assert.deepEqual(engine.crashReports(), [], 'no crash report');
}

describe('every listener survives a local attacker, and slow or silent connections are closed in time', () => {
  // Each attack gets an engine of its own, so each shows its own fault.
  let engine: EngineProcess;

  beforeEach(async () => {
    engine = await startEngine();
  });

  afterEach(async () => {
    await engine?.stop();
    if (engine) rmSync(engine.dir, { recursive: true, force: true });
  });

  test('connect-then-RST floods (SO_LINGER 0, as nmap -sT) on the pop-up, admin and metrics ports do not stop the engine', async () => {
    const done = (await runAsNobody(ATTACKER, {
      resets: { ports: [engine.popupPort, engine.port, engine.metricsPort], count: 400 },
    })) as { connections: number; resets: number };
    assert.ok(done.resets >= 600, `resets sent: ${JSON.stringify(done)}`);
    await new Promise((r) => setTimeout(r, 300));
    await engineAnswers(engine);
  });

  test('a connection that never speaks, sends part of a ClientHello, or calls methods without a login is closed within the 10 s deadline; so are silent and half-sent metrics requests and pop-up reports', async () => {
    const start = Date.now();
    // Each connection's life is measured from its own connect (the engine's deadline runs from its
    // accept): opening the fifty of them one after another takes seconds on a loaded machine.
    const conns: { what: string; openedAt: number; closedAt: () => number | undefined }[] = [];
    for (let i = 0; i < 20; i++) conns.push({ what: 'silent', ...(await opened(engine.port, '127.0.0.10')) });
    // A TLS record header announcing a 512-byte handshake message, and only part of it.
    const partialHello = Buffer.concat([
      Buffer.from([0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xfc]),
      Buffer.alloc(40, 3),
    ]);
    for (let i = 0; i < 20; i++)
      conns.push({ what: 'partial ClientHello', ...(await opened(engine.port, '127.0.0.11', partialHello)) });
    for (let i = 0; i < 5; i++)
      conns.push({ what: 'silent metrics', ...(await opened(engine.metricsPort, '127.0.0.12')) });
    for (let i = 0; i < 5; i++)
      conns.push({
        what: 'half a metrics request',
        ...(await opened(
          engine.metricsPort,
          '127.0.0.12',
          Buffer.from('GET /metrics HTTP/1.1\r\nHost: x\r\n'),
        )),
      });
    for (let i = 0; i < 5; i++)
      conns.push({ what: 'silent pop-up', ...(await opened(engine.popupPort, '127.0.0.14')) });
    for (let i = 0; i < 5; i++)
      conns.push({
        what: 'half a pop-up report',
        ...(await opened(engine.popupPort, '127.0.0.14', Buffer.from('{"application":"x",'))),
      });
    // Unauthenticated calls every 2 s must not extend the login deadline.
    const chatty: { openedAt: number; closedAt: () => number | undefined; timer: NodeJS.Timeout }[] = [];
    for (let i = 0; i < 3; i++) {
      let closedAt: number | undefined;
      const raw = await opened(engine.port, '127.0.0.13');
      const s = tlsConnect({ socket: raw.socket, rejectUnauthorized: false });
      s.on('error', () => {});
      s.on('close', () => {
        closedAt = Date.now();
      });
      await new Promise((r) => s.once('secureConnect', r));
      let id = 1;
      const call = () =>
        s.write(
          encodeFrame(JSON.stringify({ jsonrpc: '2.0', id: id++, method: 'session.whoami', params: {} })),
        );
      call();
      const timer = setInterval(call, 2000);
      chatty.push({ openedAt: raw.openedAt, closedAt: () => closedAt, timer });
    }
    const all = [
      ...conns,
      ...chatty.map((c) => ({ what: 'whoami without login', openedAt: c.openedAt, closedAt: c.closedAt })),
    ];
    const end = start + 25_000;
    while (all.some((c) => c.closedAt() === undefined) && Date.now() < end)
      await new Promise((r) => setTimeout(r, 200));
    for (const c of chatty) clearInterval(c.timer);
    const open = all.filter((c) => c.closedAt() === undefined).map((c) => c.what);
    assert.deepEqual(open, [], `still open after ${Date.now() - start} ms`);
    const admin = all.filter((c) => !c.what.includes('metrics'));
    const slowest = Math.max(...admin.map((c) => c.closedAt()! - c.openedAt));
    assert.ok(slowest < 13_000, `an admin connection lived ${slowest} ms (deadline 10 s from accept)`);
    const slowestMetrics = Math.max(
      ...all.filter((c) => c.what.includes('metrics')).map((c) => c.closedAt()! - c.openedAt),
    );
    assert.ok(slowestMetrics < 22_000, `a metrics connection lived ${slowestMetrics} ms`);
    for (const s of conns) (s as unknown as { socket?: Socket }).socket?.destroy();
    await engineAnswers(engine);
  });

  test('one source holds at most 32 connections to the admin port; another source still gets in', async () => {
    const conns = await Promise.all(Array.from({ length: 45 }, () => opened(engine.port, '127.0.0.20')));
    await new Promise((r) => setTimeout(r, 500));
    const closed = conns.filter((c) => c.closedAt() !== undefined).length;
    assert.ok(closed >= 13, `${closed} of 45 connections from one source were closed at once`);
    await engineAnswers(engine); // from 127.0.0.1, another source
    for (const c of conns) c.socket.destroy();
  });

  test('fuzz as nobody: random bytes, resets, half-open connections, partial frames and random datagrams on every listener', async () => {
    const done = (await runAsNobody(ATTACKER, {
      fuzz: { ports: [engine.port, engine.popupPort, engine.metricsPort], count: 200 },
      partialFrames: { port: engine.port, count: 20 },
      udp: { port: engine.port, count: 3000 },
    })) as { connections: number; datagrams: number };
    assert.ok(done.connections >= 500 && done.datagrams === 3000, JSON.stringify(done));
    await new Promise((r) => setTimeout(r, 300));
    await engineAnswers(engine);
    // The engine still follows its log for a console after all this.
    const c = await engine.console();
    try {
      const items = await c.call(Methods.logsQuery, { limit: 5 });
      assert.ok(items.items.length > 0);
    } finally {
      c.close();
    }
  });
});

describe('partial frames are bounded in size and time', () => {
  test('before login a frame over 16 KiB is refused at once; a logged-in console that leaves a frame unfinished is closed', async () => {
    const h = await startHarness({ partialFrameTimeoutMs: 1000 });
    try {
      const tlsTo = async () => {
        const s = tlsConnect({ port: h.server.port, host: '127.0.0.1', rejectUnauthorized: false });
        s.on('error', () => {});
        let closedAt: number | undefined;
        s.on('close', () => {
          closedAt = Date.now();
        });
        await new Promise((r) => s.once('secureConnect', r));
        s.resume(); // reads (and drops) the answers, so the engine's end of the connection is seen
        return { s, closedAt: () => closedAt };
      };
      const waitClosed = async (c: { closedAt: () => number | undefined }, ms: number) => {
        const end = Date.now() + ms;
        while (c.closedAt() === undefined && Date.now() < end) await new Promise((r) => setTimeout(r, 20));
        return c.closedAt() !== undefined;
      };
      const big = await tlsTo();
      const head = Buffer.alloc(4);
      head.writeUInt32BE(1024 * 1024);
      big.s.write(Buffer.concat([head, Buffer.alloc(1000, 0x20)]));
      assert.ok(
        await waitClosed(big, 2000),
        'a 1 MiB frame before login is refused and the connection closed',
      );

      const slow = await tlsTo();
      slow.s.write(
        encodeFrame(
          JSON.stringify({
            jsonrpc: '2.0',
            id: 1,
            method: 'session.login',
            params: { localToken: 'local-token-for-tests' },
          }),
        ),
      );
      await new Promise((r) => setTimeout(r, 300));
      head.writeUInt32BE(100);
      slow.s.write(Buffer.concat([head, Buffer.alloc(10, 0x20)]));
      const sent = Date.now();
      assert.ok(await waitClosed(slow, 5000), 'an unfinished frame is not held for ever');
      assert.ok(slow.closedAt()! - sent >= 900, 'not before the partial-frame timeout');
    } finally {
      await h.close();
    }
  });
});
