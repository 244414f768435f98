import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { RemoteSource } from './remote-source.js';

const dir = mkdtempSync(join(tmpdir(), 'warden-remote-source-'));
after(() => rmSync(dir, { recursive: true, force: true }));

/** A server answering whatever `body` is at the time. */
async function server(): Promise<{ url: string; set(b: Buffer): void; close(): Promise<void> }> {
  let body: Buffer = Buffer.alloc(0);
  const s = http.createServer((_req, res) => res.end(body));
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  return {
    url: `http://127.0.0.1:${(s.address() as AddressInfo).port}/list.txt`,
    set: (b) => {
      body = b;
    },
    close: () => new Promise((r) => s.close(() => r())),
  };
}

test('a URL text is streamed to disk: the copy is the bytes served, a refused or oversized one leaves no trace', async () => {
  const srv = await server();
  const stateDir = join(dir, 'state');
  const values: Buffer[] = [];
  const warnings: string[] = [];
  // Not UTF-8 (0xff), several MiB: the copy must be byte for byte what was served.
  const first = Buffer.concat(
    Array.from({ length: 48 }, (_, i) =>
      Buffer.from([...Buffer.from(`line ${i} `), 0xff, 0x0a, ...Buffer.alloc(65536, 0x61), 0x0a]),
    ),
  );
  srv.set(first);
  const source = new RemoteSource<Buffer>({
    name: 'list-big.one',
    origin: { url: srv.url, refreshSeconds: 3600 },
    maxBytes: 4 << 20,
    stateDir,
    route: () => ({ kind: 'direct', because: 'test' }),
    reader: () => {
      const chunks: Buffer[] = [];
      return {
        push: (c) => chunks.push(c),
        end: () => {
          const all = Buffer.concat(chunks);
          if (all.includes('refuse me')) throw new Error('refused by the reader');
          return all;
        },
      };
    },
    onValue: (v) => values.push(v),
    log: (level, message) => {
      if (level !== 'info') warnings.push(message);
    },
  });
  const parts = () => readdirSync(stateDir).filter((f) => f.endsWith('.part'));
  try {
    await source.reread();
    assert.equal(values.length, 1, warnings.join('; '));
    assert.deepEqual(values[0]!.subarray(0, first.length), first);
    assert.deepEqual(readFileSync(join(stateDir, 'list-big.one.txt')), first);
    assert.equal(source.state().copy, 'network');
    assert.deepEqual(parts(), []);

    // The same text again: nothing new is taken.
    await source.reread();
    assert.equal(values.length, 1);

    // Refused by the reader: the copy in force stays, nothing is left behind.
    srv.set(Buffer.from('refuse me\n'));
    await source.reread();
    assert.equal(values.length, 1);
    assert.match(source.state().lastError ?? '', /refused by the reader/);
    assert.deepEqual(readFileSync(join(stateDir, 'list-big.one.txt')), first);
    assert.deepEqual(parts(), []);

    // Past the bound: refused while it streams.
    srv.set(Buffer.alloc((4 << 20) + 1, 0x62));
    await source.reread();
    assert.equal(values.length, 1);
    assert.match(source.state().lastError ?? '', /larger than/);
    assert.deepEqual(readFileSync(join(stateDir, 'list-big.one.txt')), first);
    assert.deepEqual(parts(), []);
  } finally {
    source.stop();
    await srv.close();
  }
});

test('an HTTP error is quoted short and escaped, without reading a huge body; a subscription with thousands of errors is named by its first few', async () => {
  let body = Buffer.alloc(0);
  let status = 500;
  let sent = 0;
  const s = http.createServer((_req, res) => {
    res.statusCode = status;
    // 64 MiB offered: the client must stop reading early.
    if (status !== 200) {
      const chunk = Buffer.from(`\x1b[2J\nFAKE LOG LINE ${'x'.repeat(65536)}`);
      const write = () => {
        while (sent < 64 << 20) {
          sent += chunk.length;
          if (!res.write(chunk)) return void res.once('drain', write);
        }
        res.end();
      };
      res.on('error', () => {});
      write();
    } else res.end(body);
  });
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const url = `http://127.0.0.1:${(s.address() as AddressInfo).port}/x`;
  const source = new RemoteSource<string>({
    name: 'list-errors',
    origin: { url, refreshSeconds: 3600 },
    maxBytes: 128 << 20,
    stateDir: join(dir, 'state2'),
    route: () => ({ kind: 'direct', because: 'test' }),
    reader: () => {
      const chunks: Buffer[] = [];
      return {
        push: (c) => chunks.push(c),
        end: () => {
          throw new Error(`refused: ${Array.from({ length: 5000 }, (_, i) => `problem ${i}`).join('; ')}`);
        },
      };
    },
    onValue: () => {},
    log: () => {},
  });
  try {
    await source.reread();
    const error = source.state().lastError ?? '';
    assert.match(error, /HTTP 500/);
    assert.ok(!error.includes('\u001b') && !error.includes('\n'), error.slice(0, 80));
    assert.ok(error.length <= 1001, `${error.length} characters`);
    assert.ok(sent < 32 << 20, `the client read ${sent} bytes of the error body`);

    status = 200;
    body = Buffer.from('anything\n');
    await source.reread();
    assert.ok((source.state().lastError ?? '').length <= 1001);
  } finally {
    source.stop();
    s.closeAllConnections();
    await new Promise((r) => s.close(r));
  }
});
