/**
 * logs.query with order `newest`: the newest matches first (like `journalctl -n`), answered above the
 * store with its ordinary oldest-first query, window by window downwards from the top. Each window is
 * at most SCAN_WINDOW seqs, so one store call covers it (the store's own time budget bounds each call);
 * the handler stops between windows after about 40 ms and says how far down it searched.
 */
import type { LogItem, LogQueryParsed } from '../protocol/log-item.js';
import type { LogStore } from './log-store.js';

/** Seqs one window spans at most (the SQLite store reads one such window per SELECT). */
const MAX_WINDOW = 65_536;
/** Milliseconds of work per call before the answer stops between two windows. */
const BUDGET_MS = 40;
const STORE_LIMIT = 10_000;

/**
 * The newest `q.limit` items matching `q`, newest first, with seq < q.beforeSeq and >= q.fromSeq.
 * `searchedTo`, when present, is the lowest seq searched: every match from it up to beforeSeq is in
 * `items`; ask again with beforeSeq = searchedTo for older ones.
 */
export function newestFirst(
  store: LogStore,
  q: LogQueryParsed,
  budgetMs = BUDGET_MS,
): { items: LogItem[]; lastSeq: number; searchedTo?: number } {
  const { order: _order, beforeSeq, fromSeq, limit, ...filters } = q;
  const lastSeq = store.lastSeq;
  const floor = fromSeq ?? 1;
  let hi = Math.min(lastSeq, (beforeSeq ?? Number.POSITIVE_INFINITY) - 1);
  const out: LogItem[] = [];
  let window = Math.min(MAX_WINDOW, Math.max(256, limit * 2));
  const deadline = performance.now() + budgetMs;
  let first = true;
  while (hi >= floor && out.length < limit) {
    if (!first && performance.now() > deadline) return { items: out, lastSeq, searchedTo: hi + 1 };
    first = false;
    const lo = Math.max(floor, hi - window + 1);
    // Every match in [lo, hi], oldest first; a store call may stop early (its budget, its limit).
    const found: LogItem[] = [];
    for (let from = lo; from <= hi; ) {
      const asked = Math.min(STORE_LIMIT, hi - from + 1);
      const r = store.query({ ...filters, fromSeq: from, limit: asked });
      for (const item of r.items) if (item.seq <= hi) found.push(item);
      const reached =
        r.searchedTo ??
        (r.items.length >= asked ? r.items[r.items.length - 1]!.seq : Number.POSITIVE_INFINITY);
      from = reached + 1;
    }
    for (let i = found.length - 1; i >= 0 && out.length < limit; i--) out.push(found[i]!);
    // Few matches this far down: look further at once (a rare filter need not take many calls).
    if (found.length < limit) window = Math.min(MAX_WINDOW, window * 4);
    hi = lo - 1;
  }
  return { items: out, lastSeq };
}
