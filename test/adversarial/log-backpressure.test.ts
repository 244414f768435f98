/**
 * A console that stops reading (issue 11 item 15): log items pushed over TCP respect backpressure.
 * The engine keeps at most about 1 MiB waiting for such a console, drops what does not fit, and once
 * the console reads again tells it the newest sequence number so it fetches the gap over TCP.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { connect as tlsConnect } from 'node:tls';
import { WardenMetrics } from '../../src/metrics/warden.js';
import { encodeFrame, FrameDecoder } from '../../src/protocol/frame.js';
import { startHarness } from '../integration/admin-harness.js';

test('a console that stops reading does not grow the engine memory; it is told of the gap and can fetch it', async () => {
  const h = await startHarness();
  try {
    const socket = tlsConnect({ port: h.server.port, host: '127.0.0.1', rejectUnauthorized: false });
    socket.on('error', () => {});
    await new Promise((r) => socket.once('secureConnect', r));
    const decoder = new FrameDecoder({ maxFrameBytes: 64 * 1024 * 1024 });
    const answers = new Map<number, unknown>();
    const pushed: { items: { seq: number }[]; lastSeq?: number }[] = [];
    socket.on('data', (chunk: Buffer) => {
      for (const f of decoder.push(chunk)) {
        const m = JSON.parse(f.toString('utf8')) as {
          id?: number;
          method?: string;
          params?: unknown;
          result?: unknown;
        };
        if (m.id !== undefined) answers.set(m.id, m.result ?? m);
        else if (m.method === 'logs.items') pushed.push(m.params as (typeof pushed)[number]);
      }
    });
    let id = 0;
    const call = async (method: string, params: unknown) => {
      const mine = ++id;
      socket.write(encodeFrame(JSON.stringify({ jsonrpc: '2.0', id: mine, method, params })));
      while (!answers.has(mine)) await new Promise((r) => setTimeout(r, 5));
      return answers.get(mine);
    };
    await call('session.login', { localToken: 'local-token-for-tests' });
    await call('logs.transport', { udpReceiving: false });
    const sub = (await call('logs.subscribe', {})) as { lastSeq: number };
    // The console stops reading.
    socket.pause();
    const before = process.memoryUsage().rss;
    const text = 'x'.repeat(1000);
    let peak = 0;
    const total = 30_000; // about 32 MB of log items
    for (let i = 0; i < total; i += 500) {
      for (let j = 0; j < 500; j++) h.logs.append({ kind: 'system', message: `item ${i + j} ${text}` });
      await new Promise((r) => setImmediate(r));
      await new Promise((r) => setImmediate(r));
      peak = Math.max(peak, h.server.backlogBytes);
    }
    const grown = process.memoryUsage().rss - before;
    assert.ok(
      peak < 3 * 1024 * 1024,
      `the engine kept ${peak} bytes for a console that reads nothing (RSS grew ${grown} bytes)`,
    );
    // The console reads again: what was pushed, then an empty batch with the newest sequence number.
    socket.resume();
    const last = sub.lastSeq + total;
    const end = Date.now() + 15_000;
    while (!pushed.some((p) => p.lastSeq === last) && Date.now() < end)
      await new Promise((r) => setTimeout(r, 20));
    const got = pushed.flatMap((p) => p.items.map((i) => i.seq));
    assert.ok(got.length < total, `${got.length} of ${total} items were pushed: some must have been dropped`);
    assert.ok(
      pushed.some((p) => p.items.length === 0 && p.lastSeq === last),
      'the console is told the newest sequence number after the gap',
    );
    // The gap can be fetched over TCP.
    const missing = got.length > 0 ? got[got.length - 1]! + 1 : sub.lastSeq + 1;
    const fetched = (await call('logs.query', { fromSeq: missing, limit: 10 })) as {
      items: { seq: number }[];
    };
    assert.equal(fetched.items[0]?.seq, missing);
    socket.destroy();
  } finally {
    await h.close();
  }
});

test('the console fills every gap the engine leaves: a follower over TCP gets every item in order though the pushes are dropped', async () => {
  // A backlog limit of 0 bytes: every push is dropped, and the console is told the newest sequence number.
  const metrics = new WardenMetrics();
  const h = await startHarness({ maxPushBacklogBytes: 0, metrics });
  try {
    const c = await h.login('alice');
    const got: number[] = [];
    await c.follow((items) => got.push(...items.map((i) => i.seq)), { udp: false });
    const first = h.logs.lastSeq + 1;
    for (let i = 0; i < 40; i++) {
      for (let j = 0; j < 100; j++)
        h.logs.append({ kind: 'system', message: `item ${i} ${j} ${'y'.repeat(300)}` });
      await new Promise((r) => setImmediate(r));
    }
    await new Promise((r) => setTimeout(r, 200));
    h.logs.append({ kind: 'system', message: 'the last one' });
    const last = h.logs.lastSeq;
    const end = Date.now() + 15_000;
    while (got.at(-1) !== last && Date.now() < end) await new Promise((r) => setTimeout(r, 20));
    const mine = got.filter((s) => s >= first);
    assert.equal(mine.length, last - first + 1, `${mine.length} of ${last - first + 1} items delivered`);
    assert.ok(metrics.logItemsLost.value > 0, 'pushes were dropped');
    assert.ok(metrics.logItemsBackfilled.value > 0, 'the console fetched them');
    assert.deepEqual(
      mine,
      Array.from({ length: last - first + 1 }, (_, i) => first + i),
    );
  } finally {
    await h.close();
  }
});

test('a client that pipelines requests and never reads the answers does not grow the engine memory', async () => {
  const h = await startHarness();
  try {
    const socket = tlsConnect({ port: h.server.port, host: '127.0.0.1', rejectUnauthorized: false });
    socket.on('error', () => {});
    await new Promise((r) => socket.once('secureConnect', r));
    socket.pause(); // never reads
    const request = encodeFrame(
      JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'session.whoami', params: {} }),
    );
    const batch = Buffer.concat(Array.from({ length: 1000 }, () => request));
    let peak = 0;
    let sent = 0;
    const end = Date.now() + 4000;
    while (Date.now() < end && sent < 150_000_000) {
      // When the engine stops reading, this side's buffer fills: wait a little, then try again.
      if (!socket.write(batch)) await new Promise((r) => setTimeout(r, 20));
      sent += batch.length;
      peak = Math.max(peak, h.server.backlogBytes);
      await new Promise((r) => setImmediate(r));
    }
    peak = Math.max(peak, h.server.backlogBytes);
    assert.ok(
      peak < 10 * 1024 * 1024,
      `${peak} bytes of answers waiting in the engine after ${sent} bytes of requests`,
    );
    socket.destroy();
  } finally {
    await h.close();
  }
});
