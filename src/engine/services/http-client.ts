/**
 * The one HTTP(S) request function of the auxiliary services (update feed, registration, crash
 * upload). It goes the way `resolveProxy` decided: directly, or through an http:// proxy (a CONNECT
 * tunnel for https targets, an absolute-URI request for http targets). The server's certificate is
 * checked against the system CAs (or `ca`, for tests and private CAs). Every failure, including a
 * non-2xx status, a timeout and an oversized answer, is a WardenError naming the URL and the route.
 */
import http from 'node:http';
import type { Socket } from 'node:net';
import tls from 'node:tls';
import { ErrorCode, WardenError } from '../../errors.js';
import type { ProxyRoute } from '../../settings/proxy.js';
import { oneLine } from '../../text.js';

export interface HttpRequest {
  readonly url: string;
  readonly method?: 'GET' | 'POST';
  /** A JSON body (sent with content-type application/json). */
  readonly json?: unknown;
  /** How the request leaves this host (from resolveProxy). */
  readonly route: ProxyRoute;
  /** PEM CA certificate(s) to trust instead of the system CAs. */
  readonly ca?: string | Buffer;
  /** Deadline for the whole exchange (default 15 s). */
  readonly timeoutMs?: number;
  /** Largest answer body accepted (default 1 MiB). */
  readonly maxBytes?: number;
  /**
   * Takes a successful answer's body as it arrives, chunk by chunk (within maxBytes), instead of
   * keeping it: the response's `body` is then empty. For bodies of many megabytes (lists). A
   * promise returned holds the next chunk back until it settles (a rejection fails the request).
   */
  readonly onChunk?: (chunk: Buffer) => void | Promise<void>;
}

export interface HttpResponse {
  readonly status: number;
  readonly body: string;
  /** "directly" or "through proxy http://host:port". */
  readonly via: string;
}

/** A server's words on one line, control characters escaped: for an error message and a log line. */
const USER_AGENT = 'warden-services/1';

function describeRoute(route: ProxyRoute): string {
  return route.kind === 'direct' ? 'directly' : `through proxy ${route.url}`;
}

/** The Proxy-Authorization header (Basic) when the proxy URL carries credentials. */
function proxyAuthorization(route: Extract<ProxyRoute, { kind: 'proxy' }>): Record<string, string> {
  if (route.credentials === undefined) return {};
  return { 'proxy-authorization': `Basic ${Buffer.from(route.credentials).toString('base64')}` };
}

/** Opens a CONNECT tunnel to `host:port` through an http:// proxy; resolves with the raw socket. */
function tunnel(
  route: Extract<ProxyRoute, { kind: 'proxy' }>,
  host: string,
  port: number,
  track: (socket: Socket) => void,
): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const authority = host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
    const req = http.request({
      host: route.host,
      port: route.port,
      method: 'CONNECT',
      path: authority,
      headers: { host: authority, 'user-agent': USER_AGENT, ...proxyAuthorization(route) },
      agent: false,
    });
    req.once('socket', track);
    req.once('connect', (res, socket) => {
      if (res.statusCode !== 200) {
        socket.destroy();
        const why =
          res.statusCode === 407 ? ' (proxy authentication required: user:password@ in the proxy URL)' : '';
        reject(new Error(`the proxy refused the tunnel to ${authority}: HTTP ${res.statusCode}${why}`));
        return;
      }
      resolve(socket);
    });
    req.once('error', (e) => reject(new Error(`cannot reach the proxy: ${e.message}`)));
    req.end();
  });
}

