/**
 * The web console's bridge: one per browser connection. It turns the page's
 * JSON requests into administration-protocol calls on engines (each opened
 * with EngineClient over TLS, logged in as the page's user) and pushes log
 * items, notifications and transport changes back. The page never talks to an
 * engine itself, and only the methods of the protocol table can be called.
 */
import { EngineClient, type LogFollower } from '../../client/engine-client.js';
import {
  fingerprintMismatchError,
  fingerprintUnknownError,
  type KnownHosts,
  normalizeFingerprint,
} from '../../client/known-hosts.js';
import { readLocalToken } from '../../client/local-token.js';
import { ErrorCode, WardenError } from '../../errors.js';
import type { LogItem } from '../../protocol/log-item.js';
import { METHODS_BY_NAME, Methods, Notifications } from '../../protocol/methods.js';
import { toErrorObject } from '../../rpc/peer.js';
import { type EngineList, hostPortKey, parseHostPort } from '../engines.js';
import { type FleetRow, firstLine, rowOf, withDeadline } from '../fleet.js';

/** What the bridge needs from its surroundings (the server supplies real files; tests temporary ones). */
export interface BridgeContext {
  readonly engines: () => Promise<EngineList>;
  readonly knownHosts: () => Promise<KnownHosts>;
  readonly localTokenPath: string;
  /** Sends one JSON message to the page. */
  readonly send: (message: unknown) => void;
  /** Bytes queued towards the page and not yet written to the socket. */
  readonly queuedBytes: () => number;
  /** Tests: reconnection delays (default 500 ms doubling to 10 s, giving up after 10 min). */
  readonly reconnect?: { firstMs: number; maxMs: number; giveUpMs: number };
}

/** Reconnection to an engine that went away (restart): first delay, doubling up to the most, and for how long. */
const RECONNECT_FIRST_MS = 500;
const RECONNECT_MAX_MS = 10_000;
const RECONNECT_GIVE_UP_MS = 10 * 60_000;
/** Items read back at most after a reconnect to an engine whose log was replaced (it ends before the last item seen). */
const MAX_READ_BACK = 1000;

/** Methods the bridge manages itself: the page may not call them by name. */
const MANAGED = new Set(['session.login', 'session.logout', 'logs.subscribe', 'logs.transport']);
/** Log items queued towards a slow page beyond this many bytes are dropped and counted. */
const MAX_QUEUED_BYTES = 4 * 1024 * 1024;
/** The Fleet page's deadline for each engine's engine.status. */
const FLEET_PAGE_TIMEOUT_MS = 5000;
/** Log items are sent to the page at most this often (one message per tick, not one per datagram). */
const FLUSH_MS = 50;

/** How a session logged in: a user's password (kept in this process's memory only, to log in again after an engine restart) or the local token file. */
type Credentials = { user: string; password: string } | undefined;

interface Session {
  client: EngineClient;
  follower?: LogFollower;
  readonly credentials: Credentials;
  /** The last log item delivered: a reconnect follows on from it, so nothing stored meanwhile is missed. */
  lastSeq: number;
  /** The engine ended the session on purpose (user removed, role or password changed): no reconnect. */
  ended: boolean;
  reconnect?: NodeJS.Timeout;
}

/** Where the bridge sends pushes and answers: the page's socket, or nowhere while the page reloads. */
export interface PageIo {
  readonly send: (message: unknown) => void;
  readonly queuedBytes: () => number;
}

type Request = { id: number; op: string } & Record<string, unknown>;

function str(r: Request, key: string): string {
  const v = r[key];
  if (typeof v !== 'string' || v === '')
    throw new WardenError(ErrorCode.USAGE, `${r.op}: "${key}" must be a non-empty string`);
  return v;
}

/** One browser connection's engine sessions. */
export class Bridge {
  readonly #ctx: BridgeContext;
  #io: PageIo | undefined;
  readonly #sessions = new Map<string, Session>();
  #pending: { engine: string; items: LogItem[] }[] = [];
  #dropped = 0;
  #flushTimer: NodeJS.Timeout | undefined;

  constructor(ctx: BridgeContext) {
    this.#ctx = ctx;
    this.#io = { send: ctx.send, queuedBytes: ctx.queuedBytes };
  }

  /** The page went away (a reload): pushes go nowhere until attach(); the engine sessions stay. */
  detach(): void {
    this.#io = undefined;
  }

  /** A reloaded page takes this bridge over with its sessions. */
  attach(io: PageIo): void {
    this.#io = io;
  }

