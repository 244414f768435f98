/** One logged-in console: its identity, its keys, and how its log items travel. */
import { randomBytes } from 'node:crypto';
import { ReplayWindow } from '../protocol/datagram.js';
import type { EncodedLogItem } from '../protocol/log-bodies.js';
import type { LogTransport, Role } from '../protocol/methods.js';
import type { RpcPeer } from '../rpc/peer.js';

/** A logged-in console connection. Lives exactly as long as its TCP connection. */
export class Session {
  /** 128 random bits naming this connection on the UDP channel. */
  readonly id = randomBytes(16);
  readonly idHex = this.id.toString('hex');
  /** AES-256-GCM key of this connection's datagrams. */
  readonly key = randomBytes(32);
  readonly since = new Date();
  /** Replay protection for datagrams from the console. */
  readonly replay = new ReplayWindow();
  transport: LogTransport = 'pending';
  /** Where log datagrams go: the source of the last authenticated registration. */
  udpEndpoint: { address: string; port: number } | undefined;
  /** The console said UDP datagrams do not reach it: log items stay on TCP. */
  udpBlocked = false;
  /** Sequence number of the next datagram to the console (a number: 2 ** 53 datagrams are never reached). */
  nextSeq = 1;
  subscribed = false;
  /** Pushed items were dropped for this console (backpressure): tell it the newest seq once it drains. */
  gapPending = false;
  /** Items waiting for the next flush (each encoded once, shared by every session). */
  queue: EncodedLogItem[] = [];
  graceTimer: NodeJS.Timeout | undefined;

  constructor(
    readonly user: string,
    readonly role: Role,
    readonly remoteAddress: string,
    readonly peer: RpcPeer,
  ) {}
}

/** The live sessions, by connection identifier. */
export class SessionTable {
  readonly #byId = new Map<string, Session>();

  add(s: Session): void {
    this.#byId.set(s.idHex, s);
  }

  /** Removes the session: from now on its identifier and its UDP endpoint are unknown. */
  remove(s: Session): void {
    this.#byId.delete(s.idHex);
    if (s.graceTimer) clearTimeout(s.graceTimer);
  }

  get(idHex: string): Session | undefined {
    return this.#byId.get(idHex);
  }

  get size(): number {
    return this.#byId.size;
  }

  all(): IterableIterator<Session> {
    return this.#byId.values();
  }
}
