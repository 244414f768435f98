/**
 * Typed access to Warden's kernel addon (native/*.c, built to build/Release/warden_kernel.node):
 * an NFQUEUE queue whose packets are decided in JS (at once or later), an NFLOG subscription for
 * packets the ruleset blocked itself, exact sock_diag lookups of the socket behind a packet, and
 * cgroup BPF programs that record which process made each socket (attribution without /proc).
 * Everything works in the network namespace of the calling process (the BPF programs in a cgroup).
 */
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { ErrorCode, WardenError } from '../errors.js';
import { type AttributionLookups, ConnectSlots, type SlotNative } from './connect-slots.js';
import type { ProcessRead, RecordedExecutable } from './socket-lookup.js';

export type * from './queue-types.js';

import type {
  LoggedPacket,
  LogStats,
  LogSubscription,
  PacketMeta,
  PacketQueue,
  QueuedPacket,
  QueueOptions,
  QueueStats,
  Verdict,
} from './queue-types.js';

export interface SocketOwner {
  /** Inode of the socket: the target of /proc/<pid>/fd/N links `socket:[inode]`. */
  readonly inode: number;
  readonly uid: number;
  /** Kernel socket state (TCP: 1 established, 2 syn-sent, 10 listen; UDP: 7 unconnected, 1 connected). */
  readonly state: number;
  /** The socket's cookie in decimal (what `ss -e` shows as `sk:`, and the BPF programs' key). */
  readonly cookie?: string;
  /** What the BPF programs recorded for the socket (lookups given a BpfAttribution that has it). */
  readonly process?: RecordedProcess;
}

/** Who made a socket, as recorded by the cgroup BPF programs when it was created, connected or sent. */
export interface RecordedProcess {
  /** Process id (tgid) in the initial pid namespace. */
  readonly pid: number;
  /** Thread id. */
  readonly tid: number;
  /** Real uid and gid of the process then. */
  readonly uid: number;
  readonly gid: number;
  /** CLOCK_BOOTTIME (ns) when recorded: a process that started later is not the one that made it. */
  readonly bootNs: number;
  /** The thread's name then (at most 15 bytes). */
  readonly comm: string;
  /**
   * The process's command line then, NUL-separated as in /proc/PID/cmdline, when it fits in the
   * record (256 bytes) and the kernel's type information gave the offsets to find it.
   */
  readonly commandLine?: string;
  /** Which program made the record: at the socket's creation, its connect, or a send to an address. */
  readonly hook?: 'create' | 'connect' | 'sendmsg';
  /** Effective uid then (as /proc/PID/status shows it); absent when it could not be read. */
  readonly euid?: number;
  /** The parent process's tgid then. */
  readonly parentPid?: number;
  /** The executable file's identity then (RecordedExecutable); absent when it could not be read. */
  readonly executable?: RecordedExecutable;
}

/** The attached attribution programs and their map (openBpfAttribution). */
export interface BpfAttribution {
  /** The cgroup the programs are attached to (its processes and descendants are recorded). */
  readonly cgroup: string;
  /** Records in the map now (walks it: for tests and statistics, not the hot path). */
  entries(): number;
  /** lookupSocket() that also returns what the programs recorded for the socket. */
  lookupSocket: typeof lookupSocket;
  /** The verdict cache's maps (docs/attribution.md, "Verdict cache"); a string says why there is none. */
  readonly cache: BpfVerdictCache | string;
  /** lookupSocket() without the connect-time slots (sock_diag, then the record by cookie): benches, tests. */
  lookupSocketByDiag: typeof lookupSocket;
  /** Which way lookupSocket() found sockets (docs/attribution.md, "Connect-time slots"). */
  lookups(): AttributionLookups;
  /** Detaches the programs and frees the map (the kernel also does it when this process ends). */
  close(): void;
}