  get hasSessions(): boolean {
    return this.#sessions.size > 0;
  }

  /** The logged-in sessions, as the page shows them. */
  sessions(): Record<string, { user: string; role: string; transport: string; reconnecting: boolean }> {
    const out: Record<string, { user: string; role: string; transport: string; reconnecting: boolean }> = {};
    for (const [name, s] of this.#sessions) {
      const session = s.client.session;
      if (session === undefined) continue;
      out[name] = {
        user: session.user,
        role: session.role,
        transport: s.client.transport,
        reconnecting: s.reconnect !== undefined,
      };
    }
    return out;
  }

  #send(message: unknown): void {
    this.#io?.send(message);
  }

  /** Handles one message from the page and answers it (errors as WardenError objects). */
  async handle(text: string): Promise<void> {
    let request: Request;
    try {
      request = JSON.parse(text) as Request;
    } catch {
      return;
    }
    if (typeof request?.id !== 'number' || typeof request.op !== 'string') return;
    try {
      const result = await this.#dispatch(request);
      this.#send({ id: request.id, result });
    } catch (e) {
      const error = toErrorObject(e);
      this.#send({ id: request.id, error: { message: error.message, ...error.data } });
    }
  }

  async #dispatch(r: Request): Promise<unknown> {
    switch (r.op) {
      case 'engines':
        return this.#engines();
      case 'probe':
        return this.#probe(str(r, 'address'));
      case 'trust':
        return this.#trust(str(r, 'name'), str(r, 'address'), str(r, 'fingerprint'));
      case 'login':
        return this.#login(
          str(r, 'engine'),
          r.local === true ? undefined : { user: str(r, 'user'), password: String(r.password ?? '') },
        );
      case 'logout':
        this.#drop(str(r, 'engine'), 'logged out');
        return {};
      case 'forget':
        return this.#forget(str(r, 'engine'));
      case 'call':
        return this.#call(str(r, 'engine'), str(r, 'method'), r.params ?? {});
      case 'fleet':
        return this.#fleet();
      default:
        throw new WardenError(ErrorCode.USAGE, `unknown operation "${r.op}"`);
    }
  }

  async #engines() {
    const [list, known] = await Promise.all([this.#ctx.engines(), this.#ctx.knownHosts()]);
    return {
      default: list.defaultName,
      engines: list.all().map(([name, e]) => {
        const s = this.#sessions.get(name);
        return {
          name,
          host: e.host,
          port: e.port,
          user: e.user,
          fingerprint: known.lookup(hostPortKey(e)),
          session: s?.client.session
            ? { user: s.client.session.user, role: s.client.session.role, transport: s.client.transport }
            : undefined,
          reconnecting: s?.reconnect !== undefined,
        };
      }),
    };
  }

  /**
   * The Fleet page: one row per remembered engine (as `warden fleet status`), each logged-in one asked
   * for engine.status in parallel with a deadline; the others say they need a login. And the groups.
   */
  async #fleet() {
    const list = await this.#ctx.engines();
    const rows = await Promise.all(
      list.all().map(async ([name, e]): Promise<FleetRow & { loggedIn: boolean }> => {
        const address = hostPortKey(e);
        const s = this.#sessions.get(name);
        const last = list.lastContact(name) ?? null;
        if (s === undefined || s.reconnect !== undefined)
          return {
            engine: name,
            address,
            reachable: false,
            loggedIn: s !== undefined,
            error: s === undefined ? 'not logged in' : 'not answering; the console is connecting again',
            lastContact: last,
          };
        try {
          const status = await withDeadline(s.client.call(Methods.status, {}), FLEET_PAGE_TIMEOUT_MS, name);
          return {
            ...rowOf(name, address, status, s.client.transport, new Date().toISOString()),
            loggedIn: true,
          };
        } catch (x) {
          return {
            engine: name,
            address,
            reachable: false,
            loggedIn: true,
            error: firstLine(x),
            lastContact: last,
          };
        }
      }),
    );
    await list.contacted(rows.filter((r) => r.reachable).map((r) => r.engine));
    return { rows, groups: list.groups() };
  }

  /** Connects only to read the engine's certificate fingerprint, for the administrator to compare. */
  async #probe(address: string) {
    const hp = parseHostPort(address);
    const key = hostPortKey(hp);
    const known = await this.#ctx.knownHosts();
    let seen = '';
    const client = await EngineClient.connect({
      ...hp,
      timeoutMs: 5000,
      verifyFingerprint: async (fp) => {
        seen = fp;
      },
    });
    client.close();
    const check = known.check(key, seen);
    return { address: key, fingerprint: seen, ...check };
  }

  /** Pins a fingerprint the administrator confirmed and remembers the engine under a name. */
  async #trust(name: string, address: string, fingerprint: string) {
    const fp = normalizeFingerprint(fingerprint);
    if (fp === undefined)
      throw new WardenError(ErrorCode.USAGE, `"${fingerprint}" is not a SHA-256 fingerprint`, {
        problems: [{ path: ['fingerprint'], message: 'not a SHA-256 fingerprint (SHA256:AB:CD:...)' }],
      });
    const hp = parseHostPort(address);
    const probe = await this.#probe(address);
    if (probe.fingerprint !== fp) throw fingerprintUnknownError(hostPortKey(hp), probe.fingerprint);
    const known = await this.#ctx.knownHosts();
    if (known.check(hostPortKey(hp), fp).status !== 'known') await known.pin(hostPortKey(hp), fp);
    await (await this.#ctx.engines()).save(name, hp);
    return { name, ...hp, fingerprint: fp };
  }

  async #login(engine: string, credentials: Credentials) {
    this.#drop(engine, 'logged in again');
    const client = await this.#connect(engine, credentials);
    const session: Session = { client, credentials, lastSeq: 0, ended: false };
    this.#sessions.set(engine, session);
    await this.#start(engine, session);
    return { user: client.session!.user, role: client.session!.role, transport: client.transport };
  }

  /** A logged-in client to the engine, its pinned fingerprint checked before the credentials go out. */
  async #connect(engine: string, credentials: Credentials): Promise<EngineClient> {
    const { entry } = (await this.#ctx.engines()).resolve(engine);
    const key = hostPortKey(entry);
    const known = await this.#ctx.knownHosts();
    const client = await EngineClient.connect({
      host: entry.host,
      port: entry.port,
      verifyFingerprint: async (fp) => {
        const check = known.check(key, fp);
        if (check.status === 'changed') throw fingerprintMismatchError(key, check.pinned, fp, 'known hosts');
        if (check.status === 'unknown') throw fingerprintUnknownError(key, fp);
      },
    });
    try {
      if (credentials) await client.login(credentials);
      else {
        const token = await readLocalToken(this.#ctx.localTokenPath);
        if (token === null)
          throw new WardenError(ErrorCode.AUTH_FAILED, `cannot read ${this.#ctx.localTokenPath}`);
        await client.login({ localToken: token });
      }
    } catch (e) {
      client.close();
      throw e;
    }
    return client;
  }

  /** Wires a logged-in client to the page: notifications, transport changes, its end, and log items from lastSeq on. */
  async #start(engine: string, session: Session): Promise<void> {
    const { client } = session;
    client.onNotification((method, params) => {
      if (method === 'logs.items') return; // delivered in order through the follower
      if (method === Notifications.sessionEnded) session.ended = true;
      this.#send({ push: 'notify', engine, method, params });
    });
    client.onTransport((transport, reason) => this.#send({ push: 'transport', engine, transport, reason }));
    client.onClose((reason) => {
      if (this.#sessions.get(engine) !== session || session.client !== client) return;
      session.follower?.stop();
      if (session.ended) {
        this.#sessions.delete(engine);
        this.#send({ push: 'closed', engine, reason });
      } else this.#reconnect(engine, session, reason, Date.now(), 0);
    });
    session.follower = await client.follow(
      (items) => {
        const last = items[items.length - 1];
        if (last !== undefined && last.seq > session.lastSeq) session.lastSeq = last.seq;
        this.#queue(engine, items);
      },
      session.lastSeq > 0 ? { afterSeq: await this.#resumeAfter(session) } : {},
    );
  }

  /**
   * Where a reconnected session's items go on from: after the last one delivered, unless the
   * engine's log now ends before it (its store was replaced): then its newest MAX_READ_BACK items.
   */
  async #resumeAfter(session: Session): Promise<number> {
    const { lastLogSeq } = await session.client.call(Methods.status, {});
    if (lastLogSeq >= session.lastSeq) return session.lastSeq;
    session.lastSeq = Math.max(0, lastLogSeq - MAX_READ_BACK);
    return session.lastSeq;
  }

  /**
   * The engine went away without ending the session (it restarted, or the network broke): log in
   * again with the same credentials, the pinned fingerprint checked as at first, waiting longer after
   * each failure. A refused login (password changed, user removed) ends the session.
   */
  #reconnect(engine: string, session: Session, reason: string, since: number, attempt: number): void {
    const r = this.#ctx.reconnect ?? {
      firstMs: RECONNECT_FIRST_MS,
      maxMs: RECONNECT_MAX_MS,
      giveUpMs: RECONNECT_GIVE_UP_MS,
    };
    const give = (why: string) => {
      if (this.#sessions.get(engine) === session) this.#sessions.delete(engine);
      this.#send({ push: 'closed', engine, reason: why });
    };
    if (Date.now() - since > r.giveUpMs) {
      give(`${reason}; no answer since ${new Date(since).toISOString()}`);
      return;
    }
    const inMs = Math.min(r.maxMs, r.firstMs * 2 ** attempt);
    this.#send({ push: 'reconnecting', engine, reason, inMs, attempt: attempt + 1 });
    session.reconnect = setTimeout(async () => {
      if (this.#sessions.get(engine) !== session) return; // logged out or in again meanwhile
      try {
        session.client = await this.#connect(engine, session.credentials);
      } catch (e) {
        if (this.#sessions.get(engine) !== session) return;
        const code = e instanceof WardenError ? e.code : undefined;
        if (code === ErrorCode.AUTH_FAILED || code === ErrorCode.FINGERPRINT_MISMATCH)
          return give((e as Error).message);
        return this.#reconnect(engine, session, (e as Error).message ?? reason, since, attempt + 1);
      }
      session.reconnect = undefined;
      if (this.#sessions.get(engine) !== session) return session.client.close();
      try {
        await this.#start(engine, session);
      } catch {
        session.client.close(); // its close listener tries again
        return;
      }
      const s = session.client.session!;
      this.#send({
        push: 'reconnected',
        engine,
        session: { user: s.user, role: s.role, transport: session.client.transport },
      });
    }, inMs);
  }

  #queue(engine: string, items: LogItem[]): void {
    const last = this.#pending[this.#pending.length - 1];
    if (last?.engine === engine) last.items.push(...items);
    else this.#pending.push({ engine, items: [...items] });
    this.#flushTimer ??= setTimeout(() => this.#flush(), FLUSH_MS);
  }

  #flush(): void {
    this.#flushTimer = undefined;
    const batches = this.#pending;
    this.#pending = [];
    for (const b of batches) {
      // A page that cannot keep up loses live items (it is told how many; history has them all).
      // No page (it is reloading): it reads what it missed from history when it comes back.
      if (this.#io === undefined) continue;
      if (this.#io.queuedBytes() > MAX_QUEUED_BYTES) {
        this.#dropped += b.items.length;
        continue;
      }
      this.#send({ push: 'log', engine: b.engine, items: b.items, dropped: this.#dropped });
      this.#dropped = 0;
    }
  }

  async #call(engine: string, name: string, params: unknown): Promise<unknown> {
    const method = METHODS_BY_NAME.get(name);
    if (method === undefined || MANAGED.has(name))
      throw new WardenError(ErrorCode.USAGE, `"${name}" is not a method the console may call`);
    const session = this.#sessions.get(engine);
    if (session === undefined)
      throw new WardenError(ErrorCode.NOT_AUTHENTICATED, `not logged in to ${engine}`);
    if (session.reconnect !== undefined)
      throw new WardenError(
        ErrorCode.CONNECTION_FAILED,
        `${engine} is not reachable now; the console is connecting again`,
      );
    return session.client.call(method, params);
  }

  #drop(engine: string, _why: string): void {
    const s = this.#sessions.get(engine);
    if (s === undefined) return;
    this.#sessions.delete(engine);
    if (s.reconnect) clearTimeout(s.reconnect);
    s.follower?.stop();
    s.client.close();
  }

  /** Forgets an engine (as `warden engines forget`): out of the engines list, its pinned fingerprint removed. */
  async #forget(engine: string) {
    this.#drop(engine, 'forgotten');
    const list = await this.#ctx.engines();
    const { name, entry } = list.resolve(engine);
    const removed = await list.remove(name);
    const unpinned = await (await this.#ctx.knownHosts()).forget(hostPortKey(entry));
    return { name, removed, unpinned };
  }

  /** Closes every engine session (the page went away). */
  close(): void {
    if (this.#flushTimer) clearTimeout(this.#flushTimer);
    for (const name of [...this.#sessions.keys()]) this.#drop(name, 'page closed');
  }
}
