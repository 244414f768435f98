/**
 * What attribution starts from: the connection (ConnectionTuple), the socket found for it
 * (SocketOwner, with what the BPF programs recorded when they did) and the two ways to find it, the
 * native sock_diag lookup and the slow /proc/net reader. The identity found (ProcessIdentity) is
 * defined here too; src/kernel/attribution.ts re-exports all of it.
 */
import { readFile } from 'node:fs/promises';
import { endianness } from 'node:os';
import { parseIp } from '../ip/index.js';
import {
  type AddressFamily,
  findSocketEntry,
  type ProcNetEntry,
  parseProcNet,
  type SocketProtocol,
  tablesFor,
} from './proc-net.js';

/** A connection as the engine sees it on this host. Addresses are in text form (`10.0.0.1`, `fd00::1`). */
export interface ConnectionTuple {
  readonly protocol: SocketProtocol;
  readonly family: AddressFamily;
  readonly direction: 'incoming' | 'outgoing';
  readonly localAddress: string;
  readonly localPort: number;
  readonly remoteAddress: string;
  readonly remotePort: number;
}

/** The socket found for a connection. */
export interface SocketOwner {
  readonly inode: number;
  readonly uid: number;
  /** TCP state (include/net/tcp_states.h) as sock_diag gives it; absent from /proc/net lookups. */
  readonly state?: number;
  /** Who made the socket, when the BPF programs recorded it (src/kernel/native.ts, RecordedProcess). */
  readonly process?: RecordedProcess;
}

/** What the cgroup BPF programs recorded about the process that created, connected or sent from a socket. */
export interface RecordedProcess {
  /** Process id (tgid). */
  readonly pid: number;
  /** Its real uid then. */
  readonly uid: number;
  /** CLOCK_BOOTTIME in ns when recorded. */
  readonly bootNs: number;
  /** Its name then (comm). */
  readonly comm: string;
  /** Its command line then, NUL-separated like /proc/PID/cmdline, when the record holds all of it. */
  readonly commandLine?: string;
  /** Which program made the record: at the socket's creation, its connect, or a send to an address. */
  readonly hook?: 'create' | 'connect' | 'sendmsg';
  /** Its effective uid then (as /proc/PID/status shows it), when it was read. */
  readonly euid?: number;
  /** Its parent's tgid then, when it was read. */
  readonly parentPid?: number;
  /** Its executable file then, when it was read. */
  readonly executable?: RecordedExecutable;
}

/**
 * The identity of an executable file as the BPF programs read it from the process (mm->exe_file):
 * `id` joins every field that tells one file from another (mount id, device, inode number,
 * generation, change time), so a file replaced, renamed, linked or deleted since has another id.
 */
export interface RecordedExecutable {
  readonly id: string;
  /** Mount id (as /proc/PID/fdinfo and mountinfo show it). */
  readonly mount: number;
  /** Inode number, decimal. */
  readonly inode: string;
  /** The file system's magic number (statfs f_type): which file systems are local. */
  readonly fsMagic: number;
}

/** What /proc/PID/exe names now, with the identity of that very file (native procProcess). */
export interface CurrentExecutable {
  readonly path: string;
  readonly mount: number;
  readonly inode: string;
}

/** What one native read of /proc/PID gave (procProcess); a field is absent when its read failed. */
export interface ProcessRead {
  /** Start time in clock ticks since boot (/proc/PID/stat field 22). */
  readonly start?: string;
  /** The exe link's text (" (deleted)" kept). */
  readonly exe?: string;
  /** The exe with its file's identity, when asked to learn it. */
  readonly current?: CurrentExecutable;
  /** Effective uid (/proc/PID/status). */
  readonly euid?: number;
}

/** Finds the socket of a connection (incoming TCP: the listener when not yet accepted). */
export interface SocketLookup {
  find(tuple: ConnectionTuple): Promise<SocketOwner | null> | SocketOwner | null;
}

/** The native addon's exact sock_diag lookup: src/sport are the local end, dst/dport the remote end. */
export type NativeSocketLookupFunction = (
  protocol: SocketProtocol,
  family: AddressFamily,
  src: string,
  sport: number,
  dst: string,
  dport: number,
) => SocketOwner | null;

/** Who owns a connection. Fields a vanished process could not give are null (`complete` false). */
export interface ProcessIdentity {
  readonly pid: number | null;
  /** Real path of the executable (/proc/PID/exe, " (deleted)" removed). */
  readonly executable: string | null;
  /**
   * applicationIdOf(executable) (src/policy/application-ids.ts), given once per executable known or
   * per /proc read, not per connection; NO_APPLICATION_ID without an executable.
   */
  readonly applicationId: number;
  readonly commandLine: readonly string[];
  /**
   * For Node and Python: the script run (first non-option argument, resolved against the cwd). Its
   * real path only when it may be one of the scripts in `ownScripts` (see ProcessAttributorOptions).
   */
  readonly script: string | null;
  /** Effective uid of the process; the socket's uid when the process could not be read. */
  readonly uid: number;
  /** uid that owns the socket (what the kernel's `meta skuid` and NFQUEUE's uid see). */
  readonly socketUid: number;
  readonly user: string | null;
  readonly inode: number;
  /** True when pid, executable and command line were all read. */
  readonly complete: boolean;
  /**
   * The BPF record the identity was named from alone (its executable's path known by the record's
   * id: no /proc read that an exec since could have changed): what the verdict cache's key is made of.
   */
  readonly recorded?: RecordedProcess;
}

export interface ProcNetSocketLookupOptions {
  /** Directory with the tcp/udp tables of the namespace to look in: `/proc/self/net` (default) or `/proc/<pid>/net`. */
  readonly netnsProcRoot?: string;
  /** Byte order of the tables; default: this host's. */
  readonly littleEndian?: boolean;
}

/** The portable, slow SocketLookup: reads and parses /proc/net/{tcp,udp}[6] on every call. */
export class ProcNetSocketLookup implements SocketLookup {
  private readonly root: string;
  private readonly littleEndian: boolean;

  constructor(options: ProcNetSocketLookupOptions = {}) {
    this.root = options.netnsProcRoot ?? '/proc/self/net';
    this.littleEndian = options.littleEndian ?? endianness() === 'LE';
  }

  async find(tuple: ConnectionTuple): Promise<SocketOwner | null> {
    const localAddress = parseIp(tuple.localAddress);
    const remoteAddress = parseIp(tuple.remoteAddress);
    if (localAddress === null || remoteAddress === null) return null;
    const query = { ...tuple, localAddress, remoteAddress };
    // IPv4 first: an exact match there makes the IPv6 table (dual-stack sockets) unnecessary; each read costs ms.
    const entries: ProcNetEntry[] = [];
    let entry: ProcNetEntry | null = null;
    for (const { name, options } of tablesFor(tuple.protocol, tuple.family)) {
      try {
        const text = await readFile(`${this.root}/${name}`, 'utf8');
        entries.push(...parseProcNet(text, { ...options, littleEndian: this.littleEndian }).entries);
      } catch {
        continue; // no IPv6 in this kernel or namespace
      }
      entry = findSocketEntry(entries, query);
      if (entry !== null && entry.remotePort === tuple.remotePort && tuple.remotePort !== 0) break;
    }
    return entry === null ? null : { inode: entry.inode, uid: entry.uid };
  }
}

/** Wraps the native addon's exact lookup as a SocketLookup. */
export function nativeSocketLookup(lookup: NativeSocketLookupFunction): SocketLookup {
  return {
    find: (t) => lookup(t.protocol, t.family, t.localAddress, t.localPort, t.remoteAddress, t.remotePort),
  };
}
