/**
 * The engine's end of the UDP log channel: authenticated registrations in,
 * encrypted log items out. Every datagram that is malformed, forged,
 * replayed, for an unknown or dropped connection, or not allowed from its
 * source is dropped, counted, and never answered.
 */
import type { RemoteInfo, Socket as UdpSocket } from 'node:dgram';
import {
  DatagramType,
  HEADER_BYTES,
  MAX_DATAGRAM_BYTES,
  openDatagram,
  readHeader,
  sealDatagram,
  TAG_BYTES,
} from '../protocol/datagram.js';
import { type EncodedLogItem, type PackedLogBodies, packLogBodies } from '../protocol/log-bodies.js';
import type { Session, SessionTable } from './session.js';

/** Counters of dropped datagrams, by reason. */
export interface UdpCounters {
  received: number;
  registrations: number;
  malformed: number;
  unknownConnection: number;
  forged: number;
  replayed: number;
  notAllowed: number;
  sent: number;
  itemsSent: number;
  itemsTooLarge: number;
}

export interface LogChannelOptions {
  /** Whether a datagram from this address may be accepted (remote administration off: loopback only). */
  readonly allowSource: (address: string) => boolean;
  /** Called after each authenticated registration (first or refresh). */
  readonly onRegistered: (session: Session, first: boolean) => void;
  /** The newest log sequence number, sent back with every acknowledgement. */
  readonly lastSeq: () => number;
  /** Largest datagram sent; the default fits any path (1,232 bytes). */
  readonly maxDatagramBytes?: number;
}

export class UdpLogChannel {
  readonly counters: UdpCounters = {
    received: 0,
    registrations: 0,
    malformed: 0,
    unknownConnection: 0,
    forged: 0,
    replayed: 0,
    notAllowed: 0,
    sent: 0,
    itemsSent: 0,
    itemsTooLarge: 0,
  };
  readonly #socket: UdpSocket;
  readonly #sessions: SessionTable;
  readonly #options: LogChannelOptions;
  readonly #bodyLimit: number;
  #closed = false;
  /** The items last packed and their bodies (#pack). */
  #packed: { items: readonly EncodedLogItem[]; packed: PackedLogBodies } | undefined;

  constructor(socket: UdpSocket, sessions: SessionTable, options: LogChannelOptions) {
    this.#socket = socket;
    this.#sessions = sessions;
    this.#options = options;
    this.#bodyLimit = (options.maxDatagramBytes ?? MAX_DATAGRAM_BYTES) - HEADER_BYTES - TAG_BYTES;
    socket.on('message', (msg, rinfo) => this.#onMessage(msg, rinfo));
  }

  /** Sends nothing from now on (the socket is about to close). */
  close(): void {
    this.#closed = true;
  }

  #onMessage(msg: Buffer, rinfo: RemoteInfo): void {
    if (this.#closed) return;
    const c = this.counters;
    c.received++;
    if (!this.#options.allowSource(rinfo.address)) {
      c.notAllowed++;
      return;
    }
    const header = readHeader(msg);
    if (header === null || header.type !== DatagramType.REGISTER) {
      c.malformed++;
      return;
    }
    const session = this.#sessions.get(header.connectionId.toString('hex'));
    if (session === undefined) {
      c.unknownConnection++;
      return;
    }
    if (openDatagram(msg, header, session.key) === null) {
      c.forged++;
      return;
    }
    if (!session.replay.accept(header.seq)) {
      c.replayed++;
      return;
    }
    c.registrations++;
    const first = session.udpEndpoint === undefined;
    // The endpoint follows the source only here, after the datagram proved it knows the key.
    session.udpEndpoint = { address: rinfo.address, port: rinfo.port };
    this.#options.onRegistered(session, first);
    // The acknowledgement carries the newest log sequence number, so a console that lost the last
    // datagrams of a burst (nothing after them to show the gap) notices and backfills.
    this.#send(
      session,
      DatagramType.REGISTERED,
      Buffer.from(JSON.stringify({ lastSeq: this.#options.lastSeq() })),
    );
  }

  /**
   * Sends items to the session's endpoint, as many per datagram as fit.
   * Returns the items too large for any datagram (the console backfills them over TCP).
   */
  sendItems(session: Session, items: readonly EncodedLogItem[]): number {
    const { bodies, tooLarge } = this.#pack(items);
    for (const body of bodies) this.#send(session, DatagramType.LOGS, body);
    this.counters.itemsSent += items.length - tooLarge;
    this.counters.itemsTooLarge += tooLarge;
    return tooLarge;
  }

  /**
   * The bodies of these items. A flush sends the same items to every console that follows the
   * log, so the bodies of the last call are reused when the items are the same objects in the
   * same order: packed once, sealed per console.
   */
  #pack(items: readonly EncodedLogItem[]): PackedLogBodies {
    const last = this.#packed;
    if (last !== undefined && sameItems(last.items, items)) return last.packed;
    const packed = packLogBodies(items, this.#bodyLimit);
    // A copy: the caller's array may change after this call, its contents then no longer packed.
    this.#packed = { items: items.slice(), packed };
    return packed;
  }

  #send(session: Session, type: DatagramType, body: Buffer): void {
    const to = session.udpEndpoint;
    if (to === undefined || this.#closed) return;
    const seq = session.nextSeq++;
    const datagram = sealDatagram(type, session.id, seq, session.key, body);
    this.counters.sent++;
    try {
      // A failed send (unreachable, buffer full) loses a datagram: the console notices the gap and backfills.
      this.#socket.send(datagram, to.port, to.address, ignoreSendResult);
    } catch {
      this.counters.sent--;
    }
  }
}

/** A datagram's send result: a lost datagram is noticed by the console (a gap) and backfilled. */
function ignoreSendResult(): void {}

function sameItems(a: readonly EncodedLogItem[], b: readonly EncodedLogItem[]): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}
