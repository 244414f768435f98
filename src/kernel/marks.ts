/**
 * The packet-mark bits Warden owns. The nft ruleset, the iptables NFQUEUE rule
 * and the engine's queue consumer all agree on these values: the queue
 * consumer answers "reject" with NF_ACCEPT and `(mark & ~MARK_MASK) | MARK_REJECT`.
 * Other bits of the mark belong to others and are preserved.
 */

/** Warden's bits of the packet mark (bits 24-27). */
export const MARK_MASK = 0x0f000000;
/** Set by Warden's chains on a new connection's packet that userspace must decide; the NFQUEUE rule matches it. */
export const MARK_QUEUE = 0x01000000;
/** Set by the kernel rules or by the engine's verdict: the reject chain refuses the packet (TCP reset / ICMP). */
export const MARK_REJECT = 0x02000000;

/**
 * Set on a socket's mark by the connect BPF program when the verdict cache holds an allow for its
 * connection (native/bpf_attr.c, docs/attribution.md "Verdict cache"): the ruleset accepts that new
 * TCP connection where it would otherwise queue it, while the engine lives (LIVE_SET in
 * ruleset-guards.ts). Setting a socket's mark needs CAP_NET_ADMIN or CAP_NET_RAW, and the cache's
 * setsockopt guard (native/bpf_guard.c) refuses this bit to everyone.
 */
export const MARK_DECIDED = 0x04000000;

/** Lower-case hex with 0x, 8 digits: how nft and iptables texts spell a mark. */
export function markHex(value: number): string {
  return `0x${(value >>> 0).toString(16).padStart(8, '0')}`;
}

/** The mark with Warden's bits replaced by `bits` (what the engine puts on a verdict). */
export function withWardenBits(mark: number, bits: number): number {
  return ((mark & ~MARK_MASK) | (bits & MARK_MASK)) >>> 0;
}
