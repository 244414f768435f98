/**
 * The SQL of logs.query's filters over the log store's tables (schema version
 * 2, log-schema.ts), the text index's query for a `text` needle, and the
 * paging of an export over the store's selections.
 */
import type { Writable } from 'node:stream';
import type { LogItem, LogQueryParsed } from '../protocol/log-item.js';
import { kindCodeOf, verdictCodeOf } from './log-row.js';

/** The columns itemOfRow needs. */
export const ITEM_COLUMNS =
  'log.seq, log.time_ms, log.time, log.kind, log.verdict, log.application, log.fields';

/** SQL conditions (and their arguments) for the filters other than fromSeq and text. */
export function filters(q: Omit<LogQueryParsed, 'limit'>): { where: string[]; args: unknown[] } {
  const where: string[] = [];
  const args: unknown[] = [];
  if (q.kind !== undefined) {
    where.push('log.kind = ?');
    args.push(kindCodeOf(q.kind));
  }
  if (q.verdict !== undefined) {
    where.push('log.verdict = ?');
    args.push(verdictCodeOf(q.verdict));
  }
  // Conditions true of every item such a query matches, in the words of the partial indexes' WHERE.
  if (q.kind !== undefined && kindCodeOf(q.kind) > 0) where.push('log.kind > 0');
  if (q.verdict !== undefined && verdictCodeOf(q.verdict) > 1) where.push('log.verdict > 1');
  if (q.application !== undefined) {
    where.push('log.application = ?');
    args.push(q.application);
  }
  if (q.address !== undefined) {
    where.push('(log.local_address = ? OR log.remote_address = ?)');
    args.push(q.address, q.address);
  }
  // An item whose time does not parse passes time bounds, as in logItemMatches (NaN compares false).
  if (q.since !== undefined) {
    where.push('(log.time_ms >= ? OR log.time_ms IS NULL)');
    args.push(Date.parse(q.since));
  }
  if (q.until !== undefined) {
    where.push('(log.time_ms <= ? OR log.time_ms IS NULL)');
    args.push(Date.parse(q.until));
  }
  return { where, args };
}

/**
 * The trigrams of a lower-cased needle the text index is asked for: from the
 * start in steps of 3, and the last one. Undefined under 3 characters, which
 * the trigram index cannot look up.
 */
export function trigramsOf(needle: string): string[] | undefined {
  const chars = [...needle];
  if (chars.length < 3) return undefined;
  const terms = new Set<string>();
  for (let i = 0; i + 3 <= chars.length; i += 3) terms.add(chars.slice(i, i + 3).join(''));
  terms.add(chars.slice(-3).join(''));
  return [...terms];
}

/** An FTS5 query: every one of the trigrams must occur. */
export function ftsQuery(trigrams: readonly string[]): string {
  return trigrams.map((t) => `"${t.replaceAll('"', '""')}"`).join(' ');
}

/** Rows a text search reads per query at most; the answer then says how far it got. */
export const TEXT_SCAN_BUDGET = 100_000;
/**
 * Milliseconds a query works at most (checked every TIME_CHECK_ROWS rows and between scan windows):
 * the event loop, and with it every verdict waiting in the kernel queue, is held about this long per call.
 */
export const QUERY_TIME_BUDGET_MS = 40;
export const TIME_CHECK_ROWS = 64;
/** Seqs a query reads per SELECT; the time budget is checked between two. */
export const SCAN_WINDOW = 65_536;

/** Trigrams of a needle asked of the text index at most. */
const RAREST_TRIGRAMS = 3;
/** Trigrams ranked by rarity at most (one small query each): a long needle is not a query per trigram. */
const RANKED_TRIGRAMS = 12;

/**
 * The (at most) RAREST_TRIGRAMS rarest of a needle's trigrams: asking the index for common ones as well
 * costs more than comparing the few more candidates in JS. `oldest(t)`: how far back the newest items
 * holding `t` reach (null: none, the rarest). At most RANKED_TRIGRAMS of them, spread over the needle,
 * are ranked.
 */
export function rarestTrigrams(trigrams: readonly string[], oldest: (t: string) => number | null): string[] {
  if (trigrams.length <= RAREST_TRIGRAMS) return [...trigrams];
  const step = Math.max(1, trigrams.length / RANKED_TRIGRAMS);
  const candidates: string[] = [];
  for (let i = 0; i < trigrams.length && candidates.length < RANKED_TRIGRAMS; i += step)
    candidates.push(trigrams[Math.floor(i)]!);
  return candidates
    .map((t) => ({ t, oldest: oldest(t) ?? Number.NEGATIVE_INFINITY }))
    .sort((a, b) => a.oldest - b.oldest)
    .slice(0, RAREST_TRIGRAMS)
    .map((r) => r.t);
}

/** What a store's selection found: the items, and when it stopped at its budget, the seq it searched up to. */
export type Selection = { items: LogItem[]; searchedTo?: number };

const EXPORT_PAGE = 1000;

/**
 * Writes the items of `page(from, max)` selections to `out` as JSON lines, page after page from
 * q.fromSeq, waiting for `out` to drain, until q.limit items or the end. Resolves to the number written.
 */
export async function writeJsonLines(
  q: { fromSeq?: number; limit?: number },
  out: Writable,
  page: (from: number, max: number) => Selection,
): Promise<number> {
  let written = 0;
  let from = q.fromSeq ?? 1;
  const limit = q.limit ?? Number.POSITIVE_INFINITY;
  while (written < limit) {
    const { items, searchedTo } = page(from, Math.min(EXPORT_PAGE, limit - written));
    if (items.length === 0 && searchedTo === undefined) break;
    from = searchedTo !== undefined ? searchedTo + 1 : items[items.length - 1]!.seq + 1;
    if (items.length === 0) {
      await new Promise((resolve) => setImmediate(resolve)); // a turn for the engine between scans
      continue;
    }
    const chunk = `${items.map((i) => JSON.stringify(i)).join('\n')}\n`;
    written += items.length;
    if (!out.write(chunk)) {
      await new Promise<void>((resolve, reject) => {
        const done = (e?: Error) => {
          out.off('drain', done);
          out.off('error', done);
          out.off('close', done);
          if (e) reject(e);
          else resolve();
        };
        out.on('drain', done).on('error', done).on('close', done);
      });
      if (out.destroyed) break;
    }
  }
  return written;
}
