/**
 * Parses the first bytes of a queued or logged packet (IPv4 or IPv6 header, simple IPv6 extension
 * headers skipped, then the TCP/UDP ports) into the facts the engine decides on. Pure: no I/O, and
 * no input makes it throw; truncated or garbage bytes give `{ ok: false, reason }`.
 */
import { formatIpv4, formatIpv6 } from '../ip/address.js';

export type TransportProtocol = 'tcp' | 'udp' | 'icmp' | 'other';

export interface PacketHeader {
  readonly version: 4 | 6;
  readonly protocol: TransportProtocol;
  /** IP protocol number of the transport header (6 tcp, 17 udp, 1 icmp, 58 icmpv6, ...). */
  readonly protocolNumber: number;
  readonly source: string;
  readonly destination: string;
  /** 0 for protocols without ports, or when the transport header was not copied. */
  readonly sourcePort: number;
  readonly destinationPort: number;
  /** TCP flags byte (FIN 0x01, SYN 0x02, RST 0x04, PSH 0x08, ACK 0x10, ...), for TCP only. */
  readonly tcpFlags?: number;
  /** True when the packet is a non-first IPv4 fragment (no transport header in it). */
  readonly fragment?: boolean;
}

export type ParsedPacket = { ok: true; packet: PacketHeader } | { ok: false; reason: string };

export const TCP_FLAGS = { FIN: 0x01, SYN: 0x02, RST: 0x04, PSH: 0x08, ACK: 0x10, URG: 0x20 } as const;

/** IPv6 extension headers that have the generic (next header, length in 8-octet units) layout. */
const IPV6_EXTENSIONS = new Set([0, 43, 60]); // hop-by-hop, routing, destination options
const IPV6_FRAGMENT = 44;
const MAX_EXTENSIONS = 8;

function fail(reason: string): ParsedPacket {
  return { ok: false, reason };
}

function protocolName(n: number): TransportProtocol {
  if (n === 6) return 'tcp';
  if (n === 17) return 'udp';
  if (n === 1 || n === 58) return 'icmp';
  return 'other';
}

function ipv4Text(b: Uint8Array, at: number): string {
  return formatIpv4(((b[at]! << 24) | (b[at + 1]! << 16) | (b[at + 2]! << 8) | b[at + 3]!) >>> 0);
}

function ipv6Text(b: Uint8Array, at: number): string {
  let value = 0n;
  for (let i = 0; i < 16; i++) value = (value << 8n) | BigInt(b[at + i]!);
  return formatIpv6(value);
}

/** The header of a packet whose addresses are read; its ports when it is TCP or UDP (one object, no copies). */
function withTransport(
  b: Uint8Array,
  at: number,
  version: 4 | 6,
  source: string,
  destination: string,
  fragment: boolean,
  protocolNumber: number,
): ParsedPacket {
  const protocol = protocolName(protocolNumber);
  const ported = (protocol === 'tcp' || protocol === 'udp') && !fragment;
  if (ported && b.length < at + 4)
    return fail(`${protocol} header truncated: ${b.length - at} of 4 port bytes copied`);
  if (ported && protocol === 'tcp' && b.length < at + 14)
    return fail(`tcp header truncated: ${b.length - at} of 14 bytes up to the flags`);
  const packet: { -readonly [K in keyof PacketHeader]: PacketHeader[K] } = {
    version,
    source,
    destination,
    protocol,
    protocolNumber,
    sourcePort: ported ? (b[at]! << 8) | b[at + 1]! : 0,
    destinationPort: ported ? (b[at + 2]! << 8) | b[at + 3]! : 0,
  };
  if (fragment) packet.fragment = true;
  if (ported && protocol === 'tcp') packet.tcpFlags = b[at + 13]!;
  return { ok: true, packet };
}

function parseIpv4(b: Uint8Array): ParsedPacket {
  if (b.length < 20) return fail(`IPv4 header truncated: ${b.length} of 20 bytes`);
  const headerLength = (b[0]! & 0x0f) * 4;
  if (headerLength < 20) return fail(`IPv4 header length ${headerLength} is below 20`);
  if (b.length < headerLength) return fail(`IPv4 header truncated: ${b.length} of ${headerLength} bytes`);
  const fragmentOffset = ((b[6]! & 0x1f) << 8) | b[7]!;
  return withTransport(b, headerLength, 4, ipv4Text(b, 12), ipv4Text(b, 16), fragmentOffset !== 0, b[9]!);
}

function parseIpv6(b: Uint8Array): ParsedPacket {
  if (b.length < 40) return fail(`IPv6 header truncated: ${b.length} of 40 bytes`);
  let next = b[6]!;
  let at = 40;
  let fragment = false;
  for (let i = 0; i <= MAX_EXTENSIONS; i++) {
    if (next === IPV6_FRAGMENT) {
      if (b.length < at + 8) return fail('IPv6 fragment header truncated');
      fragment = fragment || ((b[at + 2]! << 5) | (b[at + 3]! >> 3)) !== 0;
      next = b[at]!;
      at += 8;
    } else if (IPV6_EXTENSIONS.has(next)) {
      if (b.length < at + 2) return fail(`IPv6 extension header ${next} truncated`);
      const nextAt = at + (b[at + 1]! + 1) * 8;
      next = b[at]!;
      at = nextAt;
    } else {
      return withTransport(b, at, 6, ipv6Text(b, 8), ipv6Text(b, 24), fragment, next);
    }
  }
  return fail(`more than ${MAX_EXTENSIONS} IPv6 extension headers`);
}

/** Parses an IP packet's first bytes; never throws. */
export function parsePacket(bytes: Uint8Array): ParsedPacket {
  if (bytes.length === 0) return fail('empty packet');
  const version = bytes[0]! >> 4;
  if (version === 4) return parseIpv4(bytes);
  if (version === 6) return parseIpv6(bytes);
  return fail(`not an IP packet: version ${version}`);
}
