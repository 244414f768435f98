/**
 * Keeps the verdict cache's liveness element in the kernel (src/kernel/ruleset-guards.ts LIVE_SET,
 * docs/attribution.md "Verdict cache"): the ruleset accepts a connection the cache marked only while
 * it is there, and it expires LIVE_TIMEOUT_S after its last renewal.
 *
 * The renewals come from a child of the engine (bash feeding `nft -e -i`, no process start per
 * renewal) that renews every LIVE_RENEW_MS for as long as its stdin, a pipe from the engine, is
 * open: the kernel closes it when the engine dies however it dies, so a killed engine's acceptance
 * ends within LIVE_TIMEOUT_S; an engine that is only slow or stopped (SIGSTOP) keeps it, as it keeps
 * its programs and its ring of hits. A line `renew` renews at once (after an apply that loaded a new
 * set). A stopping engine closes the pipe, waits for the child, and removes the element before its
 * BPF programs are detached.
 *
 * nft echoes each renewal the kernel took (`add element ...`) and prints `Error: ...` for one it
 * refused, both read here: a renewal that fails costs only speed (the cache's connections are
 * queued and decided as without it), but it is logged once per episode and engine.status shows it
 * (`verdictCache.liveness`). A renewer that ended, or that renewed nothing for STALL_MS, is started
 * again (its whole process group ended first) after RESTART_FIRST_MS, doubled after each restart
 * that renewed nothing, at most RESTART_MAX_MS: one that cannot start does not spin.
 *
 * The first start waits until no TCP socket of the namespace that was connecting then (SYN_SENT) is
 * still connecting: a socket whose connect began before the mark guards were attached
 * (native/bpf_guard.c) has no guard for its SYNs sent again, and one given the decided bit would be
 * accepted (docs/security.md). Sockets connecting later are guarded and not waited for.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { performance } from 'node:perf_hooks';
import { createInterface } from 'node:readline';
import { TABLE_FAMILY, TABLE_NAME } from '../kernel/ruleset.js';
import { LIVE_RENEW_MS, LIVE_SET, LIVE_TIMEOUT_S } from '../kernel/ruleset-guards.js';
import type { VerdictCacheLiveness } from '../protocol/methods.js';
import type { EngineLog } from './daemon.js';

const SET = `${TABLE_FAMILY} ${TABLE_NAME} ${LIVE_SET}`;
/** read's status above 128 is its timeout: renew; a `renew` line: renew now; end of input: stop. */
const RENEWER = `while :; do
  echo 'flush set ${SET}; add element ${SET} { tcp }'
  read -r -t ${LIVE_RENEW_MS / 1000} line; status=$?
  [ "$status" -gt 128 ] || [ "$line" = renew ] || break
done | exec nft -e -i 2>&1`;
/** How long a stop waits for the renewer to end before killing it. */
const END_WAIT_MS = 3000;
/** The first wait before a renewer that ended is started again, and the longest. */
export const RESTART_FIRST_MS = 250;
export const RESTART_MAX_MS = 30_000;
/** A running renewer that renewed nothing for this long (the element expired long ago) is restarted. */
export const STALL_MS = 5 * LIVE_TIMEOUT_S * 1000;
/** How late the stall check may run before the engine counts as stopped or busy (its pipe not read yet), and how long it then waits. */
const WATCH_MS = 1000;

export class CacheLiveness {
  readonly #remove: () => Promise<boolean>;
  readonly #log: EngineLog;
  #child: ChildProcess | undefined;
  /** When the renewer started and last renewed, by performance.now(): a wall clock set forward or back moves neither. */
  #startedAt = 0;
  #ending = false;
  #restartTimer: NodeJS.Timeout | undefined;
  #restartDelay = RESTART_FIRST_MS;
  /** The stall check (#check): one timer, due when the renewer would have renewed nothing for STALL_MS. */
  #watch: NodeJS.Timeout | undefined;
  #renewals = 0;
  #failures = 0;
  #restarts = 0;
  #lastRenewal = 0;
  #lastError: string | undefined;
  /** What went wrong since the last renewal the kernel took (logged once), or null. */
  #trouble: 'refused' | 'ended' | 'stalled' | null = null;
  readonly #connecting: () => Promise<Set<string>>;
  /** Before the first start: the sockets connecting since before the guards, still waited for. */
  #unguarded: Set<string> | undefined;
  #waiting: NodeJS.Timeout | undefined;
  #snapshot = false;

  /**
   * `remove()` takes the element out of the kernel and resolves whether the kernel took it;
   * `connecting()` gives the namespace's connecting TCP sockets (inodes).
   */
  constructor(
    remove: () => Promise<boolean>,
    log: EngineLog,
    connecting: () => Promise<Set<string>> = connectingSockets,
  ) {
    this.#remove = remove;
    this.#log = log;
    this.#connecting = connecting;
  }

