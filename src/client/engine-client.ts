/**
 * The console's connection to one engine: TLS 1.3 with the engine's
 * certificate pinned by fingerprint (the caller decides what to do with an
 * unknown or changed one), login, typed calls, and live log items over UDP
 * with TCP fallback and gap backfill.
 */
import { createSocket, type Socket as UdpSocket } from 'node:dgram';
import { isIP } from 'node:net';
import { type TLSSocket, connect as tlsConnect } from 'node:tls';
import { ErrorCode, WardenError } from '../errors.js';
import { DatagramType, openDatagram, readHeader, sealDatagram } from '../protocol/datagram.js';
import type { LogItem } from '../protocol/log-item.js';
import {
  type LoginResult,
  type LogTransport,
  type Method,
  Methods,
  Notifications,
} from '../protocol/methods.js';
import { RpcPeer } from '../rpc/peer.js';
import { fingerprintOfDer } from './known-hosts.js';
import { LogSequencer, type SequencerCounters } from './log-sequencer.js';

export interface ConnectOptions {
  readonly host: string;
  readonly port: number;
  /** Decides whether the presented fingerprint is acceptable; throws (WardenError) to refuse. */
  readonly verifyFingerprint: (fingerprint: string) => Promise<void>;
  /** Connection and request timeout in ms (default 10 s). */
  readonly timeoutMs?: number;
}

export interface FollowOptions {
  /** Deliver items after this sequence number (default: only new items). */
  readonly afterSeq?: number;
  /** Use UDP (default true); false asks for TCP push at once. */
  readonly udp?: boolean;
  /** Re-register this often so NAT mappings stay open, in ms (default 20 s). */
  readonly refreshMs?: number;
  /** Without a UDP acknowledgement this long after registering, switch to TCP, in ms (default 3 s). */
  readonly udpAckTimeoutMs?: number;
  /** After a burst of log datagrams, ask for the engine's newest sequence number this soon, in ms (default 100). */
  readonly quietProbeMs?: number;
  /**
   * UDP receive buffer to ask the kernel for, in bytes (default 4 MiB), so a burst of log datagrams
   * is not dropped while the console is busy. Linux silently caps it at net.core.rmem_max; the size
   * obtained is in LogFollower.udpReceiveBufferBytes.
   */
  readonly udpReceiveBufferBytes?: number;
  /** Test hook: drop an incoming datagram when it returns true (simulates loss). */
  readonly dropDatagram?: (n: number) => boolean;
}

/** Live log items from one engine. */
export interface LogFollower {
  readonly transport: LogTransport;
  readonly counters: SequencerCounters & { udpDatagrams: number; udpRejected: number; tcpBatches: number };
  readonly lastSeq: number;
  /** The local UDP port log datagrams come to (undefined when following over TCP only). */
  readonly udpPort: number | undefined;
  /** The UDP receive buffer the kernel granted, in bytes (as the kernel reports it; 0 without UDP). */
  readonly udpReceiveBufferBytes: number;
  stop(): void;
}

/** Default UDP receive buffer asked for: 4 MiB holds about 3,000 full log datagrams. */
const UDP_RECEIVE_BUFFER_BYTES = 4 * 1024 * 1024;

/**
 * Asks for a larger receive buffer on a BOUND socket (before bind, Node throws EBADF because
 * the socket does not exist yet). The kernel caps the size at net.core.rmem_max without an
 * error; if it refuses altogether the default buffer stays. Returns the size obtained.
 */
function enlargeReceiveBuffer(socket: UdpSocket, bytes: number): number {
  try {
    if (socket.getRecvBufferSize() < bytes) socket.setRecvBufferSize(bytes);
  } catch {
    // Refused (not Linux, or a limit): the default buffer still works, with more loss under bursts.
  }
  try {
    return socket.getRecvBufferSize();
  } catch {
    return 0;
  }
}

/** A logged-in (or about to be) connection to one engine. */
export class EngineClient {
  readonly fingerprint: string;
  readonly #peer: RpcPeer;
  readonly #socket: TLSSocket;
  readonly #host: string;
  readonly #port: number;
  #login: LoginResult | undefined;
  #transport: LogTransport = 'pending';
  readonly #transportListeners = new Set<(t: LogTransport, reason: string) => void>();
  readonly #itemListeners = new Set<(items: LogItem[], lastSeq?: number) => void>();
  readonly #notificationListeners = new Set<(method: string, params: unknown) => void>();

