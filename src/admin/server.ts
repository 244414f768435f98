/**
 * The administration server: TLS 1.3 over TCP and the UDP log channel on
 * one application port. It authenticates consoles, checks each method
 * against the caller's role, pushes new log items to subscribed consoles
 * (UDP once registered, TCP otherwise) and drops a connection's identifier
 * the moment its TCP connection ends. It does not depend on the kernel.
 */
import { createSocket, type Socket as UdpSocket } from 'node:dgram';
import { isIP, type Socket } from 'node:net';
import { createServer, type TLSSocket, type Server as TlsServer } from 'node:tls';
import { ErrorCode, WardenError } from '../errors.js';
import { sourceKey } from '../ip/source-limits.js';
import type { AdminMetrics } from '../metrics/warden.js';
import type { JsonRpcRequest } from '../protocol/jsonrpc.js';
import { EncodedLogItem } from '../protocol/log-bodies.js';
import type { LogItem } from '../protocol/log-item.js';
import { type Access, METHODS_BY_NAME, type Method, Methods, Notifications } from '../protocol/methods.js';
import { RpcPeer } from '../rpc/peer.js';
import type { Settings } from '../settings/index.js';
import { AcceptedConnections, ADMIN_LIMITS } from './accepted.js';
import type { UserStore } from './auth/users.js';
import { Confirmations, isLoopback } from './confirm.js';
import { type Caller, createHandlers, type HandlerContext } from './handlers.js';
import { UdpLogChannel } from './log-channel.js';
import { LoginGate, RepeatLimiter } from './login-gate.js';
import { Session, SessionTable } from './session.js';
import { createUserHandlers, type UserCaller } from './user-admin.js';

/** Failed-login throttling per key, a source or a user name (LoginThrottle implements it). */
export interface Throttle {
  check(key: string): { allowed: true } | { allowed: false; retryAfterMs: number };
  failure(key: string): void;
  success(key: string): void;
}

export interface AdminServerOptions extends Omit<HandlerContext, 'onSettingsChanged' | 'servedPort'> {
  /** The engine's TLS key and certificate (PEM) and the certificate's fingerprint. */
  readonly identity: { readonly key: string; readonly cert: string; readonly fingerprint: string };
  /** The users file: logins, and the users.* methods. */
  readonly users: UserStore;
  readonly throttle: Throttle;
  /** The local administrator token (from the root-only token file), if any. */
  readonly localToken?: string;
  /** Address to bind (default: all, '::' with IPv4 mapped). The port is settings.applicationPort unless `port` is given. */
  readonly bindAddress?: string;
  /** Overrides the settings' port (0: an ephemeral port, for tests). */
  readonly port?: number;
  /** A connection that has not logged in within this time of its TCP accept is closed (default 10 s). */
  readonly loginTimeoutMs?: number;
  /** A frame begun must be complete within this time (default 30 s). */
  readonly partialFrameTimeoutMs?: number;
  /** Connections open at once from one source, an IPv4 address or an IPv6 /64 (default 32). */
  readonly maxConnectionsPerSource?: number;
  /** Connections open at once in total (default 512). */
  readonly maxConnections?: number;
  /** Bytes queued to a console beyond which its log items are dropped and backfilled (default 1 MiB). */
  readonly maxPushBacklogBytes?: number;
  /** A logged-in connection silent for this long is closed (default 5 min). */
  readonly idleTimeoutMs?: number;
  /** How long to wait for a UDP registration before pushing log items over TCP (default 3 s). */
  readonly udpGraceMs?: number;
  /** Largest frame accepted (default 1 MiB). */
  readonly maxFrameBytes?: number;
  /** Largest UDP datagram sent (default 1,232 bytes). */
  readonly maxDatagramBytes?: number;
  /** Called when settings change through the protocol. */
  readonly onSettingsChanged?: (settings: Settings) => void;
  /** Counts failed logins and log items pushed, lost and backfilled (default: not counted). */
  readonly metrics?: AdminMetrics;
}

const ROLE_RANK: Record<Access, number> = { anyone: 0, auditor: 1, administrator: 2 };

/** The tail of a security item that stands for others left out (RepeatLimiter). */
const more = (left: number) => (left > 0 ? ` (and ${left} more refused since the last such item)` : '');

