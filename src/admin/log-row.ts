/**
 * How SqliteLogStore lays a LogItem out in a row (schema version 5), and back.
 *
 * Compact integer rows: kind and verdict as small codes; every repeating
 * string (direction, protocol, application, host, rule, user, the local
 * address, the message's template) as the id of its dictionary entry
 * (log-dict.ts); an IPv4 remote address as one 32-bit integer and each port as
 * an integer when the end reads back exactly as `address:port`
 * (`[address]:port` for IPv6), else the end's text; the runs of digits of a
 * message (a pid, a count) as its arguments: one integer when there is one, else
 * their text joined by commas. The rare fields (a time text that is not the
 * ISO form of its ms, the source, the repeat count) are a JSON text, `extra`.
 * The columns that hold an integer or a text have INTEGER affinity (better-sqlite3 binds a number as
 * a REAL, 8 bytes, which such a column stores as an integer); their texts start with TEXT_MARK, so
 * that SQLite never reads one as a number.
 * Pure: no SQLite here.
 */
import { addressOfEnd, LOG_KINDS, type LogItem } from '../protocol/log-item.js';
import { ARG, FIELD, type LogDictionary } from './log-dict.js';

export const VERDICTS = ['allow', 'deny', 'reject', 'ask'] as const;

/**
 * A remote end whose text may hold any word: not `address:port`, or an address with more than hex
 * digits, colons and dots (an IPv6 zone): log-row.ts keeps those ends as text, and their seqs in
 * the table log_odd.
 */
export const ODD_REMOTE = "typeof(remote_port) = 'text'";

/** Starts a text in a column of INTEGER affinity (local_port, remote_addr, remote_port, args). */
export const TEXT_MARK = '~';
/** An address whose `[address]:port` text a text search may assume holds only these characters. */
const PLAIN_ADDRESS = /^[0-9a-fA-F:.]*$/;

/** A row of the `log` table. */
export interface LogRow {
  seq: number;
  time_ms: number | null;
  kind: number;
  verdict: number | null;
  direction: number | null;
  protocol: number | null;
  application: number | null;
  /** Dictionary id of the local end's address. */
  local_addr: number | null;
  /** The port (integer) when the end is `address:port`, else the end's text. */
  local_port: number | string | null;
  /** IPv4 as a signed 32-bit integer, else the address text (of `remote`, or of `source` without one). */
  remote_addr: number | string | null;
  /** As local_port (the end's text also when the address is not PLAIN_ADDRESS); null without `remote`. */
  remote_port: number | string | null;
  host: number | null;
  rule: number | null;
  user: number | null;
  message: number;
  /** The message's digit runs: an integer for one, else their text joined by ','; null for none. */
  args: number | string | null;
  /** JSON of { time?, source?, count? }. */
  extra: string | null;
}

/** Columns of `log`, in insert order. */
export const LOG_COLUMNS = [
  'seq',
  'time_ms',
  'kind',
  'verdict',
  'direction',
  'protocol',
  'application',
  'local_addr',
  'local_port',
  'remote_addr',
  'remote_port',
  'host',
  'rule',
  'user',
  'message',
  'args',
  'extra',
] as const;

const kindCode = new Map<string, number>(LOG_KINDS.map((k, i) => [k, i]));
const verdictCode = new Map<string, number>(VERDICTS.map((v, i) => [v, i]));

export function kindCodeOf(kind: string): number {
  return kindCode.get(kind) ?? -1;
}
export function verdictCodeOf(verdict: string): number {
  return verdictCode.get(verdict) ?? -1;
}

/** A dotted quad as written canonically (no leading zeros) as a signed 32-bit integer; undefined otherwise. */
export function ipv4Code(address: string): number | undefined {
  let code = 0;
  let parts = 0;
  let start = 0;
  let octet = 0;
  for (let i = 0; i <= address.length; i++) {
    const c = i < address.length ? address.charCodeAt(i) : 46;
    if (c === 46) {
      const len = i - start;
      if (len === 0 || len > 3 || (len > 1 && address.charCodeAt(start) === 48) || ++parts > 4)
        return undefined;
      if (octet > 255) return undefined;
      code = (code << 8) | octet;
      octet = 0;
      start = i + 1;
    } else if (c < 48 || c > 57) return undefined;
    else octet = octet * 10 + c - 48;
  }
  return parts === 4 ? code : undefined;
}

