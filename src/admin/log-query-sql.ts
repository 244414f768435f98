/**
 * The SQL of logs.query's filters over the log store's tables (schema version
 * 5, log-schema.ts), the plan of a `text` search through the dictionary, and
 * the paging of an export over the store's selections.
 */
import type { Writable } from 'node:stream';
import type { LogItem, LogQueryParsed } from '../protocol/log-item.js';
import { FIELD, type LogDictionary } from './log-dict.js';
import { addressValue, kindCodeOf, LOG_COLUMNS, ODD_REMOTE, verdictCodeOf } from './log-row.js';
import { EPOCH_SHIFT, SPAN_ITEMS } from './log-schema.js';

/** The leading key of the host and remote address indexes (log-schema.ts): the same expression. */
const EPOCH_KEY = `(seq >> ${EPOCH_SHIFT})`;

/**
 * The seqs from @lo to @hi whose local address is @local: the rows of the blocks log_local lists
 * for it (log_local first: CROSS JOIN keeps that order).
 */
const LOCAL_SEQS = `SELECT log.seq FROM log_local CROSS JOIN log
  ON log.seq BETWEEN max(@lo, log_local.block * ${SPAN_ITEMS}) AND min(@hi, log_local.block * ${SPAN_ITEMS} + ${SPAN_ITEMS - 1})
  WHERE log_local.addr = @local AND log_local.block BETWEEN (@lo >> 10) AND (@hi >> 10) AND log.local_addr = @local`;
if (SPAN_ITEMS !== 1 << 10)
  throw new Error('log-query-sql: LOCAL_SEQS and appSeqs assume blocks of 1024 seqs');

/**
 * The seqs from @lo to @hi whose application is in `ids` (an SQL list of dictionary ids, or a
 * parameter): the rows of the blocks log_app lists for any of them, each block read once.
 */
function appSeqs(ids: string): string {
  return `SELECT log.seq FROM (SELECT DISTINCT block FROM log_app WHERE app IN (${ids})
    AND block BETWEEN (@lo >> 10) AND (@hi >> 10)) AS b CROSS JOIN log
  ON log.seq BETWEEN max(@lo, b.block * ${SPAN_ITEMS}) AND min(@hi, b.block * ${SPAN_ITEMS} + ${SPAN_ITEMS - 1})
  WHERE log.application IN (${ids})`;
}

/** The columns itemOfRow needs. */
export const ITEM_COLUMNS = LOG_COLUMNS.map((c) => `log.${c}`).join(', ');

/**
 * SQL conditions (named arguments) for the filters other than fromSeq and text; undefined when no
 * stored item can match (an application or address the dictionary has never seen).
 * `seqs`: a union of indexed selections of seqs (with @lo and @hi bounds, within the epoch @epoch)
 * that holds every match, when a filter gives one that the planner would not find by itself.
 */
export function filters(
  q: Omit<LogQueryParsed, 'limit'>,
  dict: LogDictionary,
): { where: string[]; args: Record<string, unknown>; seqs?: string } | undefined {
  const where: string[] = [];
  const args: Record<string, unknown> = {};
  if (q.kind !== undefined) {
    where.push('log.kind = @kind');
    args.kind = kindCodeOf(q.kind);
  }
  if (q.verdict !== undefined) {
    where.push('log.verdict = @verdict');
    args.verdict = verdictCodeOf(q.verdict);
  }
  // Conditions true of every item such a query matches, in the words of the partial indexes' WHERE.
  if (q.kind !== undefined && kindCodeOf(q.kind) > 0) where.push('log.kind > 0');
  if (q.verdict !== undefined && verdictCodeOf(q.verdict) > 1) where.push('log.verdict > 1');
  if (q.application !== undefined) {
    const id = dict.find(q.application);
    if (id === undefined) return undefined;
    where.push('log.application = @application');
    args.application = id;
  }
  // The application's blocks (log_app): there is no index of the application over every row.
  let seqs = q.application === undefined ? undefined : appSeqs('@application');
  if (q.address !== undefined) {
    // The union of the local end's blocks (log_local) and the remote end's index, rather than a scan
    // the OR would make.
    where.push('(log.local_addr = @local OR log.remote_addr = @remote)');
    args.local = dict.find(q.address) ?? -1;
    args.remote = addressValue(q.address);
    seqs = [
      LOCAL_SEQS,
      `SELECT seq FROM log WHERE ${EPOCH_KEY} = @epoch AND remote_addr = @remote AND seq BETWEEN @lo AND @hi`,
    ].join(' UNION ALL ');
  }
  // An item whose time does not parse passes time bounds, as in logItemMatches (NaN compares false).
  if (q.since !== undefined) {
    where.push('(log.time_ms >= @since OR log.time_ms IS NULL)');
    args.since = Date.parse(q.since);
  }
  if (q.until !== undefined) {
    where.push('(log.time_ms <= @until OR log.time_ms IS NULL)');
    args.until = Date.parse(q.until);
  }
  return seqs === undefined ? { where, args } : { where, args, seqs };
}

