/**
 * `warden console`'s local web server: serves the built front end (dist/web)
 * and one WebSocket per page that goes to a Bridge. It listens on 127.0.0.1
 * only, and every request needs the random access token printed with the URL
 * (the first visit trades ?token= for an HttpOnly cookie). Host and Origin are
 * checked so that a web site resolving its own name to 127.0.0.1 (DNS
 * rebinding) or a page of another origin cannot use the console.
 */
import { randomBytes, timingSafeEqual } from 'node:crypto';
import { readFile, stat } from 'node:fs/promises';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { extname, join, normalize, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import { WebSocketServer } from 'ws';
import { defaultKnownHostsPath, KnownHosts } from '../../client/known-hosts.js';
import { EngineList } from '../engines.js';
import { Bridge } from './bridge.js';

export interface ConsoleServerOptions {
  /** TCP port on 127.0.0.1; 0 picks a free one. */
  readonly port?: number;
  /** The access token (default: 32 random bytes, hex). */
  readonly token?: string;
  /** The built front end (default: dist/web next to the compiled console). */
  readonly staticDir?: string;
  /** The engines file and known-hosts file (defaults: the console's own, as the CLI uses). */
  readonly enginesPath?: string;
  readonly knownHostsPath?: string;
  readonly localTokenPath?: string;
  /** How long the engine sessions of a page that went away wait for its reload (default 60 s; tests shorten it). */
  readonly parkMs?: number;
}

export interface ConsoleServer {
  readonly port: number;
  readonly token: string;
  /** The URL to open, token included. */
  readonly url: string;
  close(): Promise<void>;
}

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.json': 'application/json',
  '.ico': 'image/x-icon',
};

/** dist/src/console/web/server.js -> dist/web */
function defaultStaticDir(): string {
  return resolve(fileURLToPath(new URL('.', import.meta.url)), '../../../web');
}

/** How long a page's engine sessions wait for the page to come back (a reload), and how many may wait. */
const PARK_MS = 60_000;
const MAX_PARKED = 8;

const newTicket = () => randomBytes(32).toString('hex');

/** `{id, op: "resume", ticket}`: the first message of a page, with the ticket its previous load was given ("" for none). */
function resumeRequest(text: string): { id: number; ticket: string } | undefined {
  if (!text.includes('"resume"')) return undefined;
  try {
    const m = JSON.parse(text) as { id?: unknown; op?: unknown; ticket?: unknown };
    if (m.op !== 'resume' || typeof m.id !== 'number') return undefined;
    return { id: m.id, ticket: typeof m.ticket === 'string' ? m.ticket : '' };
  } catch {
    return undefined;
  }
}

