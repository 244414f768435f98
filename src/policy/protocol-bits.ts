/** Protocols as bits, so a rule's protocols are one mask and a test is one AND. */
import type { Protocol } from './rule.js';

export const PROTO_TCP = 1;
export const PROTO_UDP = 2;
export const PROTO_ICMP = 4;
export const PROTO_OTHER = 8;

export const PROTOCOL_MASK: Record<Protocol, number> = {
  tcp: PROTO_TCP,
  udp: PROTO_UDP,
  'tcp+udp': PROTO_TCP | PROTO_UDP,
  icmp: PROTO_ICMP,
  any: PROTO_TCP | PROTO_UDP | PROTO_ICMP | PROTO_OTHER,
};

/** The bit of a connection's protocol. */
export function protocolBit(p: 'tcp' | 'udp' | 'icmp' | 'other'): number {
  return p === 'tcp' ? PROTO_TCP : p === 'udp' ? PROTO_UDP : p === 'icmp' ? PROTO_ICMP : PROTO_OTHER;
}