/** The kernel side of the verdict cache (native/bpf_cache.c). */
export interface BpfVerdictCache {
  /** Inserts a key (src/kernel/verdict-cache-key.ts) with the engine's number for its decision; false when it is cached already. */
  insert(key: Buffer, id: number): boolean;
  /**
   * The generation the programs put in keys from now on (entries of other generations are never
   * found); connections of the process `engineTgid` (the engine: a node program the key cannot tell
   * from others) always miss.
   */
  setGeneration(generation: number, engineTgid: number): void;
  stats(): { generation: number; hits: number; misses: number; dropped: number };
  /** Up to `max` hit events (32 bytes each: pid_tgid, boot_ns, socket cookie, id, uid) and CLOCK_BOOTTIME now. */
  drain(max: number): { events: Buffer; bootNs: number };
  /**
   * Calls `onEvents` once when hit events wait in the ring (at once if some wait now); `arm()`
   * again after draining for the next call. An idle engine sleeps instead of looking on a timer
   * (native/bpf_cache.c, the watch of the ring). It does not keep the event loop alive.
   */
  watch(onEvents: () => void): { arm(): void; close(): void };
}

export interface UdpFlowStats {
  /** Bound UDP sockets the kernel destroyed (seen over sock_diag's destroy groups). */
  readonly sockets: number;
  /** Conntrack entries deleted because their socket was gone. */
  readonly deleted: number;
  /** Unconnected sockets, whose flows needed a conntrack dump. */
  readonly dumps: number;
  /** ctnetlink requests or dumps the kernel refused. */
  readonly failures: number;
  /** Times destroy notices were lost (socket buffer overflow). */
  readonly enobufs: number;
}

export interface UdpFlowReaper {
  stats(): UdpFlowStats;
  close(): void;
}

/** What a table dump reads (nft_counters.c): rule counters (none given), element counts, or names. */
type Mode = 'counts' | 'names';

interface Addon extends SlotNative {
  /** The callback gets the packet's fields as arguments (cheaper than an object made through N-API). */
  queueOpen(
    n: number,
    copyRange: number,
    maxLength: number,
    receiveBuffer: number,
    cb: (
      id: number,
      hwProtocol: number,
      hook: number,
      mark: number,
      uid: number | undefined,
      gid: number | undefined,
      indev: number | undefined,
      outdev: number | undefined,
      payload: Buffer,
    ) => void,
  ): unknown;
  queueVerdict(handle: unknown, id: number, accept: boolean, mark?: number): void;
  queueStats(handle: unknown): QueueStats;
  queueClose(handle: unknown): void;
  logOpen(group: number, copyRange: number, cb: (p: LoggedPacket) => void): unknown;
  logStats(handle: unknown): LogStats;
  logClose(handle: unknown): void;
  udpFlowsOpen(): unknown;
  udpFlowsStats(handle: unknown): UdpFlowStats;
  udpFlowsClose(handle: unknown): void;
  socketLookup(
    protocol: number,
    family: number,
    src: string,
    sport: number,
    dst: string,
    dport: number,
    bpf: unknown,
    numbers: Float64Array,
  ): RawLookup | null;
  bpfAttributionOpen(cgroup: string, maxEntries: number, cacheEntries: number, probeReads?: boolean): unknown;
  bpfCacheInsert(handle: unknown, key: Buffer, id: number): boolean;
  bpfCacheGeneration(handle: unknown, generation: number, engineTgid: number): void;
  bpfCacheStats(handle: unknown): readonly [number, number, number, number] | string;
  bpfCacheDrain(handle: unknown, max: number): readonly [Buffer, number];
  bpfCacheWatch(handle: unknown, onEvents: () => void): unknown;
  bpfCacheWatchArm(watch: unknown): void;
  bpfCacheWatchClose(watch: unknown): void;
  bpfAttributionEntries(handle: unknown): number;
  bpfAttributionClose(handle: unknown): void;
  procProcess(pid: number, learn: boolean): readonly [string?, string?, number?, string?, number?] | null;
  interfaceName(index: number): string | null;
  counterDump(table: string, sets: readonly string[], mode?: Mode): Promise<ArrayBuffer>;
}

