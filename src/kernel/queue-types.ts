/**
 * The packets of NFQUEUE and NFLOG as the kernel addon gives them (src/kernel/native.ts opens the
 * queue and the log subscription): what a packet carries, the verdicts, and the counters.
 */
/** What the kernel tells about a packet it queues or logs. */
export interface PacketMeta {
  /** EtherType of the packet: 0x0800 IPv4, 0x86dd IPv6. */
  readonly hwProtocol: number;
  /** Netfilter hook: 0 prerouting, 1 input, 2 forward, 3 output, 4 postrouting. */
  readonly hook: number;
  readonly mark: number;
  /** Owner of the sending/receiving socket, when the kernel knows one (NFQA_CFG_F_UID_GID). */
  readonly uid?: number;
  readonly gid?: number;
  /** Interface indexes. */
  readonly indev?: number;
  readonly outdev?: number;
  /** The first copy-range bytes of the packet, starting at the IP header (parse with packet.ts). */
  readonly payload: Buffer;
}

/** A packet the kernel queued and holds until verdict() is called for its id. */
export interface QueuedPacket extends PacketMeta {
  readonly id: number;
}

/** A packet logged by an nft `log group G prefix "..."` rule. */
export interface LoggedPacket extends PacketMeta {
  readonly prefix: string;
}

export type Verdict = 'accept' | 'drop';

/**
 * A full queue always drops (NFQA_CFG_F_FAIL_OPEN is never set): a packet nobody decided is never
 * accepted. A dropped SYN or DNS query is sent again by its sender and then judged.
 */
export interface QueueOptions {
  /** Most packets the kernel holds for this queue (default: the kernel's, 1024). */
  readonly maxLength?: number;
  /** Bytes of the netlink receive buffer (default 8 MiB; SO_RCVBUFFORCE as root). */
  readonly receiveBuffer?: number;
  /** Bytes of each packet copied to userspace (default 128: enough for IP + TCP/UDP headers). */
  readonly copyRange?: number;
}

export interface QueueStats {
  /** Packets received from the kernel. */
  readonly received: number;
  /** Verdicts sent to the kernel. */
  readonly verdicts: number;
  /** Datagrams they went in (verdicts given during one read of the queue go together). */
  readonly datagrams: number;
  /** Datagrams of verdicts the kernel did not take (sendto failed); their packets stay queued until unbind drops them. */
  readonly sendErrors: number;
  /** Verdicts in those datagrams. */
  readonly unsent: number;
  /** Times the socket buffer overflowed: the kernel dropped messages for us (ENOBUFS). */
  readonly enobufs: number;
  /** Datagrams larger than our receive buffer (should stay 0). */
  readonly truncated: number;
  /** Requests the kernel refused afterwards, e.g. a verdict for an unknown or repeated id. */
  readonly kernelErrors: number;
}

export interface PacketQueue {
  readonly queueNumber: number;
  /**
   * Decides one packet; `mark` sets the packet mark (e.g. for a later `meta mark X reject` rule).
   * Given while the queue's packets are handed out (the callback or the promises it settles), it
   * shares a datagram with the others of that read, sent once the oldest waited 50 us or the read
   * ends; otherwise it is sent at once.
   */
  verdict(id: number, verdict: Verdict, mark?: number): void;
  stats(): QueueStats;
  /** Unbinds the queue and stops polling; packets still held are then handled by the kernel. */
  close(): void;
}

export interface LogStats {
  readonly received: number;
  readonly enobufs: number;
  readonly truncated: number;
}

export interface LogSubscription {
  readonly group: number;
  stats(): LogStats;
  close(): void;
}