function sameSecret(a: string | undefined, b: string): boolean {
  if (a === undefined) return false;
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

function cookieOf(req: IncomingMessage, name: string): string | undefined {
  for (const part of (req.headers.cookie ?? '').split(';')) {
    const [k, ...v] = part.trim().split('=');
    if (k === name) return v.join('=');
  }
  return undefined;
}

/** Starts the console's web server on 127.0.0.1. */
export async function startConsoleServer(options: ConsoleServerOptions = {}): Promise<ConsoleServer> {
  const token = options.token ?? randomBytes(32).toString('hex');
  const staticDir = options.staticDir ?? defaultStaticDir();
  const enginesPath = options.enginesPath;
  const knownHostsPath = options.knownHostsPath ?? defaultKnownHostsPath();
  let port = 0;
  const cookieName = () => `warden_console_${port}`;
  const hostAllowed = (host: string | undefined) =>
    host === `127.0.0.1:${port}` || host === `localhost:${port}`;
  const originAllowed = (origin: string | undefined) =>
    origin === `http://127.0.0.1:${port}` || origin === `http://localhost:${port}`;
  const authorized = (req: IncomingMessage) => {
    const bearer = /^Bearer (.+)$/.exec(req.headers.authorization ?? '')?.[1];
    return sameSecret(cookieOf(req, cookieName()), token) || sameSecret(bearer, token);
  };

  const deny = (res: ServerResponse, status: number, text: string) => {
    res.writeHead(status, { 'content-type': 'text/plain; charset=utf-8', 'cache-control': 'no-store' });
    res.end(`${text}\n`);
  };

  const http = createServer(async (req, res) => {
    if (!hostAllowed(req.headers.host)) return deny(res, 421, 'wrong Host header');
    const url = new URL(req.url ?? '/', `http://${req.headers.host}`);
    const given = url.searchParams.get('token');
    if (given !== null) {
      if (!sameSecret(given, token)) return deny(res, 403, 'wrong access token');
      url.searchParams.delete('token');
      res.writeHead(302, {
        location: url.pathname + url.search,
        'set-cookie': `${cookieName()}=${token}; HttpOnly; SameSite=Strict; Path=/`,
        'cache-control': 'no-store',
      });
      return res.end();
    }
    if (!authorized(req))
      return deny(res, 401, 'this console needs its access token: open the URL `warden console` printed');
    if (req.method !== 'GET' && req.method !== 'HEAD') return deny(res, 405, 'method not allowed');
    const path = normalize(decodeURIComponent(url.pathname)).replace(/^(\.\.(\/|\\|$))+/, '');
    let file = join(staticDir, path);
    if (!file.startsWith(staticDir + sep) && file !== staticDir) return deny(res, 404, 'not found');
    try {
      if (!(await stat(file)).isFile()) throw new Error('not a file');
    } catch {
      file = join(staticDir, 'index.html'); // the page's own routes
    }
    try {
      const body = await readFile(file);
      const hashed = file.includes(`${sep}assets${sep}`);
      res.writeHead(200, {
        'content-type': TYPES[extname(file)] ?? 'application/octet-stream',
        'cache-control': hashed ? 'max-age=31536000, immutable' : 'no-store',
        'x-content-type-options': 'nosniff',
        'x-frame-options': 'DENY',
        'referrer-policy': 'no-referrer',
        'content-security-policy': `default-src 'self'; connect-src 'self' ws://127.0.0.1:${port} ws://localhost:${port}; style-src 'self' 'unsafe-inline'; frame-ancestors 'none'`,
      });
      res.end(req.method === 'HEAD' ? undefined : body);
    } catch {
      deny(res, 500, `the front end is not built (${staticDir}); run npm run build`);
    }
  });

  /**
   * Bridges whose page went away with engine sessions open, by their resume ticket: a reload of that
   * page (which keeps the ticket in its sessionStorage) takes them back within PARK_MS; after that,
   * or beyond MAX_PARKED, they are closed (their engine sessions logged out).
   */
  const parked = new Map<string, { bridge: Bridge; timer: NodeJS.Timeout }>();
  const park = (t: string, bridge: Bridge) => {
    parked.set(t, { bridge, timer: setTimeout(() => unpark(t)?.close(), options.parkMs ?? PARK_MS) });
    if (parked.size > MAX_PARKED) {
      const oldest = parked.keys().next().value!;
      unpark(oldest)?.close();
    }
  };
  const unpark = (t: string): Bridge | undefined => {
    const p = parked.get(t);
    if (p === undefined) return undefined;
    parked.delete(t);
    clearTimeout(p.timer);
    return p.bridge;
  };

  const wss = new WebSocketServer({ noServer: true, maxPayload: 1024 * 1024 });
  http.on('upgrade', (req, socket, head) => {
    const ok =
      hostAllowed(req.headers.host) &&
      originAllowed(req.headers.origin) &&
      authorized(req) &&
      new URL(req.url ?? '/', 'http://x').pathname === '/ws';
    if (!ok) {
      socket.end('HTTP/1.1 403 Forbidden\r\nconnection: close\r\n\r\n');
      return;
    }
    wss.handleUpgrade(req, socket, head, (ws) => {
      const io = {
        send: (m: unknown) => {
          if (ws.readyState === ws.OPEN) ws.send(JSON.stringify(m));
        },
        queuedBytes: () => ws.bufferedAmount,
      };
      let bridge = new Bridge({
        engines: () => EngineList.open(...(enginesPath ? [enginesPath] : [])),
        knownHosts: () => KnownHosts.open(knownHostsPath),
        localTokenPath:
          options.localTokenPath ?? process.env.WARDEN_LOCAL_TOKEN_FILE ?? '/var/lib/warden/local-token',
        ...io,
      });
      let ticket = newTicket();
      ws.on('message', (data) => {
        const text = data.toString();
        const resume = resumeRequest(text);
        if (resume === undefined) return void bridge.handle(text);
        // A reloaded page takes back the sessions of the page it was, if that page left recently.
        const parked = resume.ticket === '' ? undefined : unpark(resume.ticket);
        if (parked !== undefined) {
          bridge.close();
          bridge = parked;
          bridge.attach(io);
          ticket = newTicket(); // one use each
        }
        io.send({
          id: resume.id,
          result: { resumed: parked !== undefined, ticket, sessions: bridge.sessions() },
        });
      });
      const gone = () => {
        if (!bridge.hasSessions) return bridge.close();
        bridge.detach();
        park(ticket, bridge);
      };
      ws.on('close', gone);
      ws.on('error', () => ws.terminate());
    });
  });

  await new Promise<void>((ok, fail) => {
    http.once('error', fail);
    http.listen(options.port ?? 0, '127.0.0.1', ok);
  });
  port = (http.address() as AddressInfo).port;
  return {
    port,
    token,
    url: `http://127.0.0.1:${port}/?token=${token}`,
    close: async () => {
      for (const t of [...parked.keys()]) unpark(t)?.close();
      for (const c of wss.clients) c.terminate();
      wss.close();
      http.closeAllConnections();
      await new Promise<void>((ok) => http.close(() => ok()));
    },
  };
}