export function ipv4Text(code: number): string {
  return `${code >>> 24}.${(code >>> 16) & 255}.${(code >>> 8) & 255}.${code & 255}`;
}

/** addressOfEnd without its two regular expressions for the common "v4:port" end; the same answers. */
export function fastAddressOfEnd(end: string | undefined): string | undefined {
  if (end === undefined) return undefined;
  const colon = end.indexOf(':');
  if (colon > 0 && end.charCodeAt(0) !== 91 && colon === end.lastIndexOf(':') && colon < end.length - 1) {
    let digits = true;
    for (let i = colon + 1; i < end.length && digits; i++) {
      const c = end.charCodeAt(i);
      digits = c >= 48 && c <= 57;
    }
    if (digits) return end.slice(0, colon);
  }
  return addressOfEnd(end);
}

/** How an end (`local` or `remote`) with address `address` reads back from a port column value. */
function endText(address: string, port: number): string {
  return address.includes(':') ? `[${address}]:${port}` : `${address}:${port}`;
}

/** The port column value of `end`: its port when `end` reads back from it exactly, else the end's text. */
function portValue(end: string, address: string): number | string {
  const colon = end.lastIndexOf(':');
  const digits = end.length - colon - 1;
  if (colon < 0 || digits < 1 || digits > 5 || (digits > 1 && end.charCodeAt(colon + 1) === 48))
    return TEXT_MARK + end;
  let port = 0;
  for (let i = colon + 1; i < end.length; i++) {
    const c = end.charCodeAt(i);
    if (c < 48 || c > 57) return TEXT_MARK + end;
    port = port * 10 + c - 48;
  }
  if (port > 65535) return TEXT_MARK + end;
  // `address:port` (no string made for the common case), else as endText makes it.
  const plain = colon === address.length && !address.includes(':') && end.startsWith(address);
  return plain || endText(address, port) === end ? port : TEXT_MARK + end;
}

/** The value of an address column for `address`: an IPv4 integer, else the text. */
export function addressValue(address: string): number | string {
  return ipv4Code(address) ?? TEXT_MARK + address;
}

/** A message as its template (digit runs replaced by ARG) and arguments; verbatim when it holds ARG itself. */
export function splitMessage(message: string): { template: string; args: number | string | null } {
  let template = '';
  const runs: string[] = [];
  let last = 0;
  for (let i = 0; i < message.length; i++) {
    const c = message.charCodeAt(i);
    if (c === 1) return { template: message, args: null };
    if (c >= 48 && c <= 57) {
      let j = i + 1;
      while (j < message.length && message.charCodeAt(j) >= 48 && message.charCodeAt(j) <= 57) j++;
      template += `${message.slice(last, i)}${ARG}`;
      runs.push(message.slice(i, j));
      last = j;
      i = j - 1;
    }
  }
  if (runs.length === 0) return { template: message, args: null };
  template += message.slice(last);
  const only = runs[0]!;
  const canonical =
    runs.length === 1 && only.length <= 15 && (only.length === 1 || only.charCodeAt(0) !== 48);
  return { template, args: canonical ? Number(only) : TEXT_MARK + runs.join(',') };
}

/** The message made from a template and its arguments (splitMessage's inverse). */
export function joinMessage(template: string, args: number | string | null): string {
  if (args === null) return template;
  if (typeof args === 'number') return template.replace(ARG, String(args));
  const runs = args.slice(1).split(',');
  let k = 0;
  return template.replaceAll(ARG, () => runs[k++] ?? '');
}

/**
 * Appends the row's values (LOG_COLUMNS order) to `out`, giving new dictionary entries ids.
 * `timeMs` is Date.parse(item.time), given when known; `timeIsIso` when item.time is its ISO form.
 * True when the remote end is kept as text (the row's seq then goes into `log_odd`).
 */