/** Sends one request; resolves only with a 2xx answer. */
export async function httpRequest(request: HttpRequest): Promise<HttpResponse> {
  const { route } = request;
  const via = describeRoute(route);
  const fail = (why: string, cause?: unknown) =>
    new WardenError(
      ErrorCode.SERVICE_REQUEST_FAILED,
      `${request.method ?? 'GET'} ${request.url} ${via}: ${why}`,
      {
        ...(cause !== undefined ? { cause } : {}),
        suggestion:
          'Check the URL in the settings and the proxy (settings proxy.mode, https_proxy); see docs/services.md.',
      },
    );
  const url = new URL(request.url);
  const secure = url.protocol === 'https:';
  if (!secure && url.protocol !== 'http:') throw fail(`${url.protocol} URLs are not supported`);
  if (route.kind === 'proxy' && !route.url.startsWith('http://')) {
    throw fail(`only http:// proxies are supported, not ${route.url}`);
  }
  const host = url.hostname.replace(/^\[|\]$/g, '');
  const port = url.port === '' ? (secure ? 443 : 80) : Number(url.port);
  const body = request.json === undefined ? undefined : Buffer.from(JSON.stringify(request.json));
  const timeoutMs = request.timeoutMs ?? 15_000;
  const maxBytes = request.maxBytes ?? 1 << 20;
  const headers: Record<string, string | number> = { 'user-agent': USER_AGENT, accept: 'application/json' };
  if (body !== undefined) {
    headers['content-type'] = 'application/json';
    headers['content-length'] = body.length;
  }

  let sockets: Socket[] = [];
  let timer: NodeJS.Timeout | undefined;
  const exchange = async (): Promise<HttpResponse> => {
    let options: http.RequestOptions;
    if (route.kind === 'proxy' && !secure) {
      // Plain http through a proxy: the absolute URI goes to the proxy.
      options = {
        host: route.host,
        port: route.port,
        path: url.href,
        headers: { ...headers, host: url.host, ...proxyAuthorization(route) },
      };
    } else {
      let raw: Socket | undefined;
      if (route.kind === 'proxy') {
        raw = await tunnel(route, host, port, (s) => sockets.push(s));
        sockets.push(raw);
      }
      const base: http.RequestOptions = { host, port, path: `${url.pathname}${url.search}`, headers };
      if (secure) {
        const tlsSocket = tls.connect({
          host,
          port,
          ...(raw !== undefined ? { socket: raw } : {}),
          ...(host.includes(':') || /^[0-9.]+$/.test(host) ? {} : { servername: host }),
          ...(request.ca !== undefined ? { ca: request.ca } : {}),
          ALPNProtocols: ['http/1.1'],
        });
        sockets.push(tlsSocket);
        options = { ...base, createConnection: () => tlsSocket };
      } else {
        options = raw !== undefined ? { ...base, createConnection: () => raw } : { ...base, agent: false };
      }
    }
    return new Promise<HttpResponse>((resolve, reject) => {
      const req = http.request({ ...options, method: request.method ?? 'GET' }, (res) => {
        const chunks: Buffer[] = [];
        let size = 0;
        const status = res.statusCode ?? 0;
        const ok = status >= 200 && status <= 299;
        const onChunk = ok ? request.onChunk : undefined;
        const refuse = (e: unknown) => {
          res.destroy();
          reject(e);
        };
        // An error's body is only quoted (its first 200 characters): a server answering 500 with a
        // huge body on every retry is neither kept nor read to its end.
        const failStatus = () => {
          const text = Buffer.concat(chunks).toString('utf8');
          refuse(
            new Error(
              `the server answered HTTP ${status}${text === '' ? '' : `: ${oneLine(text.slice(0, 200).trimEnd())}`}`,
            ),
          );
        };
        res.on('data', (chunk: Buffer) => {
          size += chunk.length;
          if (!ok) {
            chunks.push(chunk);
            if (size >= 1024) failStatus();
            return;
          }
          if (size > maxBytes) {
            refuse(new Error(`the answer is larger than ${maxBytes} bytes`));
            return;
          }
          if (onChunk === undefined) {
            chunks.push(chunk);
            return;
          }
          try {
            const written = onChunk(chunk);
            if (written !== undefined) {
              // The taker writes asynchronously (to a file): no more data until it has.
              res.pause();
              written.then(
                () => res.resume(),
                (e) => refuse(e),
              );
            }
          } catch (e) {
            refuse(e);
          }
        });
        res.once('error', reject);
        res.once('end', () => {
          if (!ok) failStatus();
          else resolve({ status, body: Buffer.concat(chunks).toString('utf8'), via });
        });
      });
      req.once('socket', (s) => sockets.push(s));
      req.once('error', reject);
      req.end(body);
    });
  };
  try {
    return await Promise.race([
      exchange(),
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`no answer within ${timeoutMs} ms`)), timeoutMs);
      }),
    ]);
  } catch (e) {
    throw e instanceof WardenError ? e : fail((e as Error).message, e);
  } finally {
    clearTimeout(timer);
    for (const s of sockets) s.destroy();
    sockets = [];
  }
}
