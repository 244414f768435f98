/**
 * Which process is one of Warden's own parts, bound to what another program cannot choose
 * (docs/attribution.md, "Warden's own parts"):
 * - the engine is this process (its pid; the engine runs in the pid namespace it judges);
 * - the assistant is a child this process spawned, while it runs (trackChild);
 * - the console, which anyone may run, is the real node binary running the installed console
 *   script with no option that loads other code, and with no environment variable that does.
 * A command line names a script, but the process wrote it: `node --import x.mjs .../bin.js` runs
 * x.mjs first, so a script on the command line alone never makes a part.
 */
import type { ChildProcess } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { processMemoryReads } from '../kernel/bounded-reads.js';
import type { HostEnvironment } from '../policy/index.js';

export type OwnPart = 'engine' | 'console' | 'assistant';

/** What attribution found about a process (a subset of the enforcer's ProcessInfo). */
export interface ProcessFacts {
  readonly pid?: number;
  readonly executable?: string;
  readonly script?: string;
  readonly commandLine?: readonly string[];
}

/** The children this process spawned that are Warden's assistant, while they run. */
const assistants = new Set<number>();

/** Marks a child of this process as the assistant until it exits (its pid may be reused after). */
export function trackAssistant(child: ChildProcess): void {
  const pid = child.pid;
  if (pid === undefined) return; // spawning failed: the 'error' event says why
  assistants.add(pid);
  // 'exit' runs in the same turn as libuv's waitpid: no verdict sees the pid reaped but still listed.
  child.once('exit', () => assistants.delete(pid));
}

/**
 * Node options that may stand between `node` and the console's script: none of them loads code,
 * opens a debugger or changes what the script is. Any other option (`-r`, `--import`, `--loader`,
 * `--inspect`, `--env-file`, `--experimental-policy`, ...) makes the process not the console.
 */
const HARMLESS_NODE_OPTIONS =
  /^--(enable-source-maps|no-warnings|no-deprecation|trace-warnings|max-old-space-size=[0-9]+)$/;

/**
 * Environment variables that load code into a node process before or besides its script: Node's
 * own options and module path, the dynamic loader's preloads and library paths, OpenSSL's config
 * (it can load providers and engines from any file) and glibc's gconv modules.
 */
const CODE_LOADING_ENV =
  /^(NODE_OPTIONS|NODE_PATH|LD_[A-Z_]+|OPENSSL_CONF|OPENSSL_MODULES|OPENSSL_ENGINES|GCONV_PATH)=/;

/** True when a /proc/PID/environ text (NUL-separated) sets none of CODE_LOADING_ENV. */
export function environmentIsClean(environ: Buffer): boolean {
  for (const entry of environ.toString('latin1').split('\0')) if (CODE_LOADING_ENV.test(entry)) return false;
  return true;
}

/** True when the command line is `node [harmless options] SCRIPT [arguments]` (after `--`, the script). */
export function plainScriptCommandLine(commandLine: readonly string[]): boolean {
  for (let i = 1; i < commandLine.length; i++) {
    const arg = commandLine[i]!;
    if (arg === '--') return i + 1 < commandLine.length;
    if (!arg.startsWith('-')) return arg !== '';
    if (!HARMLESS_NODE_OPTIONS.test(arg)) return false;
  }
  return false;
}

export interface OwnPartsOptions {
  /** Real paths of the installed scripts. */
  readonly executables: HostEnvironment['executables'];
  /** Real path of the node binary that runs Warden (the engine's own). */
  readonly node: string;
  /** Default: this process's pid. */
  readonly enginePid?: number;
  /** Root of /proc (default `/proc`). */
  readonly procRoot?: string;
}

/** Tells Warden's parts from other programs (see the file comment). */
export class OwnParts {
  readonly #o: OwnPartsOptions;
  readonly #enginePid: number;

  constructor(options: OwnPartsOptions) {
    this.#o = options;
    this.#enginePid = options.enginePid ?? process.pid;
  }

  /** The part a process is, or null for any other program. */
  async partOf(p: ProcessFacts): Promise<OwnPart | null> {
    if (p.pid === undefined) return null;
    if (p.pid === this.#enginePid) return 'engine';
    if (assistants.has(p.pid)) return 'assistant';
    if (
      p.executable !== this.#o.node ||
      p.script !== this.#o.executables.console ||
      p.commandLine === undefined ||
      !plainScriptCommandLine(p.commandLine)
    )
      return null;
    // Read now, not from attribution's per-process cache: a process that exec'd keeps its pid.
    const [environ, commandLine] = await Promise.all([
      this.#read(p.pid, 'environ'),
      this.#read(p.pid, 'cmdline'),
    ]);
    const now = commandLine?.toString('utf8').replace(/\0$/, '') ?? null;
    if (now !== p.commandLine.join('\0')) return null;
    return environ !== null && environmentIsClean(environ) ? 'console' : null;
  }

  /** /proc/PID/environ or cmdline; null when unreadable or not read in time (it takes the process's memory lock). */
  async #read(pid: number, file: 'environ' | 'cmdline'): Promise<Buffer | null> {
    const read = await processMemoryReads.run(() =>
      readFile(`${this.#o.procRoot ?? '/proc'}/${pid}/${file}`),
    );
    return read.ok ? read.value : null;
  }
}
