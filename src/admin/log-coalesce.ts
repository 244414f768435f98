/**
 * Repeats of one connection attempt as one log item (issue 13): a denied TCP
 * connection is retried by the kernel (SYN retransmits at about 1, 3, 7 s), and
 * each retry is judged and logged again. The store keeps the first attempt's
 * item and raises its `count` for every repeat that comes within `windowMs`
 * of the previous one: same kind, verdict, direction, protocol, application,
 * both ends (addresses and ports: a new attempt has a new local port), host,
 * rule, user and message. Pure: the store decides what a repeat changes.
 */
import type { LogItem, NewLogItem } from '../protocol/log-item.js';

/** How long after an attempt a repeat of it is counted into its item (ms). */
export const REPEAT_WINDOW_MS = 5000;
/** Attempts remembered at most (the oldest are forgotten first): memory stays bounded under a flood. */
export const REPEAT_MEMORY = 4096;

/**
 * The fields a repeat shares with its first attempt, as one string: joined by NUL (no field an item
 * keeps holds one: paths, names and messages are text), each absent field as a lone \u0001; a
 * field that holds either character takes the JSON form instead, so no two different items share a
 * key. (JSON for every item cost more than the rest of an append on the verdict cache's hits.)
 */
export function repeatKey(item: NewLogItem): string {
  const f = [
    item.kind,
    item.verdict,
    item.direction,
    item.protocol,
    item.application,
    item.local,
    item.remote,
    item.host,
    item.rule,
    item.user,
    item.source,
    item.message,
  ];
  const parts: string[] = [];
  for (let i = 0; i < f.length; i++) {
    const v = f[i];
    if (v === undefined) parts.push('\u0001');
    else if (v.includes('\u0000') || v.includes('\u0001')) return `\u0002${JSON.stringify(f)}`;
    else parts.push(v);
  }
  // One flat string (join), not a tree of concatenations: the key lives as long as the attempt is
  // remembered, and a tree of two dozen pieces made young-generation collections copy them all.
  parts.push('');
  return parts.join('\u0000');
}

/**
 * What is remembered of an attempt: its item's number and time, and its count so far; not the item,
 * whose strings would be kept as long (see repeatKey).
 */
export interface AttemptSight {
  readonly seq: number;
  readonly time: string;
  count: number;
  lastMs: number;
}

export class RepeatCoalescer {
  readonly #windowMs: number;
  readonly #capacity: number;
  /** Key -> the attempt's sight; in the order of last sight (oldest first). */
  readonly #recent = new Map<string, AttemptSight>();

  constructor(windowMs = REPEAT_WINDOW_MS, capacity = REPEAT_MEMORY) {
    this.#windowMs = windowMs;
    this.#capacity = capacity;
  }

  /**
   * The attempt `key` names (seen within the window), its `count` raised by one, or undefined when
   * it is a new attempt (then call `remember` with its stored item).
   */
  repeat(key: string, nowMs: number): AttemptSight | undefined {
    this.#forgetBefore(nowMs - this.#windowMs);
    const seen = this.#recent.get(key);
    if (seen === undefined) return undefined;
    // Moved to the end: the map stays in the order of last sight.
    this.#recent.delete(key);
    seen.lastMs = nowMs;
    this.#recent.set(key, seen);
    seen.count++;
    return seen;
  }

  remember(key: string, stored: Pick<LogItem, 'seq' | 'time' | 'count'>, nowMs: number): void {
    this.#recent.set(key, { seq: stored.seq, time: stored.time, count: stored.count ?? 1, lastMs: nowMs });
    if (this.#recent.size > this.#capacity) this.#recent.delete(this.#recent.keys().next().value!);
  }

  /** How many attempts are remembered (for tests). */
  get size(): number {
    return this.#recent.size;
  }

  #forgetBefore(cutoff: number): void {
    for (const [key, seen] of this.#recent) {
      if (seen.lastMs >= cutoff) break;
      this.#recent.delete(key);
    }
  }
}