  private constructor(socket: TLSSocket, fingerprint: string, host: string, port: number, timeoutMs: number) {
    this.#socket = socket;
    this.fingerprint = fingerprint;
    this.#host = host;
    this.#port = port;
    this.#peer = new RpcPeer(socket, { requestTimeoutMs: timeoutMs });
    this.#peer.onNotification((method, params) => {
      if (method === Notifications.logTransport) {
        const p = params as { transport: LogTransport; reason: string };
        this.#transport = p.transport;
        for (const l of this.#transportListeners) l(p.transport, p.reason);
      } else if (method === Notifications.logItems) {
        // lastSeq comes with an empty batch after the engine dropped items this console read too slowly.
        const { items, lastSeq } = params as { items: LogItem[]; lastSeq?: number };
        for (const l of this.#itemListeners) l(items, typeof lastSeq === 'number' ? lastSeq : undefined);
      }
      for (const l of this.#notificationListeners) l(method, params);
    });
  }

  /** Calls `listener` for every notification from the engine (e.g. asks.prompt); returns an unsubscribe. */
  onNotification(listener: (method: string, params: unknown) => void): () => void {
    this.#notificationListeners.add(listener);
    return () => this.#notificationListeners.delete(listener);
  }

  /** Opens TLS to the engine and checks its fingerprint before anything else is sent. */
  static async connect(options: ConnectOptions): Promise<EngineClient> {
    const timeoutMs = options.timeoutMs ?? 10_000;
    const socket = await new Promise<TLSSocket>((resolve, reject) => {
      const s = tlsConnect({
        host: options.host,
        port: options.port,
        minVersion: 'TLSv1.3',
        // Trust comes from the pinned fingerprint, not from a CA (the engine signs its own certificate).
        rejectUnauthorized: false,
        ...(isIP(options.host) === 0 ? { servername: options.host } : {}),
        timeout: timeoutMs,
      });
      let tcpConnected = false;
      s.once('connect', () => {
        tcpConnected = true;
      });
      s.once('secureConnect', () => resolve(s));
      s.once('timeout', () => {
        s.destroy();
        const where = `${options.host}:${options.port}`;
        // An engine with remote administration off drops other hosts' packets in the kernel before its
        // -32007 answer could be sent: a silent timeout is all a remote console sees then.
        reject(
          new WardenError(
            ErrorCode.TIMEOUT,
            tcpConnected
              ? `no TLS handshake with ${where} within ${timeoutMs} ms: something answers on the port but it is not a Warden engine, or the engine is overloaded`
              : `no answer from ${where} within ${timeoutMs} ms: the engine may have remote administration off (it then drops connections from other hosts), a firewall on the way may drop TCP to port ${options.port}, or the host may be down or unreachable`,
            {
              suggestion: tcpConnected
                ? 'Check that wardend listens on this port (`warden status` on the engine host).'
                : 'On the engine host, as root: `warden status` shows whether remote administration is on ' +
                  '(turn it on with `warden settings set remoteAdministration.enabled=true`) and the port it serves; `warden hints` says what a network firewall must let through.',
            },
          ),
        );
      });
      s.once('error', (e: NodeJS.ErrnoException) =>
        reject(
          new WardenError(
            ErrorCode.CONNECTION_FAILED,
            `cannot connect to ${options.host}:${options.port}: ${e.code ?? e.message}`,
            {
              cause: e,
              suggestion:
                'Is wardend running there, and does the network firewall let TCP to this port through? See `warden hints`.',
            },
          ),
        ),
      );
    });
    socket.setTimeout(0);
    const fingerprint = fingerprintOfDer(socket.getPeerCertificate(true).raw);
    try {
      await options.verifyFingerprint(fingerprint);
    } catch (e) {
      socket.destroy();
      throw e;
    }
    return new EngineClient(socket, fingerprint, options.host, options.port, timeoutMs);
  }

  /** How log items reach this console now. */
  get transport(): LogTransport {
    return this.#transport;
  }

  /** The login result (connection identifier, role), once logged in. */
  get session(): LoginResult | undefined {
    return this.#login;
  }

  /** Calls a method. */
  call<P, R>(method: Method<P, R>, params: P): Promise<R> {
    return this.#peer.call(method, params);
  }

  /** Logs in with a user and password, or with the local administrator token. */
  async login(
    credentials: { user: string; password: string } | { localToken: string },
  ): Promise<LoginResult> {
    this.#login = await this.#peer.call(Methods.login, credentials);
    return this.#login;
  }

  /** Registers a callback for transport changes (UDP <-> TCP), with the engine's reason. */
  onTransport(listener: (t: LogTransport, reason: string) => void): () => void {
    this.#transportListeners.add(listener);
    return () => this.#transportListeners.delete(listener);
  }

  /** Calls back when the TCP connection ends, for any reason. */
  onClose(listener: (reason: string) => void): void {
    this.#peer.onClose((info) => listener(info.reason));
  }

  /** Ends the session: the engine and this client both drop the connection identifier. */
  close(): void {
    this.#peer.close('closed by the console');
    this.#socket.destroy();
  }

  /**
   * Follows new log items: subscribes, registers over UDP (refreshing for NAT),
   * falls back to TCP when no UDP arrives, and fills every gap over TCP.
   */
  async follow(deliver: (items: LogItem[]) => void, options: FollowOptions = {}): Promise<LogFollower> {
    const login = this.#login;
    if (login === undefined)
      throw new WardenError(ErrorCode.NOT_AUTHENTICATED, 'log in before following logs');
    const id = Buffer.from(login.connectionId, 'hex');
    const key = Buffer.from(login.udpKey, 'base64');
    const sub = await this.call(Methods.logsSubscribe, {});
    this.#transport = sub.transport;
    const counters = { udpDatagrams: 0, udpRejected: 0, tcpBatches: 0 };
    const sequencer = new LogSequencer({
      startAfterSeq: options.afterSeq ?? sub.lastSeq,
      deliver,
      backfill: async (from, to) => {
        const out: LogItem[] = [];
        for (let next = from; next <= to; ) {
          const r = await this.call(Methods.logsQuery, {
            fromSeq: next,
            limit: Math.min(10_000, to - next + 1),
          });
          const part = r.items.filter((i) => i.seq <= to);
          out.push(...part);
          // An answer stopped at the engine's work budget (or size cap) says where to go on.
          if (r.searchedTo !== undefined && part.length === r.items.length) {
            next = r.searchedTo + 1;
            continue;
          }
          if (r.items.length === 0 || part.length < r.items.length) break;
          next = part[part.length - 1]!.seq + 1;
        }
        return out;
      },
    });
    if ((options.afterSeq ?? sub.lastSeq) < sub.lastSeq) sequencer.noteLatest(sub.lastSeq);
    const onItems = (items: LogItem[], lastSeq?: number) => {
      counters.tcpBatches++;
      sequencer.accept(items);
      if (lastSeq !== undefined) sequencer.noteLatest(lastSeq);
    };
    this.#itemListeners.add(onItems);

    let udp: UdpSocket | undefined;
    let refresh: NodeJS.Timeout | undefined;
    let ackTimer: NodeJS.Timeout | undefined;
    let acked = false;
    let udpPort: number | undefined;
    let udpBuffer = 0;
    if (options.udp === false) {
      await this.call(Methods.logsTransport, { udpReceiving: false });
    } else {
      const family = isIP(this.#host) === 6 ? 'udp6' : 'udp4';
      udp = createSocket(family);
      let seq = 1n;
      let received = 0;
      const register = () => {
        const d = sealDatagram(DatagramType.REGISTER, id, seq++, key, Buffer.from('{}'));
        udp?.send(d, this.#port, this.#host);
      };
      // After a burst, a quick re-registration makes the engine say its newest sequence number, so
      // losing the last datagrams of a burst (no later datagram shows the gap) is noticed at once.
      let quiet: NodeJS.Timeout | undefined;
      udp.on('message', (msg) => {
        const n = ++received;
        if (options.dropDatagram?.(n)) return;
        const header = readHeader(msg);
        if (header === null || !header.connectionId.equals(id)) {
          counters.udpRejected++;
          return;
        }
        const body = openDatagram(msg, header, key);
        if (body === null) {
          counters.udpRejected++;
          return;
        }
        counters.udpDatagrams++;
        const parsed = JSON.parse(body.toString('utf8')) as { items?: LogItem[]; lastSeq?: number };
        if (header.type === DatagramType.REGISTERED) {
          acked = true;
          if (typeof parsed.lastSeq === 'number') sequencer.noteLatest(parsed.lastSeq);
        } else if (header.type === DatagramType.LOGS && parsed.items) {
          sequencer.accept(parsed.items);
          // One timer, pushed back by each datagram (refresh() is much cheaper than a new timer per datagram).
          if (quiet) quiet.refresh();
          else {
            quiet = setTimeout(register, options.quietProbeMs ?? 100);
            quiet.unref();
          }
        }
      });
      udp.on('error', () => {});
      await new Promise<void>((resolve) => udp!.bind(0, resolve));
      udpPort = udp.address().port;
      udpBuffer = enlargeReceiveBuffer(udp, options.udpReceiveBufferBytes ?? UDP_RECEIVE_BUFFER_BYTES);
      register();
      refresh = setInterval(register, options.refreshMs ?? 20_000);
      refresh.unref();
      ackTimer = setTimeout(() => {
        // Registrations get through but nothing comes back: a firewall drops UDP towards us.
        if (!acked)
          void this.call(Methods.logsTransport, { udpReceiving: false })
            .then((r) => (this.#transport = r.transport))
            .catch(() => {});
      }, options.udpAckTimeoutMs ?? 3000);
      ackTimer.unref();
    }
    const stop = () => {
      this.#itemListeners.delete(onItems);
      if (refresh) clearInterval(refresh);
      if (ackTimer) clearTimeout(ackTimer);
      udp?.close();
      udp = undefined;
    };
    this.#peer.onClose(stop);
    const client = this;
    return {
      get transport() {
        return client.#transport;
      },
      get counters() {
        return { ...sequencer.counters, ...counters };
      },
      get lastSeq() {
        return sequencer.lastSeq;
      },
      udpPort,
      udpReceiveBufferBytes: udpBuffer,
      stop,
    };
  }
}