/** Where the addon is built: <repo>/build/Release (this file is <repo>/dist/src/kernel/native.js). */
export const ADDON_PATH = fileURLToPath(
  new URL('../../../build/Release/warden_kernel.node', import.meta.url),
);

let loaded: Addon | undefined;

function addon(): Addon {
  if (loaded !== undefined) return loaded;
  if (!existsSync(ADDON_PATH))
    throw new WardenError(
      ErrorCode.NATIVE_MISSING,
      `native addon not built: run scripts/setup.sh (${ADDON_PATH})`,
      {
        suggestion: 'bash scripts/setup.sh',
      },
    );
  try {
    loaded = createRequire(import.meta.url)(ADDON_PATH) as Addon;
  } catch (cause) {
    throw new WardenError(
      ErrorCode.NATIVE_MISSING,
      `native addon does not load: run scripts/setup.sh (${ADDON_PATH})`,
      {
        cause,
        suggestion: 'rm -rf build && bash scripts/setup.sh',
      },
    );
  }
  return loaded;
}

/** True when the addon is built and loads. */
export function nativeAvailable(): boolean {
  try {
    addon();
    return true;
  } catch {
    return false;
  }
}

/** Converts the addon's own errors (which carry our codes) into WardenErrors. */
function kernelCall<T>(code: ErrorCode, what: string, call: () => T): T {
  try {
    return call();
  } catch (cause) {
    if (cause instanceof WardenError) throw cause;
    const message = cause instanceof Error ? cause.message : String(cause);
    throw new WardenError(code, `${what}: ${message}`, { cause });
  }
}

function checkNumber(value: number, max: number, what: string, code: ErrorCode): void {
  if (!Number.isInteger(value) || value < 0 || value > max)
    throw new WardenError(code, `${what} must be an integer from 0 to ${max}, got ${value}`);
}

/** Binds NFQUEUE queue `queueNumber` in this process's namespace; onPacket runs on the event loop. */
export function openQueue(
  queueNumber: number,
  options: QueueOptions,
  onPacket: (packet: QueuedPacket) => void,
): PacketQueue {
  const code = ErrorCode.KERNEL_QUEUE;
  checkNumber(queueNumber, 65535, 'queue number', code);
  checkNumber(options.maxLength ?? 0, 2 ** 32 - 1, 'queue maxLength', code);
  checkNumber(options.copyRange ?? 128, 65535, 'queue copyRange', code);
  checkNumber(options.receiveBuffer ?? 0, 2 ** 31 - 1, 'queue receiveBuffer', code);
  const native = addon();
  const handle = kernelCall(code, `cannot open NFQUEUE queue ${queueNumber}`, () =>
    native.queueOpen(
      queueNumber,
      options.copyRange ?? 128,
      options.maxLength ?? 0,
      options.receiveBuffer ?? 0,
      (id, hwProtocol, hook, mark, uid, gid, indev, outdev, payload) => {
        // Absent attributes stay absent (not undefined-valued): the same shape as before.
        const packet: QueuedPacket = { id, hwProtocol, hook, mark, payload };
        const open = packet as { -readonly [K in keyof QueuedPacket]: QueuedPacket[K] };
        if (uid !== undefined) open.uid = uid;
        if (gid !== undefined) open.gid = gid;
        if (indev !== undefined) open.indev = indev;
        if (outdev !== undefined) open.outdev = outdev;
        onPacket(packet);
      },
    ),
  );
  return {
    queueNumber,
    verdict(id, verdict, mark) {
      if (mark !== undefined) checkNumber(mark, 2 ** 32 - 1, 'mark', code);
      // Called for every queued packet: no closure or message text unless it fails.
      try {
        native.queueVerdict(handle, id, verdict === 'accept', mark);
      } catch (cause) {
        const message = cause instanceof Error ? cause.message : String(cause);
        throw new WardenError(code, `verdict for packet ${id}: ${message}`, { cause });
      }
    },
    stats: () => native.queueStats(handle),
    close: () => native.queueClose(handle),
  };
}

