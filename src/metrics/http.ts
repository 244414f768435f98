/**
 * The localhost Prometheus endpoint: GET /metrics on 127.0.0.1 only (never another address: the figures
 * say how the firewall is used), text exposition format 0.0.4. It follows the `metrics` settings: started,
 * stopped or moved to another port when they change.
 */
import { createServer, type Server } from 'node:http';

/** The `metrics` settings section. */
export interface MetricsSettings {
  readonly enabled: boolean;
  readonly port: number;
}

export const METRICS_CONTENT_TYPE = 'text/plain; version=0.0.4; charset=utf-8';

/**
 * Limits of the endpoint: connections at once, and the time a request has from the TCP accept (headers
 * and all; a connection that sends nothing, or half a request, is closed then) and between requests.
 */
export const METRICS_LIMITS = { maxConnections: 32, requestTimeoutMs: 10_000, keepAliveMs: 5_000 } as const;

/** Serves `render()` at /metrics while the settings say so. */
export class MetricsEndpoint {
  readonly #render: () => string;
  readonly #onError: (message: string) => void;
  #server: Server | undefined;
  #serving: string | undefined;
  #work: Promise<void> = Promise.resolve();

  /** `onError`: told when the port cannot be bound (the engine runs on without the endpoint). */
  constructor(render: () => string, onError: (message: string) => void = () => {}) {
    this.#render = render;
    this.#onError = onError;
  }

  /** The port served now (the bound one, for port 0), or undefined when not serving. */
  get port(): number | undefined {
    const a = this.#server?.address();
    return a !== null && typeof a === 'object' ? a.port : undefined;
  }

  /** Starts, stops or moves the endpoint to match `settings`; resolves when done. */
  follow(settings: MetricsSettings): Promise<void> {
    const wanted = settings.enabled ? String(settings.port) : undefined;
    this.#work = this.#work.then(async () => {
      if (wanted === this.#serving) return;
      await this.#stop();
      if (wanted !== undefined) await this.#start(Number(wanted));
    });
    return this.#work;
  }

  close(): Promise<void> {
    this.#work = this.#work.then(() => this.#stop());
    return this.#work;
  }

  async #start(port: number): Promise<void> {
    const server = createServer(
      {
        requestTimeout: METRICS_LIMITS.requestTimeoutMs,
        headersTimeout: METRICS_LIMITS.requestTimeoutMs,
        keepAliveTimeout: METRICS_LIMITS.keepAliveMs,
        // Node checks these timeouts every connectionsCheckingInterval (30 s by default): each second.
        connectionsCheckingInterval: 1000,
      },
      (req, res) => {
        const path = (req.url ?? '').split('?')[0];
        if (req.method !== 'GET' && req.method !== 'HEAD') {
          res.writeHead(405, { Allow: 'GET, HEAD' }).end();
        } else if (path !== '/metrics') {
          res.writeHead(404, { 'Content-Type': 'text/plain' }).end('see /metrics\n');
        } else {
          const body = this.#render();
          res.writeHead(200, {
            'Content-Type': METRICS_CONTENT_TYPE,
            'Content-Length': Buffer.byteLength(body),
          });
          res.end(req.method === 'HEAD' ? undefined : body);
        }
      },
    );
    server.maxConnections = METRICS_LIMITS.maxConnections;
    server.on('connection', (socket) => {
      // Every socket's errors are handled (a reset peer is not a reason to stop the engine), and a
      // connection lives at most twice the request timeout in all.
      socket.on('error', () => socket.destroy());
      const deadline = setTimeout(() => socket.destroy(), 2 * METRICS_LIMITS.requestTimeoutMs);
      deadline.unref();
      socket.once('close', () => clearTimeout(deadline));
    });
    server.on('clientError', (_e, socket) => socket.destroy());
    server.on('error', () => {});
    try {
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        server.listen({ port, host: '127.0.0.1' }, () => {
          server.off('error', reject);
          resolve();
        });
      });
      this.#server = server;
      this.#serving = String(port);
    } catch (e) {
      this.#serving = undefined;
      this.#onError(`metrics endpoint: cannot listen on 127.0.0.1:${port}: ${(e as Error).message}`);
    }
  }

  async #stop(): Promise<void> {
    const server = this.#server;
    this.#server = undefined;
    this.#serving = undefined;
    if (server === undefined) return;
    server.closeAllConnections();
    await new Promise<void>((r) => server.close(() => r()));
  }
}