/** A running administration server. */
/** The params of `req` checked against `method`'s schema; WARDEN_E_PARAMS_INVALID lists what is wrong where. */
function parseParams(method: Method<unknown, unknown>, req: JsonRpcRequest): unknown {
  const parsed = method.params.safeParse(req.params ?? {}, { reportInput: true });
  if (parsed.success) return parsed.data;
  throw new WardenError(ErrorCode.PARAMS_INVALID, `${req.method}: invalid params`, {
    problems: parsed.error.issues.map((i) => ({
      path: i.path.filter((p): p is string | number => typeof p !== 'symbol'),
      message: i.message,
    })),
  });
}

export class AdminServer {
  readonly #options: AdminServerOptions;
  readonly #sessions = new SessionTable();
  readonly #tls: TlsServer;
  readonly #udp: UdpSocket;
  readonly #channel: UdpLogChannel;
  /** Method name -> handler, built once (not looked up per request). */
  readonly #handlerByName: ReadonlyMap<string, (params: unknown, caller: Caller) => unknown>;
  readonly #unsubscribe: () => void;
  readonly #sockets = new Set<TLSSocket>();
  /** Accepted TCP connections (TLS or not yet): their count and login deadline. */
  readonly #accepted: AcceptedConnections;
  readonly #confirmations: Confirmations;
  readonly #loginGate: LoginGate;
  /** Refused logins and connections are security items, at most one a second per source or user. */
  readonly #repeats = new RepeatLimiter();
  #flushScheduled = false;
  #closing = false;
  #port = 0;

