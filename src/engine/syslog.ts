/**
 * Syslog forwarding of log items: `formatSyslog` turns an item into an RFC 5424 line (pure), and
 * `SyslogForwarder` sends lines to a receiver over UDP (one datagram per item, RFC 5426), TCP with
 * octet counting (RFC 6587) or TLS (RFC 5425, certificate checked against the system CAs unless a
 * `ca` file is given). Stream transports reconnect with backoff and keep a bounded queue while
 * disconnected (the oldest items are dropped and counted). Nothing here ever throws into the caller:
 * forwarding must not disturb the engine. `forwardLogs` subscribes a forwarder to a log store.
 */
import dgram from 'node:dgram';
import { readFileSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import tls from 'node:tls';
import type { LogStore } from '../admin/log-store.js';
import type { LogItem } from '../protocol/log-item.js';
import type { Settings } from '../settings/index.js';

/** Private enterprise number used in the SD-ID `warden@32473` (32473 is the documentation PEN, RFC 5612). */
export const SYSLOG_SD_ID = 'warden@32473';

export interface SyslogHeader {
  /** HOSTNAME field (printable ASCII, at most 255). */
  readonly hostname: string;
  /** APP-NAME field (at most 48). */
  readonly appName: string;
  /** PROCID field (at most 128). */
  readonly procId: string;
}

const FACILITY = { local0: 16, authpriv: 10 } as const;
const SEVERITY = { warning: 4, notice: 5, info: 6 } as const;

/** PRI value: facility authpriv for admin and security items, local0 otherwise; severity from kind and verdict. */
export function syslogPri(item: Pick<LogItem, 'kind' | 'verdict'>): number {
  const facility = item.kind === 'admin' || item.kind === 'security' ? FACILITY.authpriv : FACILITY.local0;
  let severity: number = SEVERITY.info;
  if (item.kind === 'security') severity = SEVERITY.warning;
  else if (item.verdict === 'deny' || item.verdict === 'reject' || item.verdict === 'ask')
    severity = SEVERITY.notice;
  else if (item.kind === 'admin') severity = SEVERITY.notice;
  return facility * 8 + severity;
}

/** SD-PARAM names and the item fields they carry, in the order they are written. */
const SD_PARAMS: readonly (readonly [string, keyof LogItem])[] = [
  ['seq', 'seq'],
  ['verdict', 'verdict'],
  ['direction', 'direction'],
  ['protocol', 'protocol'],
  ['app', 'application'],
  ['local', 'local'],
  ['remote', 'remote'],
  ['host', 'host'],
  ['rule', 'rule'],
  ['user', 'user'],
  ['source', 'source'],
];

/** A header field: printable US-ASCII without spaces, at most `max` characters, `-` (NILVALUE) when empty. */
function headerField(value: string, max: number): string {
  const clean = value.replace(/[^\x21-\x7e]/g, '_').slice(0, max);
  return clean === '' ? '-' : clean;
}

/** PARAM-VALUE escaping (RFC 5424 6.3.3): `"`, `\` and `]` get a backslash. */
export function escapeParamValue(value: string): string {
  return value.replace(/["\\\]]/g, '\\$&');
}

/** RFC 5424 TIMESTAMP from an ISO 8601 instant (UTC, milliseconds), or NILVALUE when it does not parse. */
function timestamp(time: string): string {
  const ms = Date.parse(time);
  return Number.isFinite(ms) ? new Date(ms).toISOString() : '-';
}

/** The RFC 5424 line for an item (without framing or trailing newline); MSG is the item's message, no BOM. */
export function formatSyslog(item: LogItem, header: SyslogHeader): string {
  let sd = `[${SYSLOG_SD_ID}`;
  for (const [name, field] of SD_PARAMS) {
    const v = item[field];
    if (v !== undefined) sd += ` ${name}="${escapeParamValue(String(v))}"`;
  }
  sd += ']';
  const line =
    `<${syslogPri(item)}>1 ${timestamp(item.time)} ${headerField(header.hostname, 255)} ` +
    `${headerField(header.appName, 48)} ${headerField(header.procId, 128)} ${headerField(item.kind, 32)} ${sd}`;
  return item.message === '' ? line : `${line} ${item.message}`;
}

/** Octet-counting frame (RFC 6587 3.4.1, RFC 5425 4.3): `MSG-LEN SP SYSLOG-MSG`. */
export function octetFrame(line: string): Buffer {
  const body = Buffer.from(line, 'utf8');
  return Buffer.concat([Buffer.from(`${body.length} `, 'ascii'), body]);
}

export interface SyslogForwarderOptions {
  /** HOSTNAME field; default os.hostname(). */
  readonly hostname?: string;
  /** PROCID field; default this process's id. */
  readonly procId?: string;
  /** TLS: PEM file of the CA(s) to trust instead of the system CAs (tests, private CAs). */
  readonly ca?: string;
  /** Items kept while a stream transport is disconnected (default 10,000); the oldest are dropped. */
  readonly maxQueue?: number;
  /** Reconnect delays: first and largest (default 200 ms and 30 s), doubling in between. */
  readonly minBackoffMs?: number;
  readonly maxBackoffMs?: number;
}

export interface SyslogStats {
  /** Items handed to the socket. */
  sent: number;
  /** Items dropped: queue overflow, more than 4 MiB unsent on the connection, send errors, or still queued at close. */
  dropped: number;
  /** Connection and send errors seen. */
  errors: number;
  /** Last error message, for diagnostics. */
  lastError?: string;
}

/** Bytes a connected stream may hold unsent before new items are dropped. */
const MAX_UNSENT_BYTES = 4 * 1024 * 1024;

type SyslogTarget = Pick<Settings['syslog'], 'host' | 'port' | 'transport'>;

/** Sends log items to one syslog receiver. `send` never throws; `close` ends the connection after pending writes. */
export class SyslogForwarder {
  readonly #target: SyslogTarget;
  readonly #header: SyslogHeader;
  readonly #options: SyslogForwarderOptions;
  readonly #maxQueue: number;
  readonly #stats: SyslogStats = { sent: 0, dropped: 0, errors: 0 };
  #udp: dgram.Socket | undefined;
  #stream: net.Socket | undefined;
  #connected = false;
  #queue: Buffer[] = [];
  #backoffMs: number;
  #timer: NodeJS.Timeout | undefined;
  #closed = false;
  #ca: string | undefined;

  constructor(target: SyslogTarget, options: SyslogForwarderOptions = {}) {
    this.#target = { host: target.host, port: target.port, transport: target.transport };
    this.#options = options;
    this.#header = {
      hostname: options.hostname ?? os.hostname(),
      appName: 'wardend',
      procId: options.procId ?? String(process.pid),
    };
    this.#maxQueue = Math.max(1, options.maxQueue ?? 10_000);
    this.#backoffMs = options.minBackoffMs ?? 200;
    if (target.transport === 'udp') this.#openUdp();
    else this.#connect();
  }

  /** Counters (a copy). */
  stats(): SyslogStats {
    return { ...this.#stats };
  }

  /** True while a TCP/TLS connection is up (always false for UDP). */
  get connected(): boolean {
    return this.#connected;
  }

  /** Formats and sends one item; never throws. */
  send(item: LogItem): void {
    if (this.#closed) return;
    try {
      const line = formatSyslog(item, this.#header);
      if (this.#target.transport === 'udp') this.#sendUdp(Buffer.from(line, 'utf8'));
      else this.#sendStream(octetFrame(line));
    } catch (err) {
      this.#fail(err);
      this.#stats.dropped++;
    }
  }

  /** Stops reconnecting and closes the socket once what was written is flushed; queued items are dropped. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    clearTimeout(this.#timer);
    this.#stats.dropped += this.#queue.length;
    this.#queue = [];
    const udp = this.#udp;
    const stream = this.#stream;
    this.#udp = undefined;
    this.#stream = undefined;
    this.#connected = false;
    if (udp) await new Promise<void>((resolve) => udp.close(() => resolve()));
    if (stream && !stream.destroyed) {
      await new Promise<void>((resolve) => {
        const timer = setTimeout(() => stream.destroy(), 2000);
        stream.once('close', () => {
          clearTimeout(timer);
          resolve();
        });
        stream.end();
      });
    }
  }

  #fail(err: unknown): void {
    this.#stats.errors++;
    this.#stats.lastError = err instanceof Error ? err.message : String(err);
  }

  #openUdp(): void {
    const type = net.isIPv6(this.#target.host) ? 'udp6' : 'udp4';
    const socket = dgram.createSocket(type);
    socket.on('error', (err) => this.#fail(err));
    socket.unref();
    this.#udp = socket;
  }

  #sendUdp(datagram: Buffer): void {
    const socket = this.#udp;
    if (!socket) return;
    socket.send(datagram, this.#target.port, this.#target.host, (err) => {
      if (err) {
        this.#fail(err);
        this.#stats.dropped++;
      } else this.#stats.sent++;
    });
  }

  #sendStream(frame: Buffer): void {
    if (this.#connected && this.#stream) {
      // A receiver that stops reading must not make the engine buffer without bound.
      if (this.#stream.writableLength > MAX_UNSENT_BYTES) {
        this.#stats.dropped++;
        return;
      }
      this.#stream.write(frame);
      this.#stats.sent++;
      return;
    }
    this.#queue.push(frame);
    if (this.#queue.length > this.#maxQueue) {
      this.#queue.shift();
      this.#stats.dropped++;
    }
  }

  #connect(): void {
    if (this.#closed) return;
    const { host, port, transport } = this.#target;
    let socket: net.Socket;
    try {
      if (transport === 'tls') {
        if (this.#options.ca !== undefined && this.#ca === undefined)
          this.#ca = readFileSync(this.#options.ca, 'utf8');
        socket = tls.connect({
          host,
          port,
          ...(net.isIP(host) === 0 ? { servername: host } : {}),
          ...(this.#ca !== undefined ? { ca: this.#ca } : {}),
        });
        socket.once('secureConnect', () => this.#onConnect(socket));
      } else {
        socket = net.connect({ host, port });
        socket.once('connect', () => this.#onConnect(socket));
      }
    } catch (err) {
      this.#fail(err);
      this.#scheduleReconnect();
      return;
    }
    socket.unref();
    socket.setKeepAlive(true, 30_000);
    this.#stream = socket;
    socket.on('error', (err) => this.#fail(err));
    // A receiver may send nothing back; anything it does send is read and ignored.
    socket.on('data', () => {});
    socket.once('close', () => {
      if (this.#stream !== socket) return;
      this.#stream = undefined;
      this.#connected = false;
      this.#scheduleReconnect();
    });
  }

  #onConnect(socket: net.Socket): void {
    if (this.#stream !== socket || this.#closed) return;
    this.#connected = true;
    this.#backoffMs = this.#options.minBackoffMs ?? 200;
    const queued = this.#queue;
    this.#queue = [];
    for (const frame of queued) {
      socket.write(frame);
      this.#stats.sent++;
    }
  }

  #scheduleReconnect(): void {
    if (this.#closed || this.#timer !== undefined) return;
    const delay = this.#backoffMs;
    this.#backoffMs = Math.min(delay * 2, this.#options.maxBackoffMs ?? 30_000);
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      this.#connect();
    }, delay);
    this.#timer.unref();
  }
}

/** Forwards every item appended to `store` from now on when `settings.syslog.enabled`; `stop()` unsubscribes and closes. */
export function forwardLogs(
  store: Pick<LogStore, 'subscribe'>,
  settings: Pick<Settings, 'syslog'>,
  options: SyslogForwarderOptions = {},
): { stop(): Promise<void>; readonly forwarder: SyslogForwarder | undefined } {
  if (!settings.syslog.enabled) return { stop: async () => {}, forwarder: undefined };
  const forwarder = new SyslogForwarder(settings.syslog, options);
  const unsubscribe = store.subscribe((item) => forwarder.send(item));
  return {
    forwarder,
    async stop() {
      unsubscribe();
      await forwarder.close();
    },
  };
}
