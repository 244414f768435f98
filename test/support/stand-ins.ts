/**
 * Local stand-in servers for the auxiliary services' tests, on loopback only: an HTTPS server with
 * the test certificate (test/fixtures/tls, valid for localhost, 127.0.0.1 and ::1) that records
 * every request, and an HTTP proxy that opens CONNECT tunnels and records where they went.
 */
import { readFileSync } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import net from 'node:net';
import { join } from 'node:path';
import { repoRoot } from '../repo-root.js';

const tlsDir = join(repoRoot(import.meta.url), 'test/fixtures/tls');
/** PEM of the CA that signs the stand-in's certificate (self-signed: the certificate itself). */
export const TEST_CA_FILE = join(tlsDir, 'engine-cert.pem');
export const TEST_CA = readFileSync(TEST_CA_FILE);

export interface RecordedRequest {
  readonly method: string;
  readonly path: string;
  readonly body: string;
}

export interface HttpsStandIn {
  readonly requests: RecordedRequest[];
  /** https://127.0.0.1:PORT + path */
  url(path: string): string;
  close(): Promise<void>;
}

/** Answer of the stand-in for one request: status and a JSON body (or raw text). */
export type StandInAnswer = { status: number; json?: unknown; text?: string };

export async function startHttpsStandIn(
  answer: (req: RecordedRequest, index: number) => StandInAnswer,
): Promise<HttpsStandIn> {
  const requests: RecordedRequest[] = [];
  const server = https.createServer(
    { key: readFileSync(join(tlsDir, 'engine-key.pem')), cert: TEST_CA },
    (req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        const recorded = {
          method: req.method ?? '',
          path: req.url ?? '',
          body: Buffer.concat(chunks).toString(),
        };
        requests.push(recorded);
        const a = answer(recorded, requests.length - 1);
        const body = a.text ?? (a.json === undefined ? '' : JSON.stringify(a.json));
        res.writeHead(a.status, { 'content-type': 'application/json' });
        res.end(body);
      });
    },
  );
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as net.AddressInfo).port;
  return {
    requests,
    url: (path) => `https://127.0.0.1:${port}${path}`,
    close: () =>
      new Promise((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

export interface ProxyStandIn {
  /** "host:port" of every CONNECT tunnel asked for. */
  readonly tunnels: string[];
  readonly url: string;
  close(): Promise<void>;
}

/**
 * An HTTP proxy on 127.0.0.1 that serves CONNECT (tunnels to loopback targets only) and plain
 * absolute-URI requests to loopback http:// servers; `tunnels` records both ("GET http://..." for the latter).
 */
export async function startConnectProxy(options: { credentials?: string } = {}): Promise<ProxyStandIn> {
  const tunnels: string[] = [];
  const sockets = new Set<net.Socket>();
  const expected =
    options.credentials === undefined
      ? undefined
      : `Basic ${Buffer.from(options.credentials).toString('base64')}`;
  const allowed = (req: http.IncomingMessage) =>
    expected === undefined || req.headers['proxy-authorization'] === expected;
  const server = http.createServer((req, res) => {
    tunnels.push(`${req.method} ${req.url}`);
    if (!allowed(req)) {
      res.writeHead(407).end();
      return;
    }
    const target = new URL(req.url ?? '/', 'http://invalid');
    if (target.protocol !== 'http:' || target.hostname !== '127.0.0.1') {
      res.writeHead(403).end();
      return;
    }
    const upstream = http.request(
      {
        host: target.hostname,
        port: target.port,
        path: `${target.pathname}${target.search}`,
        method: req.method,
      },
      (answer) => {
        res.writeHead(answer.statusCode ?? 502, answer.headers);
        answer.pipe(res);
      },
    );
    upstream.on('error', () => res.writeHead(502).end());
    req.pipe(upstream);
  });
  server.on('connect', (req: http.IncomingMessage, client: net.Socket, head: Buffer) => {
    sockets.add(client);
    const authority = req.url ?? '';
    tunnels.push(authority);
    if (!allowed(req)) {
      client.end('HTTP/1.1 407 Proxy Authentication Required\r\n\r\n');
      return;
    }
    const m = /^\[?([^\]]+?)\]?:(\d+)$/.exec(authority);
    if (m === null || !['127.0.0.1', '::1', 'localhost'].includes(m[1]!)) {
      client.end('HTTP/1.1 403 Forbidden\r\n\r\n');
      return;
    }
    const upstream = net.connect(Number(m[2]), m[1]!, () => {
      client.write('HTTP/1.1 200 Connection Established\r\n\r\n');
      if (head.length > 0) upstream.write(head);
      upstream.pipe(client);
      client.pipe(upstream);
    });
    sockets.add(upstream);
    upstream.on('error', () => client.destroy());
    client.on('error', () => upstream.destroy());
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as net.AddressInfo).port;
  return {
    tunnels,
    url: `http://127.0.0.1:${port}`,
    close: () =>
      new Promise((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}

/** A TCP port that was free a moment ago (for settings that cannot say 0). */
export async function freePort(): Promise<number> {
  const s = net.createServer();
  await new Promise<void>((resolve) => s.listen(0, '127.0.0.1', resolve));
  const port = (s.address() as net.AddressInfo).port;
  await new Promise<void>((resolve) => s.close(() => resolve()));
  return port;
}

/** Waits until `check` returns a value (not undefined), polling; fails after `ms`. */
export async function eventually<T>(check: () => T | undefined, ms = 5000, what = 'condition'): Promise<T> {
  const until = Date.now() + ms;
  for (;;) {
    const v = check();
    if (v !== undefined) return v;
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}
