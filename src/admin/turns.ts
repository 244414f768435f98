/**
 * One queue for the administration calls that do synchronous work of some
 * length (a log search, a policy explain or lint): they run one at a time, one
 * per turn of the event loop, in the order they came. Between two of them the
 * loop polls its sockets, so the kernel queue's verdicts and every other call
 * wait for at most one piece of work (each bounded by its own budget), however
 * many such calls consoles pipeline.
 */
export class Turns {
  readonly #waiting: (() => void)[] = [];
  #running = false;

  /** Runs `work` when its turn comes; resolves (or rejects) with what it returned (or threw). */
  run<T>(work: () => T): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      this.#waiting.push(() => {
        try {
          resolve(work());
        } catch (e) {
          reject(e);
        }
      });
      if (!this.#running) this.#next();
    });
  }

  #next(): void {
    this.#running = this.#waiting.length > 0;
    if (!this.#running) return;
    // setImmediate: the next piece of work runs after the loop has polled I/O once.
    setImmediate(() => {
      this.#waiting.shift()!();
      this.#next();
    });
  }
}
