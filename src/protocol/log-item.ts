/** Log items as they travel to consoles (over UDP or TCP) and come back from logs.query. */
import { z } from 'zod';
import { LIMITS } from './limits.js';

export const LOG_KINDS = ['connection', 'security', 'admin', 'system'] as const;
export type LogKind = (typeof LOG_KINDS)[number];

/** One log item. `seq` numbers every item the engine stores, from 1, without gaps. */
export const logItemSchema = z.strictObject({
  seq: z.number().int().positive(),
  /** ISO 8601 instant. */
  time: z.string(),
  kind: z.enum(LOG_KINDS),
  verdict: z.enum(['allow', 'deny', 'reject', 'ask']).optional(),
  direction: z.enum(['incoming', 'outgoing']).optional(),
  protocol: z.string().optional(),
  application: z.string().optional(),
  /** "address:port" of each end. */
  local: z.string().optional(),
  remote: z.string().optional(),
  /** Host name(s) known for the remote address. */
  host: z.string().optional(),
  rule: z.string().optional(),
  /** Who did it (admin items) or whose process it was (connection items). */
  user: z.string().optional(),
  /** Where an administrative action came from. */
  source: z.string().optional(),
  message: z.string(),
  /**
   * How many times the same connection attempt was seen (retransmits within a few seconds), or how
   * many connections the verdict cache decided that the item stands for; absent for once.
   */
  count: z.number().int().min(2).optional(),
});

export type LogItem = z.output<typeof logItemSchema>;

/** A log item before the store numbers it. */
export type NewLogItem = Omit<LogItem, 'seq' | 'time'> & { time?: string };

/** Filters of logs.query; every field narrows, all are optional. */
export const logQuerySchema = z.strictObject({
  /** Items with seq >= fromSeq (for backfill after a gap). */
  fromSeq: z.number().int().positive().optional(),
  /** At most this many items, oldest first (default 1,000). */
  limit: z.number().int().min(1).max(10_000).default(1000),
  kind: z.enum(LOG_KINDS).optional(),
  verdict: z.enum(['allow', 'deny', 'reject', 'ask']).optional(),
  /** Exact executable path. */
  application: z.string().max(LIMITS.path).optional(),
  /** An IP address that must be the local or remote end (or the source of an item without a remote end). */
  address: z.string().max(LIMITS.address).optional(),
  /** ISO 8601 instants bounding `time`. */
  since: z.string().max(LIMITS.instant).datetime({ offset: true }).optional(),
  until: z.string().max(LIMITS.instant).datetime({ offset: true }).optional(),
  /** Case-insensitive substring of the message, application, host or rule. */
  text: z.string().min(1).max(LIMITS.searchText).optional(),
  /**
   * `newest`: the newest `limit` matches, newest first (like `journalctl -n`), with seq < beforeSeq when
   * given; the answer's `searchedTo` is then the lowest seq searched (ask again with beforeSeq = it).
   * Default `oldest`: oldest first from fromSeq. The engine's handler answers `newest` (the stores see `oldest`).
   */
  order: z.enum(['oldest', 'newest'], { error: 'order must be "oldest" or "newest"' }).optional(),
  /** With order `newest`: only items with seq < beforeSeq. */
  beforeSeq: z.number().int().positive().optional(),
});

export type LogQuery = z.input<typeof logQuerySchema>;
export type LogQueryParsed = z.output<typeof logQuerySchema>;

/** The IP address of an end as logs.query's `address` filter compares it: "[v6]:port" and "v4:port" lose brackets and port. */
export function addressOfEnd(end: string | undefined): string | undefined {
  return end === undefined
    ? undefined
    : end.replace(/^\[(.*)\](:\d+)?$/, '$1').replace(/^([^:]+):\d+$/, '$1');
}

/**
 * The remote end logs.query's `address` filter compares: `remote`, or for an item without one (a login,
 * a refused call, a pop-up report) the `source` it came from.
 */
export function remoteEnd(item: Pick<LogItem, 'remote' | 'source'>): string | undefined {
  return item.remote ?? item.source;
}

/** The lower-cased text logs.query's `text` filter searches: message, application, host, rule and remote end. */
export function logItemSearchText(
  item: Pick<LogItem, 'message' | 'application' | 'host' | 'rule' | 'remote'>,
): string {
  return [item.message, item.application, item.host, item.rule, item.remote]
    .filter(Boolean)
    .join(' ')
    .toLowerCase();
}

/** True when the item passes the query's filters (fromSeq and limit are applied by the store). */
export function logItemMatches(item: LogItem, q: LogQueryParsed): boolean {
  if (q.kind !== undefined && item.kind !== q.kind) return false;
  if (q.verdict !== undefined && item.verdict !== q.verdict) return false;
  if (q.application !== undefined && item.application !== q.application) return false;
  if (q.address !== undefined) {
    if (addressOfEnd(item.local) !== q.address && addressOfEnd(remoteEnd(item)) !== q.address) return false;
  }
  if (q.since !== undefined && Date.parse(item.time) < Date.parse(q.since)) return false;
  if (q.until !== undefined && Date.parse(item.time) > Date.parse(q.until)) return false;
  if (q.text !== undefined && !logItemSearchText(item).includes(q.text.toLowerCase())) return false;
  return true;
}