/** An IPv4 remote end, and its text as log-row.ts makes it. */
const IPV4_REMOTE = "typeof(remote_addr) = 'integer' AND typeof(remote_port) = 'integer'";
const IPV4_REMOTE_TEXT =
  "((remote_addr >> 24) & 255) || '.' || ((remote_addr >> 16) & 255) || '.' || ((remote_addr >> 8) & 255) || '.' || (remote_addr & 255) || ':' || remote_port";

/**
 * How a `text` needle (lower-cased) is searched. Each of its words (split at spaces) lies within
 * one field of an item's search text (message, application, host, rule, remote end, joined by
 * spaces), so an item can match only when, for every word, one of its dictionary-coded fields holds
 * an entry that can hold the word (LogDictionary.idsHolding), or its remote end can. `where`: that
 * condition in SQL (the matches are then compared in JS, exactly as logItemMatches); `seqs`: a union
 * of indexed selections (application, host, odd remote ends) holding every match, when one word's
 * entries are only applications and hosts (a word no entry holds: only the odd remote ends).
 */
export function textPlan(needle: string, dict: LogDictionary): { where?: string; seqs?: string } {
  const words = needle.split(' ').filter((w) => w !== '');
  // Sigma lower-cases by its context: a word's form in a field may differ from its form alone.
  if (words.length === 0 || /[σςΣ]/.test(needle)) return {};
  const conditions: string[] = [];
  let best: { seqs: string; ids: number } | undefined;
  for (const word of words) {
    const ids = dict.idsHolding(word);
    if (ids === undefined) continue; // too many entries hold it: it does not narrow
    const of = (field: number) => ids.filter((id) => (dict.fieldsOf(id) & field) !== 0);
    const messages = of(FIELD.message);
    // A template holds the word itself, or only with the word's digit runs standing for arguments.
    const inTemplate = messages.filter((id) => dict.valueOf(id).toLowerCase().includes(word));
    const inArguments = messages.filter((id) => !inTemplate.includes(id));
    const columns = {
      application: of(FIELD.application).join(', '),
      host: of(FIELD.host).join(', '),
      rule: of(FIELD.rule).join(', '),
      message: inTemplate.join(', '),
    };
    const terms = Object.entries(columns)
      .filter(([, list]) => list !== '')
      .map(([column, list]) => `log.${column} IN (${list})`);
    if (inArguments.length > 0) {
      // The word's longest digit run (digits only: safe in the SQL text) is within one argument.
      const run = word.match(/[0-9]+/g)!.reduce((a, b) => (b.length > a.length ? b : a));
      terms.push(`(log.message IN (${inArguments.join(', ')}) AND instr(log.args, '${run}') > 0)`);
    }
    terms.push(ODD_REMOTE);
    // An IPv4 end ("a.b.c.d:port") holds digits, dots and a colon only; an IPv6 one ("[…]:port") hex digits too.
    const ipv6 = /^[0-9a-f:.[\]]+$/.test(word);
    if (ipv6) terms.push("typeof(remote_addr) = 'text'");
    if (/^[0-9.:]+$/.test(word)) terms.push(`(${IPV4_REMOTE} AND instr(${IPV4_REMOTE_TEXT}, '${word}') > 0)`);
    conditions.push(`(${terms.join(' OR ')})`);
    if (
      !ipv6 &&
      columns.rule === '' &&
      messages.length === 0 &&
      (best === undefined || ids.length < best.ids)
    ) {
      const parts = ['SELECT seq FROM log_odd WHERE seq BETWEEN @lo AND @hi'];
      if (columns.application !== '') parts.push(appSeqs(columns.application));
      if (columns.host !== '')
        parts.push(
          `SELECT seq FROM log WHERE ${EPOCH_KEY} = @epoch AND host IN (${columns.host}) AND seq BETWEEN @lo AND @hi`,
        );
      best = { seqs: parts.join(' UNION ALL '), ids: ids.length };
    }
  }
  if (conditions.length === 0) return {};
  return best === undefined
    ? { where: conditions.join(' AND ') }
    : { where: conditions.join(' AND '), seqs: best.seqs };
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
