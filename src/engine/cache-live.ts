/**
 * Keeps the verdict cache's liveness element in the kernel (src/kernel/ruleset-guards.ts LIVE_SET,
 * docs/attribution.md "Verdict cache"): the ruleset accepts a connection the cache marked only while
 * it is there, and it expires LIVE_TIMEOUT_S after its last renewal.
 *
 * The renewals come from a child of the engine (bash feeding `nft -i`, no process start per
 * renewal) that renews every LIVE_RENEW_MS for as long as its stdin, a pipe from the engine, is
 * open: the kernel closes it when the engine dies however it dies, so a killed engine's acceptance
 * ends within LIVE_TIMEOUT_S; an engine that is only slow or stopped (SIGSTOP) keeps it, as it keeps
 * its programs and its ring of hits. A line `renew` renews at once (after an apply that loaded a new
 * set). A stopping engine closes the pipe, waits for the child, and removes the element before its
 * BPF programs are detached. A renewal that fails costs only speed: the cache's connections are
 * queued and decided as without it.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { TABLE_FAMILY, TABLE_NAME } from '../kernel/ruleset.js';
import { LIVE_RENEW_MS, LIVE_SET, LIVE_TIMEOUT_S } from '../kernel/ruleset-guards.js';
import type { EngineLog } from './daemon.js';

const SET = `${TABLE_FAMILY} ${TABLE_NAME} ${LIVE_SET}`;
/** read's status above 128 is its timeout: renew; a `renew` line: renew now; end of input: stop. */
const RENEWER = `while :; do
  echo 'flush set ${SET}; add element ${SET} { tcp }'
  read -r -t ${LIVE_RENEW_MS / 1000} line; status=$?
  [ "$status" -gt 128 ] || [ "$line" = renew ] || break
done | exec nft -i >/dev/null 2>&1`;
/** How long a stop waits for the renewer to end before killing it. */
const END_WAIT_MS = 3000;

export class CacheLiveness {
  readonly #remove: () => Promise<boolean>;
  readonly #log: EngineLog;
  #child: ChildProcess | undefined;
  #ending = false;

  /** `remove()` takes the element out of the kernel and resolves whether the kernel took it. */
  constructor(remove: () => Promise<boolean>, log: EngineLog) {
    this.#remove = remove;
    this.#log = log;
  }

  /** Starts the renewer, or has it renew at once. */
  keep(): void {
    if (this.#ending) return;
    if (this.#child !== undefined) {
      this.#child.stdin?.write('renew\n');
      return;
    }
    // A fixed search path and no BASH_ENV: nothing of the engine's environment picks the programs.
    const child = spawn('/bin/bash', ['-c', RENEWER], {
      stdio: ['pipe', 'ignore', 'ignore'],
      env: { PATH: '/usr/sbin:/usr/bin:/sbin:/bin' },
    });
    this.#child = child;
    // Not a reason for the engine to stay up; it ends with the engine's end of the pipe.
    child.unref();
    child.stdin!.on('error', () => {}); // a renewer that died: reported by 'exit'
    (child.stdin as unknown as { unref?: () => void }).unref?.();
    child.on('error', (e) => this.#gone(child, e.message));
    child.on('exit', (code, signal) => this.#gone(child, `exit ${signal ?? code}`));
  }

  #gone(child: ChildProcess, why: string): void {
    if (this.#child !== child) return;
    this.#child = undefined;
    if (!this.#ending)
      this.#log(
        'error',
        `the verdict cache's liveness renewer ended (${why}): its connections are queued until the next apply starts it again`,
      );
  }

  /** Stops renewing; with `remove`, takes the element out of the kernel once the renewer ended. */
  async end(remove: boolean): Promise<void> {
    const child = this.#child;
    this.#ending = true;
    if (child !== undefined) {
      const exited = new Promise<void>((resolve) => {
        if (child.exitCode !== null || child.signalCode !== null) resolve();
        else child.once('exit', () => resolve());
      });
      child.stdin?.end();
      const timer = setTimeout(() => child.kill('SIGKILL'), END_WAIT_MS);
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
