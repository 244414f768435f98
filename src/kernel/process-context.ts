/**
 * The program context of a process for rules that ask for it (`parent`, `ancestor`, `arguments`):
 * the executables of its parent and of its ancestors up to init, and its command line as one text.
 * Read only when the compiled policy needs it (CompiledPolicy.needs), from /proc: `stat` (the
 * parent's pid, field 4, and the start time, field 22) and the parent's `exe` link, both printed
 * by the kernel without waiting for the process, so they are read synchronously (microseconds
 * each, like attribution's own reads). The walk stops after `maxDepth` ancestors (32), at init
 * (ppid 0) or at the first process that is gone.
 *
 * The answer is kept per process (pid and start time): a process's parent only changes when the
 * parent exits, and then the kernel gives it to init or a subreaper. So a process first seen while
 * its parent ran keeps that parent; one first seen after its parent exited has the reaper as its
 * parent, and a rule naming the old parent does not match it. A process that is gone by the time
 * it is read has no context (parent null, no ancestors): such a rule does not match either.
 */
import { readFileSync, readlinkSync } from 'node:fs';

/** Parent and ancestors of a process: executables, parent first. */
export interface ProgramContext {
  /** The direct parent's executable; null when unknown (gone, or its exe cannot be read). */
  readonly parent: string | null;
  /** The ancestors' executables, parent first, up to init (those whose exe could be read). */
  readonly ancestors: readonly string[];
}

/** Fields 4 (ppid) and 22 (start time in clock ticks) of /proc/PID/stat; the name may hold spaces and ')'. */
export function parseStat(text: string): { ppid: number; start: string } | null {
  const close = text.lastIndexOf(')');
  if (close < 0) return null;
  const fields = text.slice(close + 2).split(' ');
  // fields[0] is field 3 (state): ppid is fields[1], the start time fields[19].
  const ppid = Number(fields[1]);
  const start = fields[19];
  if (!Number.isInteger(ppid) || start === undefined || !/^[0-9]+$/.test(start)) return null;
  return { ppid, start };
}

export interface ProcessContextOptions {
  /** Root of the host's pid namespace (default `/proc`). */
  readonly procRoot?: string;
  /** Ancestors walked at most (default 32). */
  readonly maxDepth?: number;
  /** Processes whose context is kept (default 4096). */
  readonly cacheSize?: number;
}

/** Counters for tests and benchmarks. */
export interface ProcessContextStats {
  /** Contexts read (not from the cache). */
  reads: number;
  /** /proc files read (stat) and links read (exe). */
  files: number;
  hits: number;
  gone: number;
}

/** Reads and keeps program contexts (see the file comment). */
export class ProcessContextReader {
  readonly stats: ProcessContextStats = { reads: 0, files: 0, hits: 0, gone: 0 };
  readonly #proc: string;
  readonly #maxDepth: number;
  readonly #cacheSize: number;
  readonly #known = new Map<number, { start: string; context: ProgramContext; ancestorsRead: boolean }>();

  constructor(options: ProcessContextOptions = {}) {
    this.#proc = options.procRoot ?? '/proc';
    this.#maxDepth = options.maxDepth ?? 32;
    this.#cacheSize = options.cacheSize ?? 4096;
  }

  /** The context of pid; `ancestors` false reads the parent only (one step). */
  contextOf(pid: number, ancestors: boolean): ProgramContext {
    const stat = this.#stat(pid);
    if (stat === null) {
      this.stats.gone++;
      return { parent: null, ancestors: [] };
    }
    const known = this.#known.get(pid);
    if (known !== undefined && known.start === stat.start && (known.ancestorsRead || !ancestors)) {
      this.stats.hits++;
      return known.context;
    }
    this.stats.reads++;
    const context = this.#walk(stat.ppid, ancestors ? this.#maxDepth : 1);
    // The parent read the first time is kept even when the walk is made again for the ancestors.
    const kept: ProgramContext =
      known !== undefined && known.start === stat.start
        ? { ...context, parent: known.context.parent }
        : context;
    this.#remember(pid, stat.start, kept, ancestors);
    return kept;
  }

  /**
   * Walks up from the parent. Every ancestor read on the way is kept too (pid, start time, the chain
   * above it), so the next process of the same shell or service stops at its first known ancestor:
   * a new curl from a known bash costs its own stat, bash's exe and bash's stat.
   */
  #walk(ppid: number, depth: number): ProgramContext {
    // chain[i]: the executable of the i-th ancestor walked (null: unreadable); tail: the chain
    // above the first known one, as it was read then.
    const chain: (string | null)[] = [];
    let tail: readonly string[] = [];
    const levels: { pid: number; start: string }[] = [];
    let complete = true;
    let pid = ppid;
    while (pid > 0) {
      chain.push(this.#exe(pid));
      if (chain.length >= depth) {
        complete = false;
        break;
      }
      const stat = this.#stat(pid);
      if (stat === null) break; // gone meanwhile: the chain above it is unknown
      const known = this.#known.get(pid);
      if (known !== undefined && known.start === stat.start && known.ancestorsRead) {
        tail = known.context.ancestors;
        break;
      }
      levels.push({ pid, start: stat.start });
      pid = stat.ppid;
    }
    const above = (i: number): string[] =>
      [...chain.slice(i).filter((e): e is string => e !== null), ...tail].slice(0, depth);
    // Each ancestor read here is kept: its parent and ancestors are what follows it in the chain.
    if (complete)
      for (const [i, level] of levels.entries()) {
        const context = { parent: chain[i + 1] ?? null, ancestors: above(i + 1) };
        this.#remember(level.pid, level.start, context, true);
      }
    return { parent: chain[0] ?? null, ancestors: above(0) };
  }

  #remember(pid: number, start: string, context: ProgramContext, ancestorsRead: boolean): void {
    this.#known.delete(pid);
    if (this.#known.size >= this.#cacheSize) this.#known.delete(this.#known.keys().next().value!);
    this.#known.set(pid, { start, context, ancestorsRead });
  }

  #stat(pid: number): { ppid: number; start: string } | null {
    this.stats.files++;
    try {
      return parseStat(readFileSync(`${this.#proc}/${pid}/stat`, 'latin1'));
    } catch {
      return null;
    }
  }

  #exe(pid: number): string | null {
    this.stats.files++;
    try {
      return readlinkSync(`${this.#proc}/${pid}/exe`).replace(/ \(deleted\)$/, '');
    } catch {
      return null; // gone, a kernel thread, or a process whose exe this engine may not read
    }
  }
}