  private constructor(options: AdminServerOptions, tls: TlsServer, udp: UdpSocket) {
    this.#options = options;
    this.#tls = tls;
    this.#udp = udp;
    this.#confirmations = options.confirmations ?? new Confirmations();
    this.#loginGate = new LoginGate(options.throttle, options.users, options.localToken);
    this.#accepted = new AcceptedConnections({
      perSource: options.maxConnectionsPerSource ?? ADMIN_LIMITS.maxConnectionsPerSource,
      total: options.maxConnections ?? ADMIN_LIMITS.maxConnections,
      deadlineMs: options.loginTimeoutMs ?? ADMIN_LIMITS.loginTimeoutMs,
    });
    const handlers = createHandlers({
      ...options,
      confirmations: this.#confirmations,
      servedPort: () => this.#port,
      onSettingsChanged: (s) => this.#settingsChanged(s),
    });
    const userHandlers = createUserHandlers({
      users: options.users,
      logs: options.logs,
      endSessionsOf: (name, reason, keep) => this.#endSessionsOf(name, reason, keep),
    });
    const all = { ...handlers, ...userHandlers };
    this.#handlerByName = new Map(
      (Object.keys(all) as (keyof typeof all)[]).map((k) => [
        Methods[k].name,
        all[k] as (p: unknown, c: Caller) => unknown,
      ]),
    );
    this.#channel = new UdpLogChannel(udp, this.#sessions, {
      allowSource: (address) => this.#remoteAllowed(address),
      onRegistered: (session, first) => this.#registered(session, first),
      lastSeq: () => options.logs.lastSeq,
      ...(options.maxDatagramBytes ? { maxDatagramBytes: options.maxDatagramBytes } : {}),
    });
    this.#unsubscribe = options.logs.subscribe((item) => this.#onLogItem(item));
  }

  /** Starts listening on TCP and UDP, the same port. Throws when the port is taken. */
  static async start(options: AdminServerOptions): Promise<AdminServer> {
    const tls = createServer({
      key: options.identity.key,
      cert: options.identity.cert,
      minVersion: 'TLSv1.3',
      handshakeTimeout: options.loginTimeoutMs ?? ADMIN_LIMITS.loginTimeoutMs,
    });
    const host = options.bindAddress ?? '::';
    const udp = createSocket({ type: isIP(host) === 4 ? 'udp4' : 'udp6', ipv6Only: false });
    const server = new AdminServer(options, tls, udp);
    // The raw TCP connection is seen first: it is counted, and its login deadline starts here.
    tls.on('connection', (raw: Socket) => server.#accepted.accept(raw));
    tls.on('secureConnection', (socket) => server.#onConnection(socket));
    // A handshake that fails or times out: the connection is closed (a listener here would keep it).
    tls.on('tlsClientError', (_e, socket) => socket.destroy());
    const wanted = options.port ?? options.config.settings().applicationPort;
    await new Promise<void>((resolve, reject) => {
      tls.once('error', reject);
      tls.listen({ port: wanted, host, ipv6Only: false }, () => {
        tls.off('error', reject);
        resolve();
      });
    }).catch((e: NodeJS.ErrnoException) => {
      throw new WardenError(
        ErrorCode.CONNECTION_FAILED,
        `cannot listen on TCP port ${wanted}: ${e.code === 'EADDRINUSE' ? 'the port is taken by another program' : e.message}`,
        { cause: e },
      );
    });
    const port = (tls.address() as { port: number }).port;
    await new Promise<void>((resolve, reject) => {
      udp.once('error', reject);
      udp.bind({ port, address: host }, () => {
        udp.off('error', reject);
        resolve();
      });
    }).catch((e: NodeJS.ErrnoException) => {
      tls.close();
      throw new WardenError(
        ErrorCode.CONNECTION_FAILED,
        `cannot listen on UDP port ${port}: ${e.code === 'EADDRINUSE' ? 'the port is taken by another program' : e.message}`,
        { cause: e },
      );
    });
    // A send error (ICMP unreachable, a closed socket) is not a reason to stop the engine.
    udp.on('error', () => {});
    tls.on('error', () => {});
    server.#port = port;
    return server;
  }

  /** The application port (TCP and UDP). */
  get port(): number {
    return this.#port;
  }

  /** Dropped and sent datagram counters. */
  get udpCounters() {
    return { ...this.#channel.counters };
  }

  /** Bytes written to consoles and not yet sent, over all connections (bounded by the backpressure limits). */
  get backlogBytes(): number {
    let n = 0;
    for (const s of this.#sockets) n += s.writableLength;
    return n;
  }

  /** The addresses of the consoles connected from other hosts now (the lockout guard of a subscription's refresh). */
  get remoteSources(): string[] {
    const out = new Set<string>();
    for (const s of this.#sockets)
      if (s.remoteAddress !== undefined && !isLoopback(s.remoteAddress)) out.add(s.remoteAddress);
    return [...out];
  }

  /** Number of logged-in consoles. */
  get consoles(): number {
    return this.#sessions.size;
  }

  /** Sends a notification to every logged-in console (ask prompts and their resolution). */
  broadcast(notification: string, params: unknown): void {
    for (const s of this.#sessions.all()) this.#notify(s, notification, params);
  }

  /**
   * Sends a notification unless the console has stopped reading: past maxBacklogBytes waiting to be
   * written, it is closed (its memory is bounded; it reconnects and lists what it missed).
   */
  #notify(s: Session, notification: string, params: unknown): void {
    if (this.#closing || s.peer.closed) return;
    if (s.peer.bufferedBytes > ADMIN_LIMITS.maxBacklogBytes) {
      s.peer.close(`the console reads too slowly (${s.peer.bufferedBytes} bytes waiting)`);
      return;
    }
    s.peer.notify(notification, params);
  }

  /** Tells a console whose pushed items were dropped the newest sequence number: it fetches the gap. */
  #tellGap(s: Session): void {
    s.gapPending = false;
    this.#notify(s, Notifications.logItems, { items: [], lastSeq: this.#options.logs.lastSeq });
  }

  /**
   * Stops listening and closes every connection. Log items appended before (e.g. "engine stopped")
   * are pushed first; nothing is sent after the UDP socket is closed.
   */
  async close(): Promise<void> {
    if (this.#closing) return;
    this.#flush();
    this.#closing = true;
    this.#channel.close();
    this.#confirmations.close();
    this.#unsubscribe();
    for (const s of this.#sockets) s.destroy();
    this.#accepted.close();
    await Promise.all([
      new Promise<void>((r) => this.#tls.close(() => r())),
      new Promise<void>((r) => this.#udp.close(() => r())),
    ]);
  }

  /** Logs out every console of user `name` but connection `keep`; their role or password changed. */
  #endSessionsOf(name: string, reason: string, keep?: string): number {
    let ended = 0;
    for (const s of [...this.#sessions.all()]) {
      if (s.user.toLowerCase() !== name.toLowerCase() || s.idHex === keep) continue;
      this.#notify(s, Notifications.sessionEnded, { reason });
      setImmediate(() => s.peer.close(reason));
      ended++;
    }
    return ended;
  }

  #remoteAllowed(address: string): boolean {
    return this.#options.config.settings().remoteAdministration.enabled || isLoopback(address);
  }

  #settingsChanged(settings: Settings): void {
    this.#options.onSettingsChanged?.(settings);
    if (!settings.remoteAdministration.enabled) {
      for (const s of this.#sockets) if (!isLoopback(s.remoteAddress ?? '')) s.destroy();
    }
  }

  #newPeer(socket: TLSSocket): RpcPeer {
    return new RpcPeer(socket, {
      maxFrameBytes: Math.min(
        ADMIN_LIMITS.maxLoginFrameBytes,
        this.#options.maxFrameBytes ?? ADMIN_LIMITS.maxFrameBytes,
      ),
      partialFrameTimeoutMs: this.#options.partialFrameTimeoutMs ?? ADMIN_LIMITS.partialFrameTimeoutMs,
    });
  }

  #onConnection(socket: TLSSocket): void {
    socket.on('error', () => {});
    const remote = socket.remoteAddress ?? 'unknown';
    if (this.#closing || remote === 'unknown') {
      socket.destroy();
      return;
    }
    if (!this.#remoteAllowed(remote)) {
      this.#refuseRemote(socket, remote);
      return;
    }
    this.#sockets.add(socket);
    const peer = this.#newPeer(socket);
    let session: Session | undefined;
    peer.onDrain(() => {
      if (session?.gapPending) this.#tellGap(session);
    });
    peer.onClose(() => {
      this.#sockets.delete(socket);
      socket.destroy();
      if (session) {
        // The identifier dies with the TCP connection: UDP from its port is ignored from now on.
        this.#sessions.remove(session);
        session = undefined;
      }
    });
    peer.onRequest(async (req) => {
      const result = await this.#dispatch(req, peer, remote, session, (s) => {
        session = s;
        // Logged in: larger frames are accepted, and a connection silent for the idle timeout is closed.
        this.#accepted.loggedIn(socket.remoteAddress, socket.remotePort);
        peer.setMaxFrameBytes(this.#options.maxFrameBytes ?? ADMIN_LIMITS.maxFrameBytes);
        socket.setTimeout(this.#options.idleTimeoutMs ?? ADMIN_LIMITS.idleTimeoutMs, () =>
          peer.close('idle timeout'),
        );
      });
      return result;
    });
  }

  /**
   * Remote administration is off: the first request gets WARDEN_E_REMOTE_DISABLED (so the console can
   * say why) and the connection is closed; no session is made and nothing is ever pushed to it.
   */
  #refuseRemote(socket: TLSSocket, remote: string): void {
    const left = this.#repeats.admit(`remote ${remote}`);
    if (left !== undefined)
      this.#options.logs.append({
        kind: 'security',
        source: remote,
        message: `refused an administration connection from ${remote}: remote administration is disabled${more(left)}`,
      });
    const peer = this.#newPeer(socket);
    this.#sockets.add(socket);
    peer.onClose(() => {
      this.#sockets.delete(socket);
      socket.destroy();
    });
    peer.onRequest(async () => {
      setImmediate(() => peer.close('remote administration is disabled'));
      throw new WardenError(
        ErrorCode.REMOTE_DISABLED,
        `remote administration is disabled on this engine; ${remote} is not on the engine's host`,
        {
          suggestion:
            'On the engine, as root, set remoteAdministration.enabled to true, or run the console on the engine host.',
        },
      );
    });
  }

  async #dispatch(
    req: JsonRpcRequest,
    peer: RpcPeer,
    remote: string,
    session: Session | undefined,
    loggedIn: (s: Session) => void,
  ): Promise<unknown> {
    const method = METHODS_BY_NAME.get(req.method);
    if (method === undefined) {
      throw new WardenError(ErrorCode.METHOD_UNKNOWN, `unknown method "${req.method}"`, {
        suggestion: 'See docs/protocol.md for the method table.',
      });
    }
    if (method === Methods.login)
      return this.#login(
        parseParams(method, req) as { user?: string; password?: string; localToken?: string },
        peer,
        remote,
        session,
        loggedIn,
      );
    // Who may call comes before what the params say: a refused call is refused (and a security item)
    // whatever its params are.
    if (session === undefined)
      throw new WardenError(ErrorCode.NOT_AUTHENTICATED, `${req.method} needs a logged-in session`, {
        suggestion: 'Log in first (`warden connect HOST --user NAME`, or --user/--local on the command).',
      });
    if (ROLE_RANK[session.role] < ROLE_RANK[method.access]) {
      this.#options.logs.append({
        kind: 'security',
        user: session.user,
        source: remote,
        message: `${session.user} (${session.role}) was refused ${req.method}`,
      });
      throw new WardenError(
        ErrorCode.FORBIDDEN,
        `${req.method} needs the ${method.access} role; ${session.user} is an ${session.role}`,
      );
    }
    return this.#call(method, parseParams(method, req), session, remote);
  }

  async #call(
    method: Method<unknown, unknown>,
    params: unknown,
    session: Session,
    remote: string,
  ): Promise<unknown> {
    const caller: UserCaller = { user: session.user, source: remote, connectionId: session.idHex };
    switch (method) {
      case Methods.logout:
        setImmediate(() => session.peer.close('logged out'));
        this.#options.logs.append({
          kind: 'admin',
          user: session.user,
          source: remote,
          message: `${session.user} logged out`,
        });
        return {};
      case Methods.whoami:
        return {
          user: session.user,
          role: session.role,
          connectionId: session.idHex,
          remoteAddress: remote,
          since: session.since.toISOString(),
          logTransport: session.transport,
        };
      case Methods.logsSubscribe: {
        session.subscribed = true;
        return { transport: session.transport, lastSeq: this.#options.logs.lastSeq };
      }
      case Methods.logsTransport: {
        const { udpReceiving } = params as { udpReceiving: boolean };
        session.udpBlocked = !udpReceiving;
        this.#setTransport(
          session,
          udpReceiving && session.udpEndpoint ? 'udp' : 'tcp',
          udpReceiving ? 'the console receives UDP' : 'the console reports that no UDP datagrams arrive',
        );
        return { transport: session.transport };
      }
    }
    const handler = this.#handlerByName.get(method.name);
    if (handler === undefined)
      throw new WardenError(ErrorCode.METHOD_UNKNOWN, `${method.name} is not implemented by this engine`);
    const result = await handler(params, caller);
    // A logs.query from a sequence number is a console fetching what its live feed missed.
    if (method === Methods.logsQuery && (params as { fromSeq?: number }).fromSeq !== undefined)
      this.#options.metrics?.logItemsBackfilled.inc((result as { items: unknown[] }).items.length);
    return result;
  }

  async #login(
    p: { user?: string; password?: string; localToken?: string },
    peer: RpcPeer,
    remote: string,
    current: Session | undefined,
    loggedIn: (s: Session) => void,
  ): Promise<unknown> {
    if (current) throw new WardenError(ErrorCode.PROTOCOL, 'this connection is logged in already');
    const outcome = await this.#loginGate.attempt(p, remote);
    if (!outcome.ok && outcome.throttled) {
      const { key, retryAfterMs } = outcome.throttled;
      const left = this.#repeats.admit(`throttled ${key}`);
      if (left !== undefined)
        this.#options.logs.append({
          kind: 'security',
          source: remote,
          ...(p.user !== undefined ? { user: p.user } : {}),
          message: `login as ${p.user} from ${remote} refused: too many failures (${key}), retry in ${retryAfterMs} ms${more(left)}`,
        });
      throw new WardenError(
        ErrorCode.AUTH_THROTTLED,
        `too many failed logins (${key}); try again in ${Math.ceil(retryAfterMs / 1000)} s`,
        { retryAfterMs },
      );
    }
    if (!outcome.ok) {
      this.#options.metrics?.loginsFailed.inc();
      // Every login attempt, good or bad, is an audit item; a throttled attempt is a security item.
      // Wrong passwords are bounded by the throttle; wrong tokens are not throttled (they must not lock
      // root out), so their items are: at most one a second per source.
      const left = p.localToken === undefined ? 0 : this.#repeats.admit(`token ${sourceKey(remote)}`);
      if (left !== undefined)
        this.#options.logs.append({
          kind: 'admin',
          source: remote,
          user: p.user ?? '(local token)',
          message: `failed login as ${p.user ?? 'local administrator'} from ${remote}${more(left)}`,
        });
      throw new WardenError(ErrorCode.AUTH_FAILED, 'wrong user name, password or token');
    }
    if (peer.closed) throw new WardenError(ErrorCode.CONNECTION_FAILED, 'the connection closed during login');
    // Pipelined logins on one connection: the first that succeeds makes the session, the others are refused.
    for (const s of this.#sessions.all())
      if (s.peer === peer) throw new WardenError(ErrorCode.PROTOCOL, 'this connection is logged in already');
    const who = { name: outcome.name, role: outcome.role };
    const session = new Session(who.name, who.role, remote, peer);
    this.#sessions.add(session);
    loggedIn(session);
    // A login that succeeds is no log item of its own: every CLI command logs in, and those items buried
    // the rest. What the session changes is audited with its user and source; failed logins are items.
    const graceMs = this.#options.udpGraceMs ?? 3000;
    session.graceTimer = setTimeout(() => {
      if (session.transport === 'pending')
        this.#setTransport(session, 'tcp', `no UDP registration within ${graceMs} ms`);
    }, graceMs);
    session.graceTimer.unref();
    return {
      connectionId: session.idHex,
      udpKey: session.key.toString('base64'),
      user: who.name,
      role: who.role,
      udpGraceSeconds: graceMs / 1000,
    };
  }

  #registered(session: Session, first: boolean): void {
    if (first || session.transport !== 'udp') {
      if (!session.udpBlocked) this.#setTransport(session, 'udp', 'UDP registration received');
    }
  }

  #setTransport(session: Session, transport: 'udp' | 'tcp', reason: string): void {
    if (session.transport === transport) return;
    session.transport = transport;
    this.#notify(session, Notifications.logTransport, { transport, reason });
  }

  #onLogItem(item: LogItem): void {
    let any = false;
    let encoded: EncodedLogItem | undefined;
    for (const s of this.#sessions.all()) {
      if (!s.subscribed) continue;
      encoded ??= new EncodedLogItem(item);
      s.queue.push(encoded);
      any = true;
    }
    if (any && !this.#flushScheduled) {
      this.#flushScheduled = true;
      setImmediate(() => this.#flush());
    }
  }

  #flush(): void {
    this.#flushScheduled = false;
    if (this.#closing) return;
    const backlogLimit = this.#options.maxPushBacklogBytes ?? ADMIN_LIMITS.maxPushBacklogBytes;
    for (const s of this.#sessions.all()) {
      if (s.queue.length === 0) continue;
      const items = s.queue;
      s.queue = [];
      const m = this.#options.metrics;
      if (s.transport === 'udp' && s.udpEndpoint) {
        const tooLarge = this.#channel.sendItems(s, items);
        m?.logItemsPushed.inc(items.length - tooLarge);
        m?.logItemsLost.inc(tooLarge);
      } else if (s.transport === 'tcp') {
        // Backpressure: a console that does not keep up gets no more items until its backlog is
        // written; then it is told the newest sequence number and fetches what it missed.
        if (s.gapPending || s.peer.bufferedBytes >= backlogLimit) {
          s.gapPending = true;
          m?.logItemsLost.inc(items.length);
          // Written out already (no 'drain' will come): told now.
          if (s.peer.bufferedBytes === 0) this.#tellGap(s);
          continue;
        }
        this.#notify(s, Notifications.logItems, { items: items.map((e) => e.item) });
        m?.logItemsPushed.inc(items.length);
      } else {
        // 'pending': items are not sent; the console backfills from its subscription's lastSeq.
        m?.logItemsLost.inc(items.length);
      }
    }
  }
}
