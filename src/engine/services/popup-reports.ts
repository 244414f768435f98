/**
 * The blocked pop-up report endpoint: a TCP server on 127.0.0.1 and ::1, port settings
 * blockedPopups.port (44501), where local components report pop-ups they blocked. The protocol is
 * newline-delimited JSON: one report object per line, each answered with one JSON line,
 * {"ok":true,"seq":N} or {"ok":false,"error":{"code","message","field"}}. Every accepted report
 * becomes a `security` log item marked as an unverified report (any local program may post one).
 * Peers that are not loopback addresses are answered with WARDEN_E_POPUP_NOT_LOCAL and disconnected;
 * a line over 8 KiB is refused and the connection closed. What is logged is bounded in count and in
 * bytes, per second and per day, so no local program can fill the disk through this port.
 */
import net from 'node:net';
import { z } from 'zod';
import type { LogStore } from '../../admin/log-store.js';
import { ErrorCode } from '../../errors.js';
import { parseHostName, parseIp } from '../../ip/index.js';
import type { LogItem } from '../../protocol/log-item.js';

/** Longest report line accepted (bytes, without the newline). */
export const MAX_REPORT_LINE = 8 * 1024;
/** Connections served at once; more are closed at once. */
const MAX_CONNECTIONS = 64;
/** Reports logged per second over all connections (sustained), and the burst allowed above it. */
export const REPORTS_PER_SECOND = 50;
const REPORT_BURST = 200;
/** A connection that sends nothing for this long is closed. */
const IDLE_MS = 30_000;
/** The first line must arrive within this time of the accept, and a line begun must end within it. */
const LINE_MS = 10_000;
/** A connection is closed this long after it was accepted, whatever it sends. */
const CONNECTION_MS = 120_000;
/** Bytes of log items (JSON) logged per second (sustained) and in a burst, over all connections. */
export const REPORT_BYTES_PER_SECOND = 32 * 1024;
const REPORT_BYTES_BURST = 256 * 1024;
/** Bytes of log items logged per day (a rolling day from the first report of it). */
export const REPORT_BYTES_PER_DAY = 16 * 1024 * 1024;
/** Longest log message of a report; longer ones are cut. */
export const MAX_REPORT_MESSAGE = 1024;

const httpUrl = z
  .string()
  .max(4096)
  .refine(
    (s) => {
      try {
        const u = new URL(s);
        return (u.protocol === 'http:' || u.protocol === 'https:') && u.hostname !== '';
      } catch {
        return false;
      }
    },
    { message: 'is not an http(s) URL' },
  );

/** One report: the application that blocked it, what was blocked (url and/or host), why, and when. */
export const popupReportSchema = z
  .strictObject({
    application: z.string().min(1, 'must not be empty').max(4096),
    url: httpUrl.optional(),
    host: z
      .string()
      .max(255)
      .refine((s) => parseIp(s) !== null || parseHostName(s).ok, {
        message: 'is not a host name or IP address',
      })
      .optional(),
    reason: z.string().max(500).optional(),
    time: z.string().datetime({ offset: true, message: 'is not an ISO 8601 instant' }).optional(),
  })
  .refine((r) => r.url !== undefined || r.host !== undefined, {
    message: 'a report needs url or host (what was blocked)',
    path: ['url'],
  });

export type PopupReport = z.output<typeof popupReportSchema>;

export type ReportAnswer =
  | { readonly ok: true; readonly seq: number }
  | {
      readonly ok: false;
      readonly error: { readonly code: string; readonly message: string; readonly field?: string };
    };

/** True for 127.0.0.0/8, ::1 and ::ffff:127.x.y.z. */
export function isLoopback(address: string | undefined): boolean {
  if (address === undefined) return false;
  const a = address.toLowerCase().replace(/^::ffff:/, '');
  return a === '::1' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(a);
}

function invalid(message: string, field?: string): ReportAnswer {
  return { ok: false, error: { code: ErrorCode.POPUP_REPORT_INVALID, message, ...(field ? { field } : {}) } };
}

