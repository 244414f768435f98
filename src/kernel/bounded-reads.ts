/**
 * Reads that another program can make hang, run so that they cannot hold the engine: a real path
 * on a hung mount (FUSE, NFS), or /proc/PID/cmdline and environ of a process that keeps its memory
 * lock taken (a thread stuck in a fault on its own unresponsive FUSE file, another one waiting to
 * map memory: every reader of that process's memory waits behind them). Each read runs on libuv's
 * thread pool and is waited for at most a deadline; at most `slots` run at once, so reads that
 * never come back hold at most that many of the pool's 4 threads; once every slot is held by a
 * read past its deadline, further reads give up at once.
 */
import { performance } from 'node:perf_hooks';

export type BoundedRead<T> = { ok: true; value: T } | { ok: false; late: boolean };
const LATE = { ok: false, late: true } as const;
const FAILED = { ok: false, late: false } as const;

export class BoundedReads {
  readonly #slots: number;
  readonly #deadlineMs: number;
  #busy = 0;
  /** Reads still running past their deadline. */
  #stuck = 0;
  readonly #waiting = new Set<() => void>();

  constructor(slots: number, deadlineMs: number) {
    this.#slots = slots;
    this.#deadlineMs = deadlineMs;
  }

  /** The read's value, or why there is none: it failed, or `late` (the deadline passed, or every slot is stuck). */
  async run<T>(read: () => Promise<T>): Promise<BoundedRead<T>> {
    const deadline = performance.now() + this.#deadlineMs;
    while (this.#busy >= this.#slots) {
      const left = deadline - performance.now();
      if (this.#stuck >= this.#slots || left <= 0) return LATE;
      await new Promise<void>((wake) => {
        const done = () => {
          clearTimeout(timer);
          this.#waiting.delete(done);
          wake();
        };
        const timer = setTimeout(done, left);
        this.#waiting.add(done);
      });
    }
    this.#busy++;
    let late = false;
    let timer: NodeJS.Timeout | undefined;
    const expired = new Promise<BoundedRead<T>>((resolve) => {
      timer = setTimeout(
        () => {
          late = true;
          this.#stuck++;
          resolve(LATE);
        },
        Math.max(0, deadline - performance.now()),
      );
    });
    const result = read().then(
      (value): BoundedRead<T> => ({ ok: true, value }),
      (): BoundedRead<T> => FAILED,
    );
    void result.then(() => {
      clearTimeout(timer);
      if (late) this.#stuck--;
      this.#busy--;
      const next = this.#waiting.values().next();
      if (!next.done) next.value();
    });
    return Promise.race([result, expired]);
  }
}

/**
 * The engine's reads of other processes' memory (/proc/PID/cmdline, environ): 2 slots, 200 ms.
 * Shared by attribution and OwnParts, since they share the thread pool.
 */
export const processMemoryReads = new BoundedReads(2, 200);