  /** Starts the renewer (at once, also when a restart waits), or has it renew at once. */
  keep(): void {
    if (this.#ending) return;
    if (this.#child !== undefined) {
      this.#child.stdin?.write('renew\n');
      return;
    }
    if (this.#unguarded === undefined) {
      this.#unguarded = new Set();
      void this.#waitForUnguarded();
      return;
    }
    if (this.#waiting !== undefined || !this.#snapshot || this.#unguarded.size > 0) return; // the wait starts it
    if (this.#restartTimer !== undefined) clearTimeout(this.#restartTimer);
    this.#restartTimer = undefined;
    this.#start();
  }

  /** Starts the renewer once none of the sockets connecting at the first read still connects. */
  async #waitForUnguarded(): Promise<void> {
    this.#waiting = undefined;
    let now: Set<string> | null = null;
    try {
      now = await this.#connecting();
    } catch (e) {
      // Unknown: not started (its connections stay queued), read again; logged once.
      const why = `reading the connecting sockets failed: ${(e as Error).message}`;
      if (this.#lastError !== why) this.#log('error', `the verdict cache's liveness: ${why}; trying again`);
      this.#lastError = why;
    }
    if (this.#ending) return;
    if (now !== null) {
      const first = !this.#snapshot;
      this.#snapshot = true;
      const left = first ? now : new Set([...this.#unguarded!].filter((s) => now.has(s)));
      this.#unguarded = left;
      if (left.size === 0) {
        if (!first)
          this.#log('info', "the verdict cache's liveness: the connections begun before its guards are over");
        this.#start();
        return;
      }
      if (first)
        this.#log(
          'info',
          `the verdict cache's liveness waits for ${left.size} TCP connections begun before its mark guards were attached (their SYNs sent again are not guarded): its connections are queued until they are over`,
        );
    }
    this.#waiting = setTimeout(() => void this.#waitForUnguarded(), LIVE_RENEW_MS);
    this.#waiting.unref();
  }

  #start(): void {
    // A fixed search path and no BASH_ENV: nothing of the engine's environment picks the programs.
    // A process group of its own, ended whole when its leader ends (no orphan keeps renewing).
    const child = spawn('/bin/bash', ['-c', RENEWER], {
      stdio: ['pipe', 'pipe', 'ignore'],
      env: { PATH: '/usr/sbin:/usr/bin:/sbin:/bin' },
      detached: true,
    });
    this.#child = child;
    this.#startedAt = performance.now();
    // Not a reason for the engine to stay up; it ends with the engine's end of the pipe.
    child.unref();
    child.stdin!.on('error', () => {}); // a renewer that died: reported by 'exit'
    (child.stdin as unknown as { unref?: () => void }).unref?.();
    child.stdout!.on('error', () => {}); // the same
    (child.stdout as unknown as { unref?: () => void }).unref?.();
    createInterface({ input: child.stdout! }).on('line', (line) => {
      if (this.#child !== child) return;
      if (line.startsWith('add element ')) this.#renewed();
      else if (line.startsWith('Error: ')) this.#refused(line.slice('Error: '.length));
    });
    child.on('error', (e) => this.#gone(child, e.message));
    child.on('exit', (code, signal) => this.#gone(child, `exit ${signal ?? code}`));
    this.#armWatch(STALL_MS);
  }

  /**
   * Runs #check in `delayMs`. Not a tick every second: an idle engine wakes for it about once per
   * STALL_MS while the renewals come (each one is a line it reads anyway).
   */
  #armWatch(delayMs: number): void {
    if (this.#watch !== undefined) clearTimeout(this.#watch);
    const due = performance.now() + delayMs;
    this.#watch = setTimeout(() => this.#check(due), delayMs);
    this.#watch.unref();
  }

  #renewed(): void {
    this.#renewals++;
    this.#lastRenewal = performance.now();
    this.#restartDelay = RESTART_FIRST_MS;
    if (this.#trouble === null) return;
    this.#log('info', `the verdict cache's liveness is renewed again (after: ${this.#lastError})`);
    this.#trouble = null;
  }

  #refused(message: string): void {
    this.#failures++;
    this.#lastError = `nft refused a renewal: ${message}`;
    if (this.#trouble !== null) return;
    this.#trouble = 'refused';
    this.#log(
      'error',
      `renewing the verdict cache's liveness failed (${this.#lastError}): the connections it decides are queued and decided by the engine until a renewal succeeds (tried every ${LIVE_RENEW_MS} ms)`,
    );
  }

  /**
   * A renewer that renewed nothing for STALL_MS is ended (then restarted by #gone); otherwise the
   * check is due again when it would have been quiet that long. Without a renewer (ended, or
   * ending) nothing is due: the next #start arms the check.
   */
  #check(due: number): void {
    this.#watch = undefined;
    const child = this.#child;
    if (child === undefined || this.#ending) return;
    const now = performance.now();
    // A late timer (the engine was stopped or busy): the renewals may wait unread in the pipe, and
    // timers run before the pipe is read. They are read first, and judged WATCH_MS later.
    if (now - due > WATCH_MS) {
      this.#armWatch(WATCH_MS);
      return;
    }
    const quiet = now - Math.max(this.#lastRenewal, this.#startedAt);
    if (quiet < STALL_MS) {
      this.#armWatch(STALL_MS - quiet);
      return;
    }
    this.#lastError = `the renewer renewed nothing for ${STALL_MS / 1000} s`;
    if (this.#trouble === null)
      this.#log('error', `the verdict cache's liveness: ${this.#lastError}; ending and starting it again`);
    this.#trouble = 'stalled';
    endGroup(child);
  }

  #gone(child: ChildProcess, why: string): void {
    if (this.#child !== child) return;
    this.#child = undefined;
    endGroup(child);
    if (this.#ending) return;
    const delay = this.#restartDelay;
    this.#restartDelay = Math.min(delay * 2, RESTART_MAX_MS);
    if (this.#trouble !== 'stalled') this.#lastError = `the renewer ended (${why})`;
    if (this.#trouble === null) {
      this.#trouble = 'ended';
      this.#log(
        'error',
        `the verdict cache's liveness renewer ended (${why}): the connections it decides are queued and decided by the engine until it renews again; starting it again in ${delay} ms (waiting twice as long after each start that renews nothing, at most ${RESTART_MAX_MS / 1000} s)`,
      );
    } else if (delay < RESTART_MAX_MS && this.#restartDelay === RESTART_MAX_MS) {
      this.#log(
        'error',
        `the verdict cache's liveness renewer still renews nothing after ${this.#restarts} restarts (${this.#lastError}): starting it again every ${RESTART_MAX_MS / 1000} s`,
      );
    }
    this.#restartTimer = setTimeout(() => {
      this.#restartTimer = undefined;
      if (this.#ending || this.#child !== undefined) return;
      this.#restarts++;
      this.#start();
    }, delay);
    this.#restartTimer.unref();
  }

  /** For engine.status `verdictCache.liveness`. */
  status(): VerdictCacheLiveness {
    const now = performance.now();
    const live = this.#lastRenewal > 0 && now - this.#lastRenewal < LIVE_TIMEOUT_S * 1000;
    const state = this.#ending
      ? 'stopped'
      : this.#child === undefined
        ? this.#restartTimer !== undefined
          ? 'restarting'
          : this.#unguarded !== undefined && this.#renewals === 0 && this.#restarts === 0
            ? 'waiting'
            : 'stopped'
        : this.#trouble === null && live
          ? 'renewing'
          : this.#trouble === null && now - this.#startedAt < LIVE_TIMEOUT_S * 1000
            ? 'starting'
            : 'failing';
    return {
      state,
      live: live && !this.#ending,
      renewals: this.#renewals,
      failures: this.#failures,
      restarts: this.#restarts,
      ...(this.#lastRenewal > 0
        ? { lastRenewal: new Date(Date.now() - (now - this.#lastRenewal)).toISOString() }
        : {}),
      ...(this.#lastError !== undefined ? { lastError: this.#lastError } : {}),
      ...(this.#unguarded !== undefined && this.#unguarded.size > 0
        ? { unguarded: this.#unguarded.size }
        : {}),
    };
  }

  /** Stops renewing; with `remove`, takes the element out of the kernel once the renewer ended. */
  async end(remove: boolean): Promise<void> {
    const child = this.#child;
    this.#ending = true;
    if (this.#restartTimer !== undefined) clearTimeout(this.#restartTimer);
    if (this.#watch !== undefined) clearTimeout(this.#watch);
    if (this.#waiting !== undefined) clearTimeout(this.#waiting);
    this.#restartTimer = this.#watch = this.#waiting = undefined;
    if (child !== undefined) {
      const exited = new Promise<void>((resolve) => {
        if (child.exitCode !== null || child.signalCode !== null) resolve();
        else child.once('exit', () => resolve());
      });
      child.stdin?.end();
      const timer = setTimeout(() => endGroup(child), END_WAIT_MS);
      await exited;
      clearTimeout(timer);
      this.#child = undefined;
    }
    if (!remove) return;
    const ok = await this.#remove().catch(() => false);
    if (!ok)
      this.#log(
        'error',
        `removing the verdict cache's liveness from the kernel failed: connections its mark decided are accepted until it expires (${LIVE_TIMEOUT_S} s)`,
      );
  }
}

/** Kills the renewer's process group (bash, its loop, nft), by the leader's pid, which is the group's id. */
function endGroup(child: ChildProcess): void {
  if (child.pid === undefined) return;
  try {
    process.kill(-child.pid, 'SIGKILL');
  } catch {
    // Every process of the group has ended already.
  }
}

/** TCP sockets of this process's network namespace in SYN_SENT (state 02 of /proc/self/net/tcp, tcp6): their inodes. */
export async function connectingSockets(): Promise<Set<string>> {
  const out = new Set<string>();
  for (const file of ['/proc/self/net/tcp', '/proc/self/net/tcp6']) {
    let text: string;
    try {
      text = await readFile(file, 'utf8');
    } catch (e) {
      // No IPv6 in this kernel: no such sockets.
      if ((e as NodeJS.ErrnoException).code === 'ENOENT' && file.endsWith('6')) continue;
      throw e;
    }
    for (const line of text.split('\n').slice(1)) {
      const f = line.trim().split(/\s+/);
      if (f[3] === '02' && f[9] !== undefined) out.add(f[9]);
    }
  }
  return out;
}
