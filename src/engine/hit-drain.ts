/**
 * When the engine reads the verdict cache's hits (kernel-backend.ts): `delayMs` after the ring's
 * watch says some wait (native/bpf_cache.c), in slices of `slice` with a turn of the event loop
 * between them (a flood of hits does not hold queued decisions), then the watch is armed again.
 * An engine without hits sleeps: reading the ring on a timer woke an idle engine ten times a
 * second. Where the watch cannot be had, or fails, the ring is read every `delayMs`.
 */

/** The ring's watch: calls its `onEvents` once when hits wait; `arm()` for the next call. */
export interface RingWatch {
  arm(): void;
  close(): void;
}

export interface HitDrainOptions {
  /** Reads up to `budget` hits; how many it read. */
  readonly drain: (budget: number) => number;
  readonly slice: number;
  readonly delayMs: number;
  /** Opens the ring's watch (throws when it cannot); absent: the timer. */
  readonly watch?: (onEvents: () => void) => RingWatch;
  readonly log: (level: 'warn' | 'error', message: string) => void;
}

export class HitDrain {
  readonly #o: HitDrainOptions;
  #draining = false;
  #stopped = false;
  #timer: NodeJS.Timeout | undefined;
  #interval: NodeJS.Timeout | undefined;
  #watch: RingWatch | undefined;

  constructor(options: HitDrainOptions) {
    this.#o = options;
    if (options.watch === undefined) {
      this.#everyDelay();
      return;
    }
    try {
      this.#watch = options.watch(() => this.#later());
    } catch (e) {
      options.log(
        'warn',
        `the verdict cache's hits are read every ${options.delayMs} ms: ${(e as Error).message}`,
      );
      this.#everyDelay();
    }
  }

  /** Whether hits are read when the ring says so (false: on the timer). */
  get watched(): boolean {
    return this.#watch !== undefined;
  }

  /** No more reads; the caller drains what is left itself. */
  stop(): void {
    this.#stopped = true;
    clearTimeout(this.#timer);
    clearInterval(this.#interval);
    this.#watch?.close();
    this.#watch = undefined;
  }

  #later(): void {
    if (this.#stopped || this.#draining || this.#timer !== undefined) return;
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      this.#slice();
    }, this.#o.delayMs).unref();
  }

  #slice(): void {
    if (this.#stopped) return;
    this.#draining = this.#o.drain(this.#o.slice) >= this.#o.slice;
    if (this.#draining) setImmediate(() => this.#slice());
    else this.#arm();
  }

  #arm(): void {
    if (this.#stopped || this.#watch === undefined) return;
    try {
      this.#watch.arm();
    } catch (e) {
      this.#o.log(
        'error',
        `watching the verdict cache's hits failed, read on a timer now: ${(e as Error).message}`,
      );
      this.#watch.close();
      this.#watch = undefined;
      this.#everyDelay();
    }
  }

  #everyDelay(): void {
    this.#interval ??= setInterval(() => {
      if (!this.#draining) this.#slice();
    }, this.#o.delayMs).unref();
  }
}
