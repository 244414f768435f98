/**
 * The administration port's TCP connections from their accept on: each is counted per source (an
 * IPv4 address or an IPv6 /64) and in total, over a cap it is closed at once, and it is closed at its
 * login deadline unless it has logged in by then, whatever it sent meanwhile (a handshake never
 * finished, a partial ClientHello, requests without a login: none of them moves the deadline).
 */
import type { Socket } from 'node:net';
import { ConnectionCounter } from '../ip/source-limits.js';

/** Defaults of the connection limits (docs/protocol.md, "Timeouts and limits"). */
export const ADMIN_LIMITS = {
  loginTimeoutMs: 10_000,
  idleTimeoutMs: 300_000,
  maxFrameBytes: 1024 * 1024,
  /** Largest frame before login: a login request is small. */
  maxLoginFrameBytes: 16 * 1024,
  /** A frame begun must be complete within this time. */
  partialFrameTimeoutMs: 30_000,
  maxConnectionsPerSource: 32,
  maxConnections: 512,
  /** Bytes waiting to be written to a console beyond which log items are dropped for it (it backfills). */
  maxPushBacklogBytes: 1024 * 1024,
  /** Bytes waiting beyond which the console is closed (it reads nothing at all). */
  maxBacklogBytes: 8 * 1024 * 1024,
} as const;

export class AcceptedConnections {
  readonly #counter: ConnectionCounter;
  readonly #deadlineMs: number;
  /** By "address|port" (the TLS socket made of a raw one has the same): the raw socket and its deadline. */
  readonly #open = new Map<string, { raw: Socket; deadline: NodeJS.Timeout }>();
  #closed = false;

  constructor(limits: { perSource: number; total: number; deadlineMs: number }) {
    this.#counter = new ConnectionCounter({ perSource: limits.perSource, total: limits.total });
    this.#deadlineMs = limits.deadlineMs;
  }

  /** A raw TCP connection was accepted. */
  accept(raw: Socket): void {
    raw.on('error', () => {});
    if (this.#closed) {
      raw.destroy();
      return;
    }
    const admitted = this.#counter.admit(raw.remoteAddress);
    if ('refused' in admitted) {
      raw.destroy();
      return;
    }
    const key = `${raw.remoteAddress}|${raw.remotePort}`;
    const deadline = setTimeout(() => raw.destroy(), this.#deadlineMs);
    deadline.unref();
    this.#open.set(key, { raw, deadline });
    raw.once('close', () => {
      clearTimeout(deadline);
      admitted.release();
      if (this.#open.get(key)?.raw === raw) this.#open.delete(key);
    });
  }

  /** The connection at this address and port logged in: its deadline no longer applies. */
  loggedIn(address: string | undefined, port: number | undefined): void {
    const a = this.#open.get(`${address}|${port}`);
    if (a !== undefined) clearTimeout(a.deadline);
  }

  /** Connections open now. */
  get size(): number {
    return this.#counter.total;
  }

  /** Closes every connection and accepts none from now on. */
  close(): void {
    this.#closed = true;
    for (const a of this.#open.values()) a.raw.destroy();
  }
}