/** Validates one report line; on success the log item to store. Pure. */
export function parseReportLine(
  line: string,
  source: string,
):
  | { ok: true; item: Omit<LogItem, 'seq' | 'time'> & { time?: string } }
  | { ok: false; answer: ReportAnswer } {
  let value: unknown;
  try {
    value = JSON.parse(line);
  } catch (e) {
    return { ok: false, answer: invalid(`the report is not JSON: ${(e as Error).message}`) };
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    return { ok: false, answer: invalid('the report must be a JSON object') };
  }
  const parsed = popupReportSchema.safeParse(value);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    const field =
      issue.code === 'unrecognized_keys'
        ? String(issue.keys[0])
        : issue.path.map(String).join('.') || undefined;
    const message =
      issue.code === 'unrecognized_keys'
        ? `unknown report field "${field}" (known: application, url, host, reason, time)`
        : issue.code === 'invalid_type' && field !== undefined && !(field in (value as object))
          ? `report field "${field}" is missing`
          : `report field "${field}": ${issue.message}`;
    return { ok: false, answer: invalid(message, field) };
  }
  const r = parsed.data;
  const host = r.host ?? (r.url !== undefined ? new URL(r.url).hostname.replace(/^\[|\]$/g, '') : undefined);
  const what = r.url ?? r.host;
  const full = `blocked pop-up: ${what} in ${r.application}${r.reason !== undefined ? ` (${r.reason})` : ''}`;
  const message =
    full.length <= MAX_REPORT_MESSAGE
      ? full
      : `${full.slice(0, MAX_REPORT_MESSAGE)}… (${full.length} characters)`;
  return {
    ok: true,
    item: {
      kind: 'security',
      application: r.application,
      ...(host !== undefined ? { host } : {}),
      source: `blocked pop-up report from ${source}`,
      ...(r.time !== undefined ? { time: new Date(r.time).toISOString() } : {}),
      message: `${message} [unverified report from a local program]`,
    },
  };
}

function answerLine(a: ReportAnswer): string {
  return `${JSON.stringify(a)}\n`;
}

/**
 * The shared budget: any local program may report, so none may flood the log store. A token bucket of
 * reports, one of bytes, and a daily byte allowance; returns why a report of `bytes` is refused, or
 * undefined when it is taken.
 */
export function reportBudget(now: () => number = Date.now): (bytes: number) => string | undefined {
  let reports = REPORT_BURST;
  let bytesLeft = REPORT_BYTES_BURST;
  let last = now();
  let dayStart = last;
  let today = 0;
  return (bytes) => {
    const t = now();
    const seconds = (t - last) / 1000;
    reports = Math.min(REPORT_BURST, reports + seconds * REPORTS_PER_SECOND);
    bytesLeft = Math.min(REPORT_BYTES_BURST, bytesLeft + seconds * REPORT_BYTES_PER_SECOND);
    last = t;
    if (t - dayStart >= 86_400_000) {
      dayStart = t;
      today = 0;
    }
    if (reports < 1) return `at most ${REPORTS_PER_SECOND} reports per second are logged`;
    if (bytesLeft < bytes) return `at most ${REPORT_BYTES_PER_SECOND} bytes of reports per second are logged`;
    if (today + bytes > REPORT_BYTES_PER_DAY)
      return `at most ${REPORT_BYTES_PER_DAY} bytes of reports per day are logged`;
    reports -= 1;
    bytesLeft -= bytes;
    today += bytes;
    return undefined;
  };
}