export function pushRowValues(
  out: unknown[],
  item: LogItem,
  timeMs: number,
  timeIsIso: boolean,
  dict: LogDictionary,
): boolean {
  const { template, args } = splitMessage(item.message);
  let localAddr: number | null = null;
  let localPort: number | string | null = null;
  if (item.local !== undefined) {
    const a = fastAddressOfEnd(item.local)!;
    localAddr = dict.idOf(a, FIELD.other);
    localPort = portValue(item.local, a);
  }
  let remoteAddr: number | string | null = null;
  let remotePort: number | string | null = null;
  const remote = item.remote ?? item.source;
  if (remote !== undefined) {
    const a = fastAddressOfEnd(remote)!;
    remoteAddr = addressValue(a);
    if (item.remote !== undefined)
      // An address of more than hex digits, colons and dots (an IPv6 zone, a name) keeps its end as
      // text: the text search finds such ends by the type of this column alone (ODD_REMOTE).
      remotePort =
        typeof remoteAddr === 'string' && !PLAIN_ADDRESS.test(a)
          ? TEXT_MARK + item.remote
          : portValue(item.remote, a);
  }
  let extra: string | null = null;
  const timeText = timeIsIso ? undefined : item.time;
  if (timeText !== undefined || item.source !== undefined || item.count !== undefined) {
    extra = JSON.stringify({ time: timeText, source: item.source, count: item.count });
  }
  out.push(
    item.seq,
    Number.isNaN(timeMs) ? null : timeMs,
    kindCodeOf(item.kind),
    item.verdict === undefined ? null : verdictCodeOf(item.verdict),
    item.direction === undefined ? null : dict.idOf(item.direction, FIELD.other),
    item.protocol === undefined ? null : dict.idOf(item.protocol, FIELD.other),
    item.application === undefined ? null : dict.idOf(item.application, FIELD.application),
    localAddr,
    localPort,
    remoteAddr,
    remotePort,
    item.host === undefined ? null : dict.idOf(item.host, FIELD.host),
    item.rule === undefined ? null : dict.idOf(item.rule, FIELD.rule),
    item.user === undefined ? null : dict.idOf(item.user, FIELD.other),
    dict.idOf(template, FIELD.message),
    args,
    extra,
  );
  return typeof remotePort === 'string';
}

function addressText(value: number | string): string {
  return typeof value === 'number' ? ipv4Text(value) : value.slice(1);
}

/** The item a row holds. Keys in the order LogItem's schema lists them, as MemoryLogStore keeps them. */
export function itemOfRow(row: LogRow, dict: LogDictionary): LogItem {
  const extra =
    row.extra === null
      ? undefined
      : (JSON.parse(row.extra) as { time?: string; source?: string; count?: number });
  const time = extra?.time ?? new Date(row.time_ms ?? Number.NaN).toISOString();
  const item: Record<string, unknown> = { seq: row.seq, time, kind: LOG_KINDS[row.kind] };
  if (row.verdict !== null) item.verdict = VERDICTS[row.verdict];
  if (row.direction !== null) item.direction = dict.valueOf(row.direction);
  if (row.protocol !== null) item.protocol = dict.valueOf(row.protocol);
  if (row.application !== null) item.application = dict.valueOf(row.application);
  if (row.local_port !== null)
    item.local =
      typeof row.local_port === 'number'
        ? endText(dict.valueOf(row.local_addr!), row.local_port)
        : row.local_port.slice(1);
  if (row.remote_port !== null)
    item.remote =
      typeof row.remote_port === 'number'
        ? endText(addressText(row.remote_addr!), row.remote_port)
        : row.remote_port.slice(1);
  if (row.host !== null) item.host = dict.valueOf(row.host);
  if (row.rule !== null) item.rule = dict.valueOf(row.rule);
  if (row.user !== null) item.user = dict.valueOf(row.user);
  if (extra?.source !== undefined) item.source = extra.source;
  item.message = joinMessage(dict.valueOf(row.message), row.args);
  if (extra?.count !== undefined) item.count = extra.count;
  return item as LogItem;
}