/** Subscribes to NFLOG group `group` (packets logged by `log group G` rules). */
export function openLog(
  group: number,
  onItem: (packet: LoggedPacket) => void,
  options: { copyRange?: number } = {},
): LogSubscription {
  const code = ErrorCode.KERNEL_LOG;
  checkNumber(group, 65535, 'log group', code);
  const native = addon();
  const handle = kernelCall(code, `cannot subscribe to NFLOG group ${group}`, () =>
    native.logOpen(group, options.copyRange ?? 128, onItem),
  );
  return { group, stats: () => native.logStats(handle), close: () => native.logClose(handle) };
}

/**
 * Finds the local socket that sends from src:srcPort to dst:dstPort (the packet's own addresses,
 * src being local), or null. TCP: one exact lookup (also finds SYN_SENT sockets). UDP: the kernel
 * looks UDP sockets up like a receiving packet, so the query is asked with the ends swapped, which
 * also finds unconnected sockets bound to a wildcard address.
 */
export function lookupSocket(
  protocol: 'tcp' | 'udp',
  family: 4 | 6,
  srcAddr: string,
  srcPort: number,
  dstAddr: string,
  dstPort: number,
): SocketOwner | null {
  return lookupWith(undefined, undefined, protocol, family, srcAddr, srcPort, dstAddr, dstPort);
}

function lookupWith(
  bpf: unknown,
  slots: ConnectSlots | undefined,
  protocol: 'tcp' | 'udp',
  family: 4 | 6,
  srcAddr: string,
  srcPort: number,
  dstAddr: string,
  dstPort: number,
): SocketOwner | null {
  const native = addon();
  try {
    // A TCP connection this host made: its connect-time slot, read from memory (no system call).
    const slot = slots?.find(protocol, family, srcAddr, srcPort, dstAddr, dstPort, NUMBERS);
    if (slot) return slot;
    if (protocol === 'udp')
      return ownerOf(native.socketLookup(17, family, dstAddr, dstPort, srcAddr, srcPort, bpf, NUMBERS));
    const found = ownerOf(native.socketLookup(6, family, srcAddr, srcPort, dstAddr, dstPort, bpf, NUMBERS));
    // A SYN whose four-tuple is still held by a connection in TIME_WAIT (the server closed first
    // and the client reuses its port), or by a request socket (a retransmitted SYN), finds that
    // socket, which belongs to no process (inode 0): the listener takes the connection, so the
    // listener is its owner.
    if (
      found !== null &&
      found.inode === 0 &&
      (found.state === TCP_TIME_WAIT || found.state === TCP_NEW_SYN_RECV)
    )
      return ownerOf(
        native.socketLookup(6, family, srcAddr, srcPort, family === 6 ? '::' : '0.0.0.0', 0, bpf, NUMBERS),
      );
    return found;
  } catch (cause) {
    // The message is only built on failure: this is the verdict path.
    return kernelCall(
      ErrorCode.KERNEL_SOCKET_LOOKUP,
      `sock_diag lookup ${protocol} ${srcAddr}:${srcPort} -> ${dstAddr}:${dstPort}`,
      () => {
        throw cause;
      },
    );
  }
}

/**
 * socketLookup's numbers (native/sock_diag.c): inode, uid, state, 1 with a record, then pid, tid,
 * uid, gid, bootNs, hook, euid, parentPid, the executable's mount id and file system magic (NaN
 * where not read). One array for every call: the lookup is synchronous and ownerOf copies them out.
 */
const NUMBERS = new Float64Array(14);

/** socketLookup's strings: cookie, then with a record comm, commandLine, the executable's id and inode. */
type RawLookup = readonly [string, string?, string?, string?, string?];

const HOOKS = ['create', 'connect', 'sendmsg'] as const;

