/**
 * Process attribution: which process owns a queued connection. Three steps,
 * each behind its own cache (docs/attribution.md):
 * 1. socket: the connection's socket inode and owner uid through a
 *    SocketLookup (the engine injects the sock_diag one, ~5 µs; the default
 *    reads /proc/net/* through proc-net.ts, ~10 ms);
 * 2. pid: inode → pid from a map built by scanning /proc/PID/fd symlinks
 *    (`socket:[INODE]`); on a miss only new pids are scanned, then all;
 * 3. identity: /proc/PID/exe, cmdline, status, cwd and the user name, kept
 *    in a small LRU by inode.
 * When the socket lookup also gives what the cgroup BPF programs recorded
 * (native/bpf_attr.c: pid, uid, comm and time, by socket cookie), step 2 is
 * that record and step 3 is cached by pid and start time (checked against the
 * record's time, the exe link and the uid), so no scan is needed and an
 * exited process is still named when it was seen before.
 * A process that is gone before step 2 or 3 gives a partial identity (the
 * socket's uid, what was read) instead of an error. All I/O is async with
 * bounded concurrency, so a scan never holds the event loop for long.
 */

import { readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { readdir, readlink, realpath } from 'node:fs/promises';
import { basename, resolve } from 'node:path';
import { performance } from 'node:perf_hooks';
import { applicationIdOf, NO_APPLICATION_ID } from '../policy/application-ids.js';
import { KnownExecutables } from './attribution-exe.js';
import type { AttributionStats, ProcessAttributorOptions } from './attribution-options.js';
import { fail, forEachLimited, readProcessMemoryFile, settle } from './attribution-reads.js';
import { BoundedReads, processMemoryReads } from './bounded-reads.js';
import { readStartTime, startTimeOf } from './proc-stat.js';
import { effectiveUid, isInterpreter, scriptArgument, UserNames } from './process-info.js';
import {
  type ConnectionTuple,
  type ProcessIdentity,
  type ProcessRead,
  ProcNetSocketLookup,
  type RecordedProcess,
  type SocketLookup,
  type SocketOwner,
} from './socket-lookup.js';

export * from './attribution-options.js';
export * from './socket-lookup.js';

/** How many recently attributed processes are searched before /proc is scanned. */
const RECENT_PIDS = 8;

/** How long a script's resolved real path is reused (ms). */
const REAL_PATH_TTL_MS = 5000;

/** Processes whose command line is kept (by pid and start time; a process's argv is read once). */
const MAX_COMMAND_LINES = 4096;

/** Clock ticks of /proc/PID/stat's start time (USER_HZ, 100 on Linux) in ns. */
const NS_PER_TICK = 10_000_000;

/** Processes whose identity is kept for the BPF path (by pid, checked against start time, exe and uid). */
const MAX_PROCESSES = 4096;

/** Beyond this many socket inodes the inode -> pid cache starts again (sockets come and go; it must not grow forever). */
const MAX_KNOWN_SOCKETS = 65_536;

type ScanKind = 'new' | 'full';

/** Attributes connections to processes (see the file comment). One instance per engine; safe to call concurrently. */
export class ProcessAttributor {
  readonly stats: AttributionStats = {
    identityHits: 0,
    pidHits: 0,
    recentHits: 0,
    newPidScans: 0,
    fullScans: 0,
    partial: 0,
    recordedHits: 0,
    recordedReads: 0,
    recordedGone: 0,
    recordedExecutables: 0,
  };
  private readonly socketLookup: SocketLookup;
  private readonly proc: string;
  private readonly users: UserNames;
  private readonly cacheSize: number;
  private readonly concurrency: number;
  private readonly missTtlMs: number;
  private readonly identities = new Map<number, ProcessIdentity>();
  private inodeToPid = new Map<number, number>();
  private scannedPids = new Set<number>();
  private recentPids: number[] = [];
  /** For each recent process, which of its fds were not sockets at the last look (they are read last). */
  private readonly steadyFds = new Map<number, Set<string>>();
  /** Script path -> its real path, for a few seconds (symlinks of installed scripts hardly move). */
  private readonly realPaths = new Map<string, { path: string; until: number }>();
  /** Real-path lookups: one at a time (a hung one holds a libuv thread for good), each within the deadline. */
  private readonly realPathReads: BoundedReads;
  private readonly commandLines = new Map<number, { start: string; commandLine: string[] }>();
  private readonly ownPaths: ReadonlySet<string> | null;
  private readonly ownNames: ReadonlySet<string> | null;
  private readonly realPathDeadlineMs: number;
  private readonly misses = new Map<number, number>();
  /** For the BPF path: what was read of each process, with what identifies it (pid reuse, exec, setuid). */
  private readonly processes = new Map<
    number,
    { start: string; exe: string; uid: number; comm: string; identity: ProcessIdentity }
  >();
  private inFlight: { kind: ScanKind; startedAt: number; done: Promise<void> } | null = null;
  private readonly executables: KnownExecutables;
  private readonly readProcess: ((pid: number, learn: boolean) => ProcessRead | null) | null;

  constructor(options: ProcessAttributorOptions = {}) {
    this.socketLookup =
      options.socketLookup ?? new ProcNetSocketLookup({ netnsProcRoot: options.netnsProcRoot });
    this.proc = options.procRoot ?? '/proc';
    this.users = new UserNames(options.passwdPath);
    this.cacheSize = options.identityCacheSize ?? 1024;
    this.concurrency = options.scanConcurrency ?? 16;
    this.missTtlMs = options.missTtlMs ?? 500;
    const own = options.ownScripts;
    this.ownPaths = own ? new Set(own.paths) : null;
    this.ownNames = own ? new Set([...own.paths.map((p) => basename(p)), ...(own.names ?? [])]) : null;
    this.realPathDeadlineMs = options.realPathDeadlineMs ?? 200;
    this.realPathReads = new BoundedReads(1, this.realPathDeadlineMs);
    this.readProcess = options.readProcess ?? null;
    this.executables = new KnownExecutables(
      this.readProcess === null ? 0 : (options.knownExecutables ?? 1024),
    );
  }

  /**
   * The owner of a connection; null when no socket matches it (nothing listens, or the socket is gone).
   * Not an async function: a socket whose record names a known executable is answered in the same
   * turn, and the caller's await is the only hop (each hop runs whatever else is queued first).
   */
  attribute(tuple: ConnectionTuple): Promise<ProcessIdentity | null> {
    try {
      const since = performance.now();
      const found = this.socketLookup.find(tuple);
      if (found instanceof Promise) return found.then((o) => (o === null ? null : this.identify(o, since)));
      if (found === null) return Promise.resolve(null);
      return Promise.resolve(this.fromRecordCounted(found) ?? this.identifySlow(found, since));
    } catch (e) {
      return Promise.reject(e);
    }
  }

  /** The owner of a known socket (when the caller already has inode and uid). */
  async identify(owner: SocketOwner, since = performance.now()): Promise<ProcessIdentity> {
    return this.fromRecordCounted(owner) ?? this.identifySlow(owner, since);
  }

  /** The identity from the socket's record alone (fromRecord), counted; null when /proc must be read. */
  private fromRecordCounted(owner: SocketOwner): ProcessIdentity | Promise<ProcessIdentity> | null {
    // The kernel recorded who made the socket: exact, even for a socket passed to another process.
    const recorded = owner.process === undefined ? null : this.fromRecord(owner, owner.process);
    // Not kept in the caches of the /proc path: the next socket has a record of its own.
    if (recorded !== null) this.stats.recordedExecutables++;
    return recorded;
  }

  private async identifySlow(owner: SocketOwner, since: number): Promise<ProcessIdentity> {
    if (owner.process !== undefined) {
      const identity = await this.identifyRecorded(owner, owner.process);
      if (identity.complete) this.remember(identity);
      else this.stats.partial++;
      return identity;
    }
    const cached = this.identities.get(owner.inode);
    if (cached !== undefined) {
      this.stats.identityHits++;
      this.identities.delete(owner.inode); // refresh its place in the LRU
      this.identities.set(owner.inode, cached);
      return cached;
    }
    let pid = this.inodeToPid.get(owner.inode);
    if (pid !== undefined) this.stats.pidHits++;
    else pid = await this.findPid(owner.inode, since);
    let identity = pid === undefined ? undefined : await this.describe(pid, owner);
    if (identity !== undefined && !identity.complete && pid !== undefined) {
      // The cached pid has exited; the socket may live on in another process (a fork).
      this.inodeToPid.delete(owner.inode);
      const other = await this.findPid(owner.inode, performance.now());
      if (other !== undefined && other !== pid) identity = await this.describe(other, owner);
    }
    identity ??= await this.partial(owner, null);
    if (identity.complete) this.remember(identity);
    else this.stats.partial++;
    return identity;
  }

  /**
   * The process the BPF programs recorded for a socket. Its pid names it while the process at that
   * pid started before the record was made (a pid reused since started later). Its identity is read
   * once and kept while start time, exe link and uid stay the same (an exec changes the exe, a
   * setuid the uid); a process that has exited is named from what was read of it before.
   */
  private async identifyRecorded(owner: SocketOwner, rec: RecordedProcess): Promise<ProcessIdentity> {
    const base = `${this.proc}/${rec.pid}`;
    // One native call when the engine gives one (stat, exe, status), else the files one by one.
    const learn = this.executables.canLearn(rec.executable);
    const read = this.readProcess?.(rec.pid, learn);
    const start = read === undefined ? readStartTime(`${base}/stat`) : (read?.start ?? null);
    const recordedTicks = rec.bootNs / NS_PER_TICK;
    const known = this.processes.get(rec.pid);
    const own = (identity: ProcessIdentity) => ({ ...identity, inode: owner.inode, socketUid: owner.uid });
    if (start === null || Number(start) > recordedTicks) {
      // The process that made the socket has exited (its pid may have been reused since).
      this.stats.recordedGone++;
      if (known !== undefined && Number(known.start) <= recordedTicks && known.comm === rec.comm)
        return own(known.identity);
      return this.partial(owner, rec.pid);
    }
    if (learn && read?.current !== undefined) this.executables.learn(rec.executable!, read.current);
    const exe =
      read === undefined ? settle(() => readlinkSync(`${base}/exe`)) : settle(() => read?.exe ?? fail());
    if (
      known !== undefined &&
      known.start === start &&
      exe.status === 'fulfilled' &&
      known.exe === exe.value &&
      known.uid === rec.uid
    ) {
      this.stats.recordedHits++;
      return own(known.identity);
    }
    this.stats.recordedReads++;
    const identity = await this.describe(
      rec.pid,
      owner,
      exe.status === 'fulfilled'
        ? { exe: exe.value, start, commandLine: rec.commandLine, uid: read?.euid }
        : undefined,
    );
    if (identity.complete && exe.status === 'fulfilled') {
      this.processes.delete(rec.pid);
      if (this.processes.size >= MAX_PROCESSES) this.processes.delete(this.processes.keys().next().value!);
      this.processes.set(rec.pid, { start, exe: exe.value, uid: rec.uid, comm: rec.comm, identity });
    }
    return identity;
  }

  /**
   * The identity from the record alone when it holds all of it: made by the process's own connect
   * or send (a record made when the socket was created may be older than an exec since), with the
   * command line, the effective uid and an executable whose path is known. Null otherwise: then
   * /proc is read. It is the process as it was when it connected or sent, even if it exited since.
   * Without waiting (the hot path) unless a script's real path or a user name must be looked up.
   */
  private fromRecord(
    owner: SocketOwner,
    rec: RecordedProcess,
  ): ProcessIdentity | Promise<ProcessIdentity> | null {
    if (rec.hook !== 'connect' && rec.hook !== 'sendmsg') return null;
    if (rec.euid === undefined || rec.commandLine === undefined) return null;
    const known = this.executables.of(rec.executable);
    const line = known?.commandLine(rec.commandLine);
    if (known === undefined || line == null) return null;
    const { path: executable, applicationId } = known;
    const { commandLine, argument } = line;
    const uid = rec.euid;
    const user = this.users.known(uid);
    // One object of the same shape as describe()'s, built here (no closure on the hot path).
    if (argument === null && user !== undefined)
      return {
        pid: rec.pid,
        executable,
        applicationId,
        commandLine,
        script: null,
        uid,
        socketUid: owner.uid,
        user,
        inode: owner.inode,
        complete: true,
        recorded: rec,
      };
    return (async () => ({
      pid: rec.pid,
      executable,
      applicationId,
      commandLine,
      script: argument === null ? null : await this.scriptPath(resolve(argument)),
      uid,
      socketUid: owner.uid,
      user: user ?? (await this.users.nameOf(uid)),
      inode: owner.inode,
      complete: true,
      recorded: rec,
    }))();
  }

  /** Forgets all cached identities and pids (the next attributions scan /proc again). */
  clearCaches(): void {
    this.executables.clear();
    this.processes.clear();
    this.identities.clear();
    this.inodeToPid = new Map();
    this.scannedPids = new Set();
    this.misses.clear();
  }

  /** Forgets only the identity LRU (the inode → pid map stays). */
  clearIdentities(): void {
    this.identities.clear();
    this.processes.clear();
  }

  private remember(identity: ProcessIdentity): void {
    if (identity.pid !== null) {
      // Most recently attributed first: a program that opened one connection usually opens the next.
      this.recentPids = [identity.pid, ...this.recentPids.filter((p) => p !== identity.pid)].slice(
        0,
        RECENT_PIDS,
      );
      for (const pid of this.steadyFds.keys()) if (!this.recentPids.includes(pid)) this.steadyFds.delete(pid);
    }
    this.identities.set(identity.inode, identity);
    if (this.identities.size > this.cacheSize) {
      const oldest = this.identities.keys().next().value;
      if (oldest !== undefined) this.identities.delete(oldest);
    }
  }

  private async findPid(inode: number, since: number): Promise<number | undefined> {
    const missedAt = this.misses.get(inode);
    if (missedAt !== undefined && performance.now() - missedAt < this.missTtlMs) return undefined;
    // First the few programs that made the last connections (one readdir each), then new pids, then all.
    if (this.inodeToPid.size > MAX_KNOWN_SOCKETS) this.inodeToPid = new Map(); // a cache, not a record
    for (const recent of this.recentPids) {
      if (this.scanFdsNow(recent, this.inodeToPid, inode)) {
        this.stats.recentHits++;
        return recent;
      }
    }
    for (const kind of ['new', 'full'] as const) {
      await this.scan(kind, since);
      const pid = this.inodeToPid.get(inode);
      if (pid !== undefined) return pid;
    }
    this.misses.set(inode, performance.now());
    if (this.misses.size > this.cacheSize) this.misses.delete(this.misses.keys().next().value!);
    return undefined;
  }

  /**
   * Runs a scan, or joins one in flight that started after `since` (it saw every
   * socket that existed when the caller's lookup ran) and covers `kind`.
   */
  private async scan(kind: ScanKind, since: number): Promise<void> {
    for (;;) {
      const current = this.inFlight;
      if (current === null) break;
      await current.done;
      if (current.startedAt >= since && (current.kind === 'full' || kind === 'new')) return;
      if (this.inFlight === current) this.inFlight = null;
    }
    const startedAt = performance.now();
    const done = (kind === 'new' ? this.scanNewPids() : this.scanAllPids()).catch(() => {});
    const entry = { kind, startedAt, done };
    this.inFlight = entry;
    await done;
    if (this.inFlight === entry) this.inFlight = null;
  }

  private async listPids(): Promise<number[]> {
    const names = await readdir(this.proc);
    const pids: number[] = [];
    for (const name of names) if (name.charCodeAt(0) <= 57 && /^[0-9]+$/.test(name)) pids.push(Number(name));
    return pids;
  }

  /** Adds the sockets of processes started since the last scan. */
  private async scanNewPids(): Promise<void> {
    this.stats.newPidScans++;
    const pids = await this.listPids();
    const fresh = pids.filter((pid) => !this.scannedPids.has(pid));
    await forEachLimited(fresh, this.concurrency, (pid) => this.scanFds(pid, this.inodeToPid));
    this.scannedPids = new Set(pids);
  }

  /** Rebuilds the inode → pid map from every process. */
  private async scanAllPids(): Promise<void> {
    this.stats.fullScans++;
    const pids = await this.listPids();
    const map = new Map<number, number>();
    await forEachLimited(pids, this.concurrency, (pid) => this.scanFds(pid, map));
    this.inodeToPid = map;
    this.scannedPids = new Set(pids);
  }

  /**
   * One process's sockets, read synchronously: a few dozen readlinks on /proc take microseconds,
   * far less than as many round trips through libuv's thread pool (measured: 1.6 ms -> see bench).
   */
  private scanFdsNow(pid: number, into: Map<number, number>, wanted: number): boolean {
    const dir = `${this.proc}/${pid}/fd`;
    let fds: string[];
    try {
      fds = readdirSync(dir);
    } catch {
      this.steadyFds.delete(pid);
      return false;
    }
    // A new socket takes a free fd number: the fds that were files, pipes or the event loop's last
    // time most likely still are. Read the others first and stop at the wanted socket.
    const steady = this.steadyFds.get(pid) ?? new Set<string>();
    this.steadyFds.set(pid, steady);
    const order = [...fds.filter((fd) => !steady.has(fd)), ...fds.filter((fd) => steady.has(fd))];
    for (const fd of order) {
      try {
        const target = readlinkSync(`${dir}/${fd}`);
        if (target.startsWith('socket:[')) {
          steady.delete(fd);
          const inode = Number(target.slice(8, -1));
          if (!into.has(inode)) into.set(inode, pid);
          if (inode === wanted) return true; // the rest of this process's fds can wait
        } else steady.add(fd);
      } catch {
        steady.delete(fd); // closed meanwhile
      }
    }
    return false;
  }

  private async scanFds(pid: number, into: Map<number, number>): Promise<void> {
    const dir = `${this.proc}/${pid}/fd`;
    let fds: string[];
    try {
      fds = await readdir(dir);
    } catch {
      return; // exited, or a kernel thread we may not read
    }
    await Promise.all(
      fds.map(async (fd) => {
        try {
          const target = await readlink(`${dir}/${fd}`);
          if (target.startsWith('socket:[')) {
            const inode = Number(target.slice(8, -1));
            if (!into.has(inode)) into.set(inode, pid);
          }
        } catch {
          // fd closed meanwhile
        }
      }),
    );
  }

  /**
   * Reads a process; an identity with `complete` false when it exited meanwhile. The BPF path
   * passes what it has read already (exe link, start time) and the recorded command line.
   */
  private async describe(
    pid: number,
    owner: SocketOwner,
    known?: { exe: string; start: string; commandLine?: string | undefined; uid?: number | undefined },
  ): Promise<ProcessIdentity> {
    const base = `${this.proc}/${pid}`;
    // Synchronous on purpose: these reads of /proc/PID take microseconds and never wait for the
    // process (the kernel prints the exe link and counters); through the thread pool, queued behind
    // other I/O, they took milliseconds per connection. The command line is read once per process.
    const exe =
      known !== undefined
        ? { status: 'fulfilled' as const, value: known.exe }
        : settle(() => readlinkSync(`${base}/exe`));
    const knownUid = known?.uid;
    const status = knownUid === undefined ? settle(() => readFileSync(`${base}/status`, 'utf8')) : null;
    const cmdline = await this.commandLineOf(base, pid, known);
    if (exe.status === 'rejected' && cmdline === null) return this.partial(owner, pid);
    const executable = exe.status === 'fulfilled' ? exe.value.replace(/ \(deleted\)$/, '') : null;
    const commandLine = Array.isArray(cmdline) ? cmdline : [];
    const uid = knownUid ?? (status?.status === 'fulfilled' ? effectiveUid(status.value) : null) ?? owner.uid;
    const script = executable === null ? null : await this.scriptOf(base, executable, commandLine);
    return {
      pid,
      executable,
      applicationId: executable === null ? NO_APPLICATION_ID : applicationIdOf(executable),
      commandLine,
      script,
      uid,
      socketUid: owner.uid,
      user: await this.users.nameOf(uid),
      inode: owner.inode,
      // A zombie or kernel thread has an empty command line; an exited process loses its exe link.
      // A command line not read in time stays unknown: the process is there, scanning again won't help.
      complete: executable !== null && (commandLine.length > 0 || cmdline === 'late'),
    };
  }

  private async scriptOf(base: string, executable: string, commandLine: readonly string[]) {
    if (!isInterpreter(executable)) return null;
    const argument = scriptArgument(executable, commandLine);
    if (argument === null) return null;
    let path: string;
    try {
      // A link in /proc (the kernel prints the path): no access to the file system the cwd is on.
      path = argument.startsWith('/') ? resolve(argument) : resolve(readlinkSync(`${base}/cwd`), argument);
    } catch {
      return null; // the process left before its cwd could be read
    }
    return this.scriptPath(path);
  }

  /** A script's path as identities give it (see realPathOf). */
  private async scriptPath(path: string): Promise<string> {
    // The program chose this path: only a name that can be one of Warden's own scripts is looked up.
    if (this.ownPaths?.has(path) || (this.ownNames !== null && !this.ownNames.has(basename(path))))
      return path;
    return this.realPathOf(path);
  }

  /**
   * The real path of a script, never waiting longer than the deadline: the path may be on a hung
   * file system, and every verdict waits for this one. Not resolved (the lexical path) when the
   * deadline passes or too many lookups are still outstanding.
   */
  private async realPathOf(path: string): Promise<string> {
    const now = performance.now();
    const known = this.realPaths.get(path);
    if (known !== undefined && known.until > now) return known.path;
    const read = await this.realPathReads.run(() => realpath(path));
    const real = read.ok ? read.value : path;
    if (this.realPaths.size >= 256) this.realPaths.clear();
    // A path that did not answer in time is not asked again for a while either.
    this.realPaths.set(path, { path: real, until: now + REAL_PATH_TTL_MS });
    return real;
  }

  /**
   * A process's command line: read once per process (pid and start time), through the thread pool
   * within a deadline, since reading another process's memory waits for its memory lock, which the
   * process can keep taken. `late` when it was not read in time (the process is there). `recorded`:
   * the command line the BPF programs copied when the process made the socket (NUL-separated), used
   * instead of the read.
   */
  private async commandLineOf(
    base: string,
    pid: number,
    given?: { start: string; commandLine?: string | undefined },
  ): Promise<string[] | 'late' | null> {
    let start = given?.start;
    if (start === undefined) {
      const stat = settle(() => readFileSync(`${base}/stat`, 'latin1'));
      if (stat.status === 'rejected') return null; // exited
      start = startTimeOf(stat.value) ?? '';
    }
    const recorded = given?.commandLine;
    const known = this.commandLines.get(pid);
    if (known !== undefined && known.start === start) return known.commandLine;
    let text: string;
    if (recorded !== undefined) text = recorded;
    else {
      const read = await processMemoryReads.run(() => readProcessMemoryFile(`${base}/cmdline`));
      if (!read.ok) return read.late ? 'late' : null;
      text = read.value.toString('utf8');
    }
    const commandLine = text.length > 0 ? text.replace(/\0$/, '').split('\0') : [];
    if (commandLine.length === 0) return commandLine; // a zombie or kernel thread: not kept
    if (this.commandLines.size >= MAX_COMMAND_LINES) this.commandLines.clear();
    this.commandLines.set(pid, { start, commandLine });
    return commandLine;
  }

  private async partial(owner: SocketOwner, pid: number | null): Promise<ProcessIdentity> {
    return {
      pid,
      executable: null,
      applicationId: NO_APPLICATION_ID,
      commandLine: [],
      script: null,
      uid: owner.uid,
      socketUid: owner.uid,
      user: await this.users.nameOf(owner.uid),
      inode: owner.inode,
      complete: false,
    };
  }
}
