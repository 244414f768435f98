/**
 * The options of ProcessAttributor and its counters (src/kernel/attribution.ts re-exports them).
 */
import type { ProcessRead, SocketLookup } from './socket-lookup.js';

export interface ProcessAttributorOptions {
  /** Default: ProcNetSocketLookup on `netnsProcRoot`. */
  readonly socketLookup?: SocketLookup;
  /** For the default socket lookup: the protected namespace's tables, e.g. `/proc/<pid>/net`. */
  readonly netnsProcRoot?: string;
  /** Root of the host's pid namespace (default `/proc`). */
  readonly procRoot?: string;
  readonly passwdPath?: string;
  /** Recent identities kept by socket inode (default 1024). */
  readonly identityCacheSize?: number;
  /** Processes scanned at once (default 16). */
  readonly scanConcurrency?: number;
  /** After a full scan found no process for an inode, attribute it without scanning again for this long (default 500 ms). */
  readonly missTtlMs?: number;
  /**
   * The scripts whose symlinks are worth resolving (Warden's own: engine, console, assistant) and the
   * extra file names they are installed under (`warden`, a bin symlink). A script argument is resolved
   * to its real path only when its file name is one of these; other scripts keep their lexical path,
   * so no file system call is ever made on a path that cannot be one of them. Default: resolve every
   * script (tests, benchmarks).
   */
  readonly ownScripts?: { readonly paths: readonly string[]; readonly names?: readonly string[] };
  /** How long a script's real path is waited for (default 200 ms): after that the lexical path is used. */
  readonly realPathDeadlineMs?: number;
  /**
   * Reads a process recorded by BPF in one call (the engine: native readProcess), and learns
   * executables' paths (attribution-exe.ts). Default: none (files read one by one, no path learned).
   */
  readonly readProcess?: (pid: number, learn: boolean) => ProcessRead | null;
  /** Executables whose path is kept (default 1024; 0: none). */
  readonly knownExecutables?: number;
}

/** Counters for tests, benchmarks and the engine's statistics. */
export interface AttributionStats {
  identityHits: number;
  pidHits: number;
  /** A new socket found among the fds of a recently attributed process (no /proc-wide scan). */
  recentHits: number;
  newPidScans: number;
  fullScans: number;
  partial: number;
  /** The BPF record named the process and its identity was known (no /proc read but stat and exe). */
  recordedHits: number;
  /** The BPF record named the process, read from /proc for the first time (or again after an exec). */
  recordedReads: number;
  /** The BPF record named a process that had exited by then. */
  recordedGone: number;
  /** The BPF record named the process and its executable was known: no /proc read at all. */
  recordedExecutables: number;
}
