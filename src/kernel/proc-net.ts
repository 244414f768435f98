/**
 * The kernel's socket tables as text (/proc/net/tcp, tcp6, udp, udp6), parsed
 * without I/O, and the search for the socket a connection belongs to. This is
 * the slow, portable way to find a socket's inode and owner uid; the engine's
 * sock_diag lookup does the same in microseconds (attribution.ts takes either).
 *
 * Byte order, the tricky part. The kernel prints each address as 32-bit words
 * with `%08X`, taken straight from memory in the host's byte order:
 * - IPv4: one word. 127.0.0.1 (bytes 7f 00 00 01) prints as `0100007F` on a
 *   little-endian host (x86, arm64) and `7F000001` on a big-endian one.
 * - IPv6: four words, each printed the same way, in address order. ::1 prints
 *   as `00000000000000000000000001000000` on little-endian; ::ffff:127.0.0.1
 *   as `0000000000000000FFFF00000100007F`.
 * - Ports are converted to host order before printing: `1F90` is 8080 on
 *   every host.
 * The caller says which byte order the text was written in (`littleEndian`,
 * default true); attribution.ts passes the running host's.
 */
import type { IpAddress } from '../ip/index.js';

export type SocketProtocol = 'tcp' | 'udp';
export type AddressFamily = 4 | 6;

/** TCP_LISTEN in the `st` column; UDP sockets show 07 (TCP_CLOSE) unconnected, 01 connected. */
export const TCP_LISTEN = 0x0a;

/** One row of a socket table. Addresses keep the table's family: an IPv4-mapped address in tcp6 stays version 6. */
export interface ProcNetEntry {
  readonly protocol: SocketProtocol;
  readonly family: AddressFamily;
  readonly localAddress: IpAddress;
  readonly localPort: number;
  readonly remoteAddress: IpAddress;
  readonly remotePort: number;
  /** Kernel socket state (the `st` column): TCP_* numbers, e.g. 0x0A listen, 0x01 established, 0x02 SYN sent. */
  readonly state: number;
  readonly uid: number;
  /** Socket inode; 0 for sockets no process owns (TIME_WAIT, half-open request sockets). */
  readonly inode: number;
}

export interface ProcNetTableOptions {
  readonly protocol: SocketProtocol;
  readonly family: AddressFamily;
  /** Byte order of the host that wrote the text; default true (x86, arm64). */
  readonly littleEndian?: boolean;
}

export interface ProcNetParse {
  readonly entries: ProcNetEntry[];
  /** One sentence per line that could not be read (`line 3: ...`); such lines are skipped. */
  readonly problems: string[];
}

const MAX_PROBLEMS = 20;
const HEX8 = /^[0-9A-Fa-f]{8}$/;
const HEX32 = /^[0-9A-Fa-f]{32}$/;
const HEX4 = /^[0-9A-Fa-f]{4}$/;
const DECIMAL = /^[0-9]{1,10}$/;

function swap32(word: number): number {
  return (((word & 0xff) << 24) | ((word & 0xff00) << 8) | ((word >>> 8) & 0xff00) | (word >>> 24)) >>> 0;
}

function parseWord(hex: string, littleEndian: boolean): number {
  const word = Number.parseInt(hex, 16) >>> 0;
  return littleEndian ? swap32(word) : word;
}

function parseAddress(hex: string, family: AddressFamily, littleEndian: boolean): IpAddress | null {
  if (family === 4) return HEX8.test(hex) ? { version: 4, value: parseWord(hex, littleEndian) } : null;
  if (!HEX32.test(hex)) return null;
  let value = 0n;
  for (let i = 0; i < 32; i += 8)
    value = (value << 32n) | BigInt(parseWord(hex.slice(i, i + 8), littleEndian));
  return { version: 6, value };
}

function parseEndpoint(
  text: string,
  family: AddressFamily,
  littleEndian: boolean,
): { address: IpAddress; port: number } | null {
  const colon = text.indexOf(':');
  if (colon === -1) return null;
  const port = text.slice(colon + 1);
  if (!HEX4.test(port)) return null;
  const address = parseAddress(text.slice(0, colon), family, littleEndian);
  return address === null ? null : { address, port: Number.parseInt(port, 16) };
}

/**
 * Parses one socket table. Never throws: the header and blank lines are
 * skipped, and a line that does not have the kernel's shape is skipped with
 * a problem naming it.
 */
export function parseProcNet(text: string, options: ProcNetTableOptions): ProcNetParse {
  const { protocol, family } = options;
  const littleEndian = options.littleEndian ?? true;
  const entries: ProcNetEntry[] = [];
  const problems: string[] = [];
  const problem = (line: number, message: string) => {
    if (problems.length < MAX_PROBLEMS) problems.push(`line ${line}: ${message}`);
  };
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const fields = lines[i]!.trim().split(/\s+/);
    if (fields[0] === '' || fields[0] === 'sl') continue;
    if (fields.length < 10 || !/^[0-9]+:$/.test(fields[0]!)) {
      problem(i + 1, 'not a socket table row (expected "N: local remote st ... uid timeout inode")');
      continue;
    }
    const local = parseEndpoint(fields[1]!, family, littleEndian);
    const remote = parseEndpoint(fields[2]!, family, littleEndian);
    if (local === null || remote === null) {
      problem(i + 1, `bad IPv${family} endpoint "${local === null ? fields[1] : fields[2]}"`);
      continue;
    }
    const [, , , st, , , , uid, , inode] = fields as [string, string, string, string, ...string[]];
    if (!/^[0-9A-Fa-f]{2}$/.test(st) || !DECIMAL.test(uid!) || !DECIMAL.test(inode!)) {
      problem(i + 1, `bad state, uid or inode ("${st}", "${uid}", "${inode}")`);
      continue;
    }
    entries.push({
      protocol,
      family,
      localAddress: local.address,
      localPort: local.port,
      remoteAddress: remote.address,
      remotePort: remote.port,
      state: Number.parseInt(st, 16),
      uid: Number(uid),
      inode: Number(inode),
    });
  }
  return { entries, problems };
}

