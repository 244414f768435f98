/**
 * Work that waits until the verdicts of this turn of the event loop are given: what the kernel does
 * not need to let a queued packet go (appending its log item; inserting its verdict in the verdict
 * cache) is collected during the turn (the packets of one read of the queue socket and the
 * judgements that settle with them) and done in order from one setImmediate, which runs after the
 * queue's read has sent those verdicts (native/nfqueue.c, on_drained).
 */
import type { NewLogItem } from '../protocol/log-item.js';

export class AfterVerdicts {
  #waiting: (NewLogItem | (() => void))[] = [];
  #scheduled = false;
  readonly #append: (item: NewLogItem) => void;

  constructor(append: (item: NewLogItem) => void) {
    this.#append = append;
  }

  /** A log item, appended after the verdicts. */
  push(item: NewLogItem): void {
    this.#wait(item);
  }

  /** A task, run after the verdicts (in order with the log items); it handles its own errors. */
  run(task: () => void): void {
    this.#wait(task);
  }

  #wait(entry: NewLogItem | (() => void)): void {
    this.#waiting.push(entry);
    if (this.#scheduled) return;
    this.#scheduled = true;
    setImmediate(() => this.flush());
  }

  /** Does everything waiting now (also on stop, before the store closes). */
  flush(): void {
    this.#scheduled = false;
    const waiting = this.#waiting;
    if (waiting.length === 0) return;
    this.#waiting = [];
    for (const entry of waiting) typeof entry === 'function' ? entry() : this.#append(entry);
  }
}
