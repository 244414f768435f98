/** SyslogForwarder against Node stand-in receivers: UDP datagrams, octet-counted TCP (queue, drops, reconnect) and TLS. */
import assert from 'node:assert/strict';
import dgram from 'node:dgram';
import { readFileSync } from 'node:fs';
import net from 'node:net';
import { join } from 'node:path';
import { test } from 'node:test';
import tls from 'node:tls';
import { MemoryLogStore } from '../../src/admin/log-store.js';
import { forwardLogs, SYSLOG_SD_ID, SyslogForwarder } from '../../src/engine/syslog.js';
import type { LogItem } from '../../src/protocol/log-item.js';
import { repoRoot } from '../repo-root.js';
import { parseRfc5424, splitOctetFrames } from '../support/rfc5424.js';

const tlsDir = join(repoRoot(import.meta.url), 'test/fixtures/tls');

function item(seq: number, message = `item ${seq}`): LogItem {
  return { seq, time: new Date().toISOString(), kind: 'connection', verdict: 'allow', message };
}

async function until(cond: () => boolean, what: string, ms = 5000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** A stream receiver collecting octet-counted frames from every connection. */
async function streamReceiver(
  make: (onConn: (s: net.Socket) => void) => net.Server,
  port = 0,
): Promise<{ port: number; frames: string[]; close(): Promise<void> }> {
  const frames: string[] = [];
  const sockets = new Set<net.Socket>();
  const server = make((s) => {
    sockets.add(s);
    let buf: Buffer = Buffer.alloc(0);
    s.on('data', (d: Buffer) => {
      buf = Buffer.concat([buf, d]);
      const got = splitOctetFrames(buf);
      frames.push(...got.frames);
      buf = got.rest;
    });
    s.on('error', () => {});
    s.on('close', () => sockets.delete(s));
  });
  await new Promise<void>((r) => server.listen(port, '127.0.0.1', r));
  return {
    port: (server.address() as net.AddressInfo).port,
    frames,
    close: () =>
      new Promise<void>((r) => {
        for (const s of sockets) s.destroy();
        server.close(() => r());
      }),
  };
}

test('UDP: one RFC 5424 datagram per item, through forwardLogs on a log store', async () => {
  const server = dgram.createSocket('udp4');
  const got: string[] = [];
  server.on('message', (m) => got.push(m.toString('utf8')));
  await new Promise<void>((r) => server.bind(0, '127.0.0.1', r));
  const port = server.address().port;
  const store = new MemoryLogStore({ capacity: 10 });
  const f = forwardLogs(
    store,
    { syslog: { enabled: true, host: '127.0.0.1', port, transport: 'udp' } },
    { hostname: 'h1', procId: '9' },
  );
  try {
    store.append({ kind: 'connection', verdict: 'deny', remote: '10.0.0.1:443', message: 'one' });
    store.append({ kind: 'security', message: 'two ]"\\' });
    await until(() => got.length === 2, 'two datagrams');
    const [a, b] = got.map(parseRfc5424);
    assert.equal(a?.pri, 16 * 8 + 5);
    assert.equal(a?.hostname, 'h1');
    assert.deepEqual(a?.sd.get(SYSLOG_SD_ID), [
      ['seq', '1'],
      ['verdict', 'deny'],
      ['remote', '10.0.0.1:443'],
    ]);
    assert.equal(b?.msg, 'two ]"\\');
    assert.equal(f.forwarder?.stats().sent, 2);
  } finally {
    await f.stop();
    server.close();
  }
});

test('TCP: queues while the receiver is down (dropping the oldest), reconnects, sends octet-counted frames', async () => {
  // Find a free port, then leave it closed so the forwarder starts disconnected.
  const probe = await streamReceiver((c) => net.createServer(c));
  const port = probe.port;
  await probe.close();
  const fwd = new SyslogForwarder(
    { host: '127.0.0.1', port, transport: 'tcp' },
    { maxQueue: 3, minBackoffMs: 20, maxBackoffMs: 50 },
  );
  let receiver: Awaited<ReturnType<typeof streamReceiver>> | undefined;
  try {
    for (let i = 1; i <= 5; i++) fwd.send(item(i, `m${i} with\nnewline`));
    assert.equal(fwd.stats().dropped, 2);
    receiver = await streamReceiver((c) => net.createServer(c), port);
    await until(() => receiver!.frames.length === 3, 'the queued frames');
    assert.deepEqual(
      receiver.frames.map((f) => parseRfc5424(f).msg),
      ['m3 with\nnewline', 'm4 with\nnewline', 'm5 with\nnewline'],
    );
    fwd.send(item(6));
    await until(() => receiver!.frames.length === 4, 'a live frame');
    // The receiver goes away and comes back: the forwarder reconnects by itself.
    await receiver.close();
    await until(() => !fwd.connected, 'the disconnect');
    receiver = await streamReceiver((c) => net.createServer(c), port);
    fwd.send(item(7));
    await until(() => receiver!.frames.length === 1, 'a frame after reconnecting');
    assert.equal(parseRfc5424(receiver.frames[0]!).msg, 'item 7');
    assert.ok(fwd.stats().errors >= 1);
  } finally {
    await fwd.close();
    await receiver?.close();
  }
});

test('TLS: octet-counted frames to a receiver whose certificate is checked against the given CA', async () => {
  const key = readFileSync(join(tlsDir, 'engine-key.pem'));
  const cert = readFileSync(join(tlsDir, 'engine-cert.pem'));
  const receiver = await streamReceiver((c) => tls.createServer({ key, cert }, c));
  const fwd = new SyslogForwarder(
    { host: '127.0.0.1', port: receiver.port, transport: 'tls' },
    { ca: join(tlsDir, 'engine-cert.pem'), minBackoffMs: 20 },
  );
  try {
    fwd.send(item(1, 'über TLS'));
    fwd.send(item(2));
    await until(() => receiver.frames.length === 2, 'two TLS frames');
    assert.deepEqual(
      receiver.frames.map((f) => parseRfc5424(f).msg),
      ['über TLS', 'item 2'],
    );
  } finally {
    await fwd.close();
    await receiver.close();
  }
});

test('TLS: a receiver with an untrusted certificate gets nothing', async () => {
  const key = readFileSync(join(tlsDir, 'engine-key.pem'));
  const cert = readFileSync(join(tlsDir, 'engine-cert.pem'));
  const receiver = await streamReceiver((c) => tls.createServer({ key, cert }, c));
  const untrusted = new SyslogForwarder(
    { host: '127.0.0.1', port: receiver.port, transport: 'tls' },
    { ca: join(tlsDir, 'other-cert.pem'), minBackoffMs: 20 },
  );
  const system = new SyslogForwarder(
    { host: '127.0.0.1', port: receiver.port, transport: 'tls' },
    { minBackoffMs: 20 },
  );
  try {
    untrusted.send(item(1));
    system.send(item(1));
    await until(() => untrusted.stats().errors >= 2 && system.stats().errors >= 2, 'failed handshakes');
    assert.equal(receiver.frames.length, 0);
    assert.equal(untrusted.connected || system.connected, false);
    assert.match(untrusted.stats().lastError ?? '', /certificate/i);
  } finally {
    await untrusted.close();
    await system.close();
    await receiver.close();
  }
});