/** The objects of a socketLookup answer, of one shape each (absent fields are left out). */
function ownerOf(s: RawLookup | null): SocketOwner | null {
  if (s === null) return null;
  const n = NUMBERS;
  if (n[3] !== 1) return { inode: n[0]!, uid: n[1]!, state: n[2]!, cookie: s[0] };
  const process: Mutable<RecordedProcess> = {
    pid: n[4]!,
    tid: n[5]!,
    uid: n[6]!,
    gid: n[7]!,
    bootNs: n[8]!,
    comm: s[1]!,
  };
  if (s[2] !== undefined) process.commandLine = s[2];
  const hook = HOOKS[n[9]!];
  if (hook !== undefined) process.hook = hook;
  if (!Number.isNaN(n[10])) process.euid = n[10]!;
  if (!Number.isNaN(n[11])) process.parentPid = n[11]!;
  if (s[3] !== undefined) process.executable = { id: s[3], mount: n[12]!, inode: s[4]!, fsMagic: n[13]! };
  return { inode: n[0]!, uid: n[1]!, state: n[2]!, cookie: s[0], process };
}

type Mutable<T> = { -readonly [K in keyof T]: T[K] };

/** TCP states (include/net/tcp_states.h) of sockets that no process holds. */
const TCP_TIME_WAIT = 6;
const TCP_NEW_SYN_RECV = 12;

/**
 * Loads the attribution programs (native/bpf_attr.c) and attaches them to the cgroup2 directory
 * `cgroup` (the engine: the cgroup2 root; tests: a cgroup they made). From then on every inet socket
 * that a process in it creates, connects or sends from is recorded in an LRU map of `maxEntries`
 * (default 65,536) records; a record is deleted when its socket is released. With `connectSlots`
 * (default on) a TCP connect also fills a slot that lookupSocket reads first (connect-slots.ts;
 * where the kernel refuses them, lookups() says why; `probeReads`, tests: as without direct loads).
 * Throws WARDEN_E_KERNEL_BPF when the kernel cannot (no BPF, verifier, not a cgroup2 directory).
 */
export function openBpfAttribution(
  cgroup: string,
  options: { maxEntries?: number; cacheEntries?: number; connectSlots?: boolean; probeReads?: boolean } = {},
): BpfAttribution {
  const code = ErrorCode.KERNEL_BPF;
  const maxEntries = options.maxEntries ?? 65_536;
  checkNumber(maxEntries, 2 ** 24, 'BPF attribution maxEntries', code);
  if (maxEntries === 0) throw new WardenError(code, 'BPF attribution maxEntries must be at least 1');
  const native = addon();
  const handle = kernelCall(code, `cannot attach the BPF attribution programs to ${cgroup}`, () =>
    native.bpfAttributionOpen(cgroup, maxEntries, options.cacheEntries ?? 0, options.probeReads ?? false),
  );
  const slots = new ConnectSlots(native, cgroup, handle, options.connectSlots ?? true);
  let open = true;
  const stats = native.bpfCacheStats(handle);
  const call = <T>(what: string, f: () => T): T => {
    if (!open) throw new WardenError(code, `the verdict cache is closed (${what})`);
    return kernelCall(code, what, f);
  };
  const cache: BpfVerdictCache | string =
    typeof stats === 'string'
      ? options.cacheEntries
        ? stats
        : 'off'
      : {
          insert: (key, id) => call('verdict cache insert', () => native.bpfCacheInsert(handle, key, id)),
          setGeneration: (g, engine) =>
            call('verdict cache generation', () => native.bpfCacheGeneration(handle, g >>> 0, engine >>> 0)),
          stats() {
            const s = call('verdict cache stats', () => native.bpfCacheStats(handle));
            if (typeof s === 'string') throw new WardenError(code, `the verdict cache is gone: ${s}`);
            return { generation: s[0], hits: s[1], misses: s[2], dropped: s[3] };
          },
          drain(max) {
            const [events, bootNs] = call('verdict cache drain', () => native.bpfCacheDrain(handle, max));
            return { events, bootNs };
          },
          watch(onEvents) {
            const w = call('verdict cache watch', () => native.bpfCacheWatch(handle, onEvents));
            return {
              arm: () => kernelCall(code, 'verdict cache watch', () => native.bpfCacheWatchArm(w)),
              close: () => native.bpfCacheWatchClose(w),
            };
          },
        };
  return {
    cgroup,
    cache,
    entries: () => (open ? native.bpfAttributionEntries(handle) : 0),
    lookupSocket: (protocol, family, srcAddr, srcPort, dstAddr, dstPort) =>
      lookupWith(
        open ? handle : undefined,
        open ? slots : undefined,
        protocol,
        family,
        srcAddr,
        srcPort,
        dstAddr,
        dstPort,
      ),
    lookupSocketByDiag: (protocol, family, srcAddr, srcPort, dstAddr, dstPort) =>
      lookupWith(open ? handle : undefined, undefined, protocol, family, srcAddr, srcPort, dstAddr, dstPort),
    lookups: () => slots.lookups(),
    close() {
      slots.close();
      if (open) native.bpfAttributionClose(handle);
      open = false;
    },
  };
}

