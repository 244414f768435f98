/**
 * The connections open on this host now (connections.list answers with them): the connections open on the engine's host right now and the processes that
 * own them, like `ss -tunp`. The sockets come from the kernel's tables (/proc/net/tcp, tcp6, udp,
 * udp6, parsed by src/kernel/proc-net.ts); their owners from the socket links in /proc/PID/fd; the
 * command line is read within the same deadline as attribution's (another process can hold its
 * memory lock). Bounded: at most MAX_CONNECTIONS sockets per answer, one listing at a time (callers
 * that arrive meanwhile share it), so a flood of calls costs one scan of /proc.
 */
import { readdir, readFile, readlink } from 'node:fs/promises';
import { endianness } from 'node:os';
import { formatIp, type IpAddress, parseIp } from '../ip/index.js';
import { processMemoryReads } from './bounded-reads.js';
import { type ProcNetEntry, parseProcNet, TCP_LISTEN } from './proc-net.js';
import { effectiveUid, UserNames } from './process-info.js';

/** Most sockets in one answer (`truncated` says when there were more). */
export const MAX_CONNECTIONS = 2000;
/** Processes whose fds are read at once. */
const SCAN_CONCURRENCY = 16;

const TCP_STATES: Record<number, string> = {
  1: 'established',
  2: 'syn-sent',
  3: 'syn-received',
  4: 'fin-wait-1',
  5: 'fin-wait-2',
  6: 'time-wait',
  7: 'close',
  8: 'close-wait',
  9: 'last-ack',
  11: 'closing',
};

/** One open connection and, when it could be read, its process (src/protocol/connections.ts). */
export interface OpenConnection {
  protocol: 'tcp' | 'udp';
  state: string;
  local: string;
  remote: string;
  uid: number;
  user?: string;
  pid?: number;
  application?: string;
  commandLine?: string[];
}

export interface OpenConnections {
  connections: OpenConnection[];
  truncated: boolean;
}

export interface ConnectionListerOptions {
  /** Directory with the socket tables (default /proc/self/net: the engine's network namespace). */
  readonly netRoot?: string;
  /** Root of the pid namespace (default /proc). */
  readonly procRoot?: string;
  readonly passwdPath?: string;
  readonly max?: number;
}

const TABLES = [
  { name: 'tcp', protocol: 'tcp', family: 4 },
  { name: 'tcp6', protocol: 'tcp', family: 6 },
  { name: 'udp', protocol: 'udp', family: 4 },
  { name: 'udp6', protocol: 'udp', family: 6 },
] as const;

/** An IPv4-mapped IPv6 address (a dual-stack socket's IPv4 peer) is shown as the IPv4 address. */
function endpoint(address: IpAddress, port: number): string {
  const text = formatIp(address);
  const plain = address.version === 6 ? (parseIp(text) ?? address) : address;
  return plain.version === 6 ? `[${formatIp(plain)}]:${port}` : `${formatIp(plain)}:${port}`;
}

/** Open (not listening, not unconnected) sockets; TIME_WAIT and other ownerless ones have inode 0. */
function isOpenConnection(e: ProcNetEntry): boolean {
  if (e.inode === 0) return false;
  if (e.protocol === 'tcp') return e.state !== TCP_LISTEN;
  return e.remotePort !== 0;
}

async function processOf(procRoot: string, pid: number) {
  const base = `${procRoot}/${pid}`;
  const [exe, status, cmdline] = await Promise.all([
    readlink(`${base}/exe`).catch(() => undefined),
    readFile(`${base}/status`, 'utf8').catch(() => undefined),
    processMemoryReads.run(() => readFile(`${base}/cmdline`)),
  ]);
  const commandLine =
    cmdline.ok && cmdline.value.length > 0
      ? cmdline.value.toString('utf8').replace(/\0$/, '').split('\0')
      : [];
  return {
    application: exe?.replace(/ \(deleted\)$/, ''),
    commandLine,
    uid: status === undefined ? undefined : (effectiveUid(status) ?? undefined),
  };
}

export class ConnectionLister {
  readonly #netRoot: string;
  readonly #procRoot: string;
  readonly #users: UserNames;
  readonly #max: number;
  readonly #littleEndian = endianness() === 'LE';
  #inFlight: Promise<OpenConnections> | undefined;

  constructor(options: ConnectionListerOptions = {}) {
    this.#netRoot = options.netRoot ?? '/proc/self/net';
    this.#procRoot = options.procRoot ?? '/proc';
    this.#users = new UserNames(options.passwdPath);
    this.#max = options.max ?? MAX_CONNECTIONS;
  }

  /** The open connections; a call while a listing runs gets that listing. */
  list(): Promise<OpenConnections> {
    this.#inFlight ??= this.#list().finally(() => {
      this.#inFlight = undefined;
    });
    return this.#inFlight;
  }

  async #list(): Promise<OpenConnections> {
    const entries: ProcNetEntry[] = [];
    for (const t of TABLES) {
      let text: string;
      try {
        text = await readFile(`${this.#netRoot}/${t.name}`, 'utf8');
      } catch {
        continue; // no IPv6 on this host, or no UDP table
      }
      const parsed = parseProcNet(text, { ...t, littleEndian: this.#littleEndian });
      for (const e of parsed.entries) if (isOpenConnection(e)) entries.push(e);
    }
    const truncated = entries.length > this.#max;
    const shown = truncated ? entries.slice(0, this.#max) : entries;
    const owners = await this.#owners(new Set(shown.map((e) => e.inode)));
    const processes = new Map<number, Awaited<ReturnType<typeof processOf>>>();
    for (const pid of new Set(owners.values())) processes.set(pid, await processOf(this.#procRoot, pid));
    const connections: OpenConnection[] = [];
    for (const e of shown) {
      const pid = owners.get(e.inode);
      const p = pid === undefined ? undefined : processes.get(pid);
      const user = await this.#users.nameOf(e.uid);
      connections.push({
        protocol: e.protocol,
        state: e.protocol === 'udp' ? 'connected' : (TCP_STATES[e.state] ?? `state ${e.state}`),
        local: endpoint(e.localAddress, e.localPort),
        remote: endpoint(e.remoteAddress, e.remotePort),
        uid: e.uid,
        ...(user !== null ? { user } : {}),
        ...(pid !== undefined ? { pid } : {}),
        ...(p?.application !== undefined ? { application: p.application } : {}),
        ...(p !== undefined && p.commandLine.length > 0 ? { commandLine: p.commandLine } : {}),
      });
    }
    return { connections, truncated };
  }

  /** inode -> pid for the wanted sockets, from the `socket:[INODE]` links of every process's fds. */
  async #owners(wanted: Set<number>): Promise<Map<number, number>> {
    const found = new Map<number, number>();
    if (wanted.size === 0) return found;
    const pids = (await readdir(this.#procRoot)).filter((n) => /^[0-9]+$/.test(n)).map(Number);
    let next = 0;
    const worker = async () => {
      while (next < pids.length && found.size < wanted.size) {
        const pid = pids[next++]!;
        const dir = `${this.#procRoot}/${pid}/fd`;
        let fds: string[];
        try {
          fds = await readdir(dir);
        } catch {
          continue; // exited, or not ours to read
        }
        for (const fd of fds) {
          const target = await readlink(`${dir}/${fd}`).catch(() => '');
          if (!target.startsWith('socket:[')) continue;
          const inode = Number(target.slice(8, -1));
          if (wanted.has(inode) && !found.has(inode)) found.set(inode, pid);
        }
      }
    };
    await Promise.all(Array.from({ length: SCAN_CONCURRENCY }, worker));
    return found;
  }
}