/** Serves one connection: line framing, size limit, idle timeout, the shared report budget. */
function serve(
  socket: net.Socket,
  logs: Pick<LogStore, 'append'>,
  take: (bytes: number) => string | undefined,
): void {
  const peer = socket.remoteAddress;
  const source = peer?.includes(':') ? `[${peer}]:${socket.remotePort}` : `${peer}:${socket.remotePort}`;
  if (!isLoopback(peer)) {
    const error = {
      code: ErrorCode.POPUP_NOT_LOCAL,
      message: `reports are accepted from this host only, not from ${peer}`,
    };
    write(socket, answerLine({ ok: false, error }), true);
    return;
  }
  socket.setTimeout(IDLE_MS, () => socket.destroy());
  const deadline = setTimeout(() => socket.destroy(), CONNECTION_MS);
  deadline.unref();
  // The first line must come within LINE_MS of the accept, and a line begun must end within LINE_MS.
  let lineTimer: NodeJS.Timeout | undefined = setTimeout(() => socket.destroy(), LINE_MS);
  lineTimer.unref();
  socket.once('close', () => {
    clearTimeout(deadline);
    clearTimeout(lineTimer);
  });
  let pending: Buffer = Buffer.alloc(0);
  let lines = 0;
  socket.on('data', (chunk: Buffer) => {
    const before = lines;
    pending = pending.length === 0 ? chunk : Buffer.concat([pending, chunk]);
    try {
      readLines();
    } finally {
      if (lines > before || pending.length === 0) {
        clearTimeout(lineTimer);
        lineTimer = undefined;
      }
      if (pending.length > 0 && lineTimer === undefined && !socket.destroyed) {
        lineTimer = setTimeout(() => socket.destroy(), LINE_MS);
        lineTimer.unref();
      }
    }
  });
  const readLines = () => {
    for (;;) {
      const nl = pending.indexOf(0x0a);
      if (nl < 0) break;
      if (nl > MAX_REPORT_LINE) {
        tooLong();
        return;
      }
      const line = pending.subarray(0, nl).toString('utf8').replace(/\r$/, '');
      pending = pending.subarray(nl + 1);
      lines++;
      if (line.trim() === '') continue;
      const parsed = parseReportLine(line, source);
      if (!parsed.ok) {
        write(socket, answerLine(parsed.answer));
        continue;
      }
      const refused = take(Buffer.byteLength(JSON.stringify(parsed.item)));
      if (refused !== undefined) {
        const message = `too many reports: ${refused}; this one was not`;
        write(socket, answerLine({ ok: false, error: { code: ErrorCode.POPUP_THROTTLED, message } }));
        continue;
      }
      const item = logs.append(parsed.item);
      write(socket, answerLine({ ok: true, seq: item.seq }));
      // A reader that does not take its answers is not answered further (its backlog stays bounded).
      if (socket.writableLength > 64 * 1024) {
        socket.destroy();
        return;
      }
    }
    if (pending.length > MAX_REPORT_LINE) tooLong();
  };
  const tooLong = () => {
    pending = Buffer.alloc(0);
    socket.removeAllListeners('data');
    write(
      socket,
      answerLine(invalid(`the report line is longer than ${MAX_REPORT_LINE} bytes; connection closed`)),
      true,
    );
  };
}

/** Writes (and with `end`, ends) unless the peer is gone already: a reset peer is not an error. */
function write(socket: net.Socket, text: string, end = false): void {
  if (socket.destroyed || !socket.writable) return;
  if (end) socket.end(text);
  else socket.write(text);
}

/** The running endpoint. */
export interface PopupEndpoint {
  /** The port listened on (useful with port 0). */
  readonly port: number;
  /** Addresses actually bound (127.0.0.1, and ::1 when IPv6 is there). */
  readonly addresses: readonly string[];
  stop(): Promise<void>;
}

/**
 * Listens on `hosts` (default 127.0.0.1 and ::1) at `port`. A missing ::1 (IPv6 disabled) is skipped;
 * any other listen error rejects (e.g. EADDRINUSE), with the servers already bound closed again.
 */
export async function startPopupEndpoint(options: {
  readonly port: number;
  readonly logs: Pick<LogStore, 'append'>;
  readonly hosts?: readonly string[];
}): Promise<PopupEndpoint> {
  const hosts = options.hosts ?? ['127.0.0.1', '::1'];
  const servers: net.Server[] = [];
  const addresses: string[] = [];
  const sockets = new Set<net.Socket>();
  const take = reportBudget();
  let port = options.port;
  const close = async () => {
    for (const s of sockets) s.destroy();
    await Promise.all(servers.map((s) => new Promise<void>((resolve) => s.close(() => resolve()))));
  };
  for (const host of hosts) {
    const server = net.createServer((socket) => {
      // First of all: a peer that resets at once (connect-then-RST, a port scan) must not stop the engine.
      socket.on('error', () => socket.destroy());
      if (sockets.size >= MAX_CONNECTIONS) {
        socket.destroy();
        return;
      }
      sockets.add(socket);
      socket.once('close', () => sockets.delete(socket));
      serve(socket, options.logs, take);
    });
    server.on('error', () => {});
    try {
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        server.listen({ host, port, ipv6Only: host.includes(':') }, () => {
          server.off('error', reject);
          resolve();
        });
      });
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (host === '::1' && (code === 'EADDRNOTAVAIL' || code === 'EAFNOSUPPORT')) continue;
      await close();
      throw e;
    }
    servers.push(server);
    addresses.push(host);
    port = (server.address() as net.AddressInfo).port;
  }
  return { port, addresses, stop: close };
}