/**
 * What attribution reads of a new process, in one native call (native/proc_process.c): start time,
 * exe link, effective uid; null when the process is gone. With `learn`, the exe link comes with the
 * identity (mount id, inode) of the file it names, read without a race against an exec: that opens
 * /proc/PID/exe with O_PATH, which on NFS revalidates the file's attributes, so learn only for
 * executables on local file systems (the record's `fsMagic`).
 */
export function readProcess(pid: number, learn: boolean): ProcessRead | null {
  const a = addon().procProcess(pid, learn);
  if (a === null) return null;
  const read: { -readonly [K in keyof ProcessRead]: ProcessRead[K] } = {};
  if (a[0] !== undefined) read.start = a[0];
  if (a[1] !== undefined) read.exe = a[1];
  if (a[1] !== undefined && a[2] !== undefined && a[3] !== undefined)
    read.current = { path: a[1], mount: a[2], inode: a[3] };
  if (a[4] !== undefined) read.euid = a[4];
  return read;
}

/**
 * Deletes the conntrack flows of every UDP socket the kernel destroys in this namespace, so a later
 * socket on the same port starts a new flow that is judged (docs/kernel.md, "UDP flows"). The work
 * runs on a thread of the addon, off the event loop; stats() counts it, failures included.
 */
export function reapUdpFlows(): UdpFlowReaper {
  const native = addon();
  const handle = kernelCall(ErrorCode.KERNEL_QUEUE, 'cannot follow UDP socket destruction', () =>
    native.udpFlowsOpen(),
  );
  return { stats: () => native.udpFlowsStats(handle), close: () => native.udpFlowsClose(handle) };
}

/** Interface names by index, forgotten every second (a rename or a new interface is seen within it). */
const interfaceNames = new Map<number, string | null>();
let interfaceNamesAt = 0;

/**
 * The name of the network interface with this index (NFQUEUE/NFLOG indev, outdev); null when there is
 * none. Asked per queued packet while a rule names interfaces: if_indextoname is a socket, an ioctl
 * and a close each time, so answers are kept for a second.
 */
export function interfaceName(index: number): string | null {
  const now = performance.now();
  if (now - interfaceNamesAt > 1000 || interfaceNames.size > 4096) {
    interfaceNames.clear();
    interfaceNamesAt = now;
  }
  let name = interfaceNames.get(index);
  if (name === undefined) {
    name = addon().interfaceName(index);
    interfaceNames.set(index, name);
  }
  return name;
}

/** Netlink dumps of table inet `table` here, on the libuv pool (nft_counters.c; nft-dumps.ts reads them). */
export function dumpNftTable(table: string, sets: readonly string[], mode?: Mode): Promise<ArrayBuffer> {
  return addon().counterDump(table, sets, mode);
}