function hexWord(value: number, littleEndian: boolean): string {
  return (littleEndian ? swap32(value) : value >>> 0).toString(16).toUpperCase().padStart(8, '0');
}

function formatAddress(address: IpAddress, littleEndian: boolean): string {
  if (address.version === 4) return hexWord(address.value, littleEndian);
  let out = '';
  for (let shift = 96n; shift >= 0n; shift -= 32n)
    out += hexWord(Number((address.value >> shift) & 0xffffffffn), littleEndian);
  return out;
}

const hex4 = (n: number) => n.toString(16).toUpperCase().padStart(4, '0');

/**
 * Writes entries in the kernel's format (the columns this module reads are
 * exact; timers and queues are zero). For tests and fixtures.
 */
export function formatProcNet(entries: readonly ProcNetEntry[], options: ProcNetTableOptions): string {
  const littleEndian = options.littleEndian ?? true;
  const pad = options.family === 4 ? 13 : 37;
  const header = `  sl  ${'local_address'.padEnd(pad)} ${'rem_address'.padEnd(pad)} st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode`;
  const rows = entries.map((e, i) => {
    const local = `${formatAddress(e.localAddress, littleEndian)}:${hex4(e.localPort)}`;
    const remote = `${formatAddress(e.remoteAddress, littleEndian)}:${hex4(e.remotePort)}`;
    const st = e.state.toString(16).toUpperCase().padStart(2, '0');
    return `${String(i).padStart(4)}: ${local} ${remote} ${st} 00000000:00000000 00:00000000 00000000 ${String(e.uid).padStart(5)} ${'0'.padStart(8)} ${e.inode} 2 0000000000000000 100 0 0 10 0`;
  });
  return `${[header, ...rows].join('\n')}\n`;
}

/** The connection whose socket is wanted, as seen from this host. */
export interface SocketQuery {
  readonly protocol: SocketProtocol;
  readonly direction: 'incoming' | 'outgoing';
  /** IPv4-mapped IPv6 addresses are expected as IPv4 (parseIp does that). */
  readonly localAddress: IpAddress;
  readonly localPort: number;
  readonly remoteAddress: IpAddress;
  readonly remotePort: number;
}

/** The address as the connection sees it: IPv4-mapped IPv6 (::ffff:a.b.c.d) becomes IPv4. */
function unmapped(address: IpAddress): IpAddress {
  if (address.version === 6 && address.value >> 32n === 0xffffn)
    return { version: 4, value: Number(address.value & 0xffffffffn) };
  return address;
}

function sameAddress(a: IpAddress, b: IpAddress): boolean {
  return a.version === b.version && a.value === b.value;
}

function isAny(address: IpAddress): boolean {
  return address.version === 4 ? address.value === 0 : address.value === 0n;
}

/**
 * How well an entry explains the connection; 0 = not at all. Best first:
 * 6 the exact 4-tuple; 5 a socket bound to the local address and port with no
 * peer (a TCP listener for an incoming connection, an unconnected UDP socket);
 * 4 the same on the family's wildcard (0.0.0.0 for IPv4, :: for IPv6);
 * 3 an IPv6 `::` socket taking an IPv4 connection (dual stack).
 */
function score(entry: ProcNetEntry, q: SocketQuery): number {
  if (entry.inode === 0 || entry.protocol !== q.protocol || entry.localPort !== q.localPort) return 0;
  const local = unmapped(entry.localAddress);
  const remote = unmapped(entry.remoteAddress);
  if (entry.remotePort === q.remotePort && sameAddress(remote, q.remoteAddress)) {
    return sameAddress(local, q.localAddress) ? 6 : 0;
  }
  // No exact match: only a socket without a peer can own the connection.
  if (entry.remotePort !== 0 || !isAny(remote)) return 0;
  if (q.protocol === 'tcp' && (q.direction !== 'incoming' || entry.state !== TCP_LISTEN)) return 0;
  if (sameAddress(local, q.localAddress)) return 5;
  if (!isAny(local)) return 0;
  if (local.version === q.localAddress.version) return 4;
  return local.version === 6 && q.localAddress.version === 4 ? 3 : 0;
}

/**
 * Finds the socket that owns a connection among entries of any tables
 * (pass tcp and tcp6 together for IPv4: IPv4 connections of dual-stack
 * sockets are listed in tcp6 with IPv4-mapped addresses). Incoming TCP
 * connections not yet accepted belong to the listener; UDP datagrams of
 * unconnected sockets to the socket bound to the local port. Sockets with
 * inode 0 (TIME_WAIT, request sockets) are never returned.
 */
export function findSocketEntry(entries: readonly ProcNetEntry[], query: SocketQuery): ProcNetEntry | null {
  let best: ProcNetEntry | null = null;
  let bestScore = 0;
  for (const entry of entries) {
    const s = score(entry, query);
    if (s > bestScore) {
      best = entry;
      bestScore = s;
      if (s === 6) break;
    }
  }
  return best;
}

/** The tables to read for a connection: IPv4 connections may sit in the IPv6 table too (dual-stack sockets). */
export function tablesFor(
  protocol: SocketProtocol,
  family: AddressFamily,
): { name: string; options: ProcNetTableOptions }[] {
  const v6 = { name: `${protocol}6`, options: { protocol, family: 6 as const } };
  return family === 6 ? [v6] : [{ name: protocol, options: { protocol, family: 4 as const } }, v6];
}
