/**
 * Small readers for what /proc and /etc/passwd say about a process: the
 * script an interpreter runs (so Warden's own Node programs can be told from
 * other Node programs), the effective uid in /proc/PID/status, and user names
 * by uid. The text parsers are pure; UserNames caches /etc/passwd.
 */
import { readFile } from 'node:fs/promises';

/** Interpreters whose first non-option argument is the program actually run. */
const NODE = /^(node|nodejs)$/;
const PYTHON = /^python[0-9.]*$/;

/** Node options that take the next argument as their value (`-r x`, `--import x`). */
const NODE_VALUE_OPTIONS = new Set([
  '-r',
  '--require',
  '--import',
  '--loader',
  '--experimental-loader',
  '-C',
  '--conditions',
  '--input-type',
  '--title',
  '--env-file',
  '--inspect-port',
  '--debug-port',
  '--openssl-config',
  '--icu-data-dir',
  '--redirect-warnings',
  '--diagnostic-dir',
]);
/** Node options after which there is no script (the code comes from the command line or stdin). */
const NODE_NO_SCRIPT = new Set(['-e', '--eval', '-p', '--print', '-i', '--interactive', '-']);
const PYTHON_VALUE_OPTIONS = new Set(['-W', '-X', '-Q']);
const PYTHON_NO_SCRIPT = new Set(['-c', '-m', '-']);

/** True when the executable is an interpreter Warden looks through (Node, Python). */
export function isInterpreter(executable: string): boolean {
  const name = executable.slice(executable.lastIndexOf('/') + 1);
  return NODE.test(name) || PYTHON.test(name);
}

/**
 * The script argument of an interpreter's command line, as written (maybe
 * relative): the first argument after argv[0] that is not an option or an
 * option's value. Null for `node -e ...`, `python3 -m ...`, a REPL, or a
 * program that is not an interpreter.
 */
export function scriptArgument(executable: string, commandLine: readonly string[]): string | null {
  const name = executable.slice(executable.lastIndexOf('/') + 1);
  const node = NODE.test(name);
  if (!node && !PYTHON.test(name)) return null;
  const valueOptions = node ? NODE_VALUE_OPTIONS : PYTHON_VALUE_OPTIONS;
  const noScript = node ? NODE_NO_SCRIPT : PYTHON_NO_SCRIPT;
  for (let i = 1; i < commandLine.length; i++) {
    const arg = commandLine[i]!;
    if (arg === '--') return commandLine[i + 1] ?? null;
    if (noScript.has(arg)) return null;
    if (!arg.startsWith('-') || arg === '') return arg === '' ? null : arg;
    if (valueOptions.has(arg)) i++;
  }
  return null;
}

/** The effective uid from /proc/PID/status text (`Uid:\treal\teffective\tsaved\tfs`), or null. */
export function effectiveUid(statusText: string): number | null {
  const match = /^Uid:\s+\d+\s+(\d+)/m.exec(statusText);
  return match ? Number(match[1]) : null;
}

/** uid → name from /etc/passwd text; the first line for a uid wins (as getpwuid does). */
export function parsePasswd(text: string): Map<number, string> {
  const names = new Map<number, string>();
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const fields = line.split(':');
    if (fields.length < 3 || fields[0] === '' || !/^[0-9]+$/.test(fields[2]!)) continue;
    const uid = Number(fields[2]);
    if (!names.has(uid)) names.set(uid, fields[0]!);
  }
  return names;
}

/** User names by uid from a passwd file, reloaded on a miss at most once per `reloadMs`. */
export class UserNames {
  private names = new Map<number, string>();
  private loadedAt = Number.NEGATIVE_INFINITY;
  private loading: Promise<void> | null = null;

  constructor(
    private readonly path = '/etc/passwd',
    private readonly reloadMs = 5000,
  ) {}

  /** The name of a uid already loaded, without waiting; undefined when not (then use nameOf). */
  known(uid: number): string | undefined {
    return this.names.get(uid);
  }

  async nameOf(uid: number): Promise<string | null> {
    const known = this.names.get(uid);
    if (known !== undefined) return known;
    // A load under way (its loadedAt is already set) is waited for: at start, concurrent first
    // attributions would otherwise answer null before the file was read.
    if (this.loading !== null) await this.loading;
    else if (Date.now() - this.loadedAt >= this.reloadMs) {
      this.loading ??= this.load().finally(() => {
        this.loading = null;
      });
      await this.loading;
    }
    return this.names.get(uid) ?? null;
  }

  private async load(): Promise<void> {
    this.loadedAt = Date.now();
    try {
      this.names = parsePasswd(await readFile(this.path, 'utf8'));
    } catch {
      // No passwd file (a minimal container): names stay unknown, uids still work.
    }
  }
}
