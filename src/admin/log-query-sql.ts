/**
 * The SQL of logs.query's filters over the log store's tables (schema version
 * 2, log-schema.ts), and the text index's query for a `text` needle.
 */
import type { LogQueryParsed } from '../protocol/log-item.js';
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
