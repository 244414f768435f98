/**
 * How SqliteLogStore lays a LogItem out in a row (schema version 2), and back.
 *
 * Filtered fields get columns of their own (kind and verdict as small integer
 * codes, the application, both ends' addresses, the time in ms); the others are
 * packed into one text column, `fields`, in a fixed order joined by U+001F,
 * because binding one string costs about what binding each field would cost
 * per column. Pure: no SQLite here.
 */
import { addressOfEnd, LOG_KINDS, type LogItem, remoteEnd } from '../protocol/log-item.js';

export const VERDICTS = ['allow', 'deny', 'reject', 'ask'] as const;

/** Packed fields, in order. */
const PACKED = [
  'direction',
  'protocol',
  'local',
  'remote',
  'host',
  'rule',
  'user',
  'source',
  'message',
] as const;
type Packed = (typeof PACKED)[number];

const SEP = '\x1f';
/** Marks an absent field in the joined form. */
const ABSENT = '\x00';
/** Starts the JSON form, used when a value holds SEP, ABSENT or JSON_FORM itself. */
const JSON_FORM = '\x1e';

/** A row of the `log` table, in column order. */
export interface LogRow {
  seq: number;
  time_ms: number | null;
  /** The time text when it is not `new Date(time_ms).toISOString()`. */
  time: string | null;
  kind: number;
  verdict: number | null;
  application: string | null;
  local_address: string | null;
  remote_address: string | null;
  fields: string;
}

/** Columns of `log`, in insert order. */
export const LOG_COLUMNS = [
  'seq',
  'time_ms',
  'time',
  'kind',
  'verdict',
  'application',
  'local_address',
  'remote_address',
  'fields',
] as const;

const kindCode = new Map<string, number>(LOG_KINDS.map((k, i) => [k, i]));
const verdictCode = new Map<string, number>(VERDICTS.map((v, i) => [v, i]));

export function kindCodeOf(kind: string): number {
  return kindCode.get(kind) ?? -1;
}
export function verdictCodeOf(verdict: string): number {
  return verdictCode.get(verdict) ?? -1;
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

function needsJson(v: string): boolean {
  return v.includes(SEP) || v.includes(ABSENT) || v.includes(JSON_FORM);
}

/** The `fields` column of an item. */
export function packFields(item: LogItem): string {
  let out = '';
  for (let i = 0; i < PACKED.length; i++) {
    const v = item[PACKED[i]!];
    if (v !== undefined && needsJson(v)) return packJson(item);
    if (i > 0) out += SEP;
    out += v === undefined ? ABSENT : v;
  }
  return out;
}

function packJson(item: LogItem): string {
  const o: Partial<Record<Packed, string>> = {};
  for (const f of PACKED) if (item[f] !== undefined) o[f] = item[f];
  return JSON_FORM + JSON.stringify(o);
}

/** Appends the row's values (LOG_COLUMNS order) to `out`. `timeMs` is Date.parse(item.time), given when known. */
export function pushRowValues(out: unknown[], item: LogItem, timeMs: number, timeIsIso: boolean): void {
  out.push(
    item.seq,
    Number.isNaN(timeMs) ? null : timeMs,
    timeIsIso ? null : item.time,
    kindCodeOf(item.kind),
    item.verdict === undefined ? null : verdictCodeOf(item.verdict),
    item.application ?? null,
    fastAddressOfEnd(item.local) ?? null,
    fastAddressOfEnd(remoteEnd(item)) ?? null,
    packFields(item),
  );
}

/** The item a row holds. Keys in the order LogItem's schema lists them, as MemoryLogStore keeps them. */
export function itemOfRow(
  row: Pick<LogRow, 'seq' | 'time_ms' | 'time' | 'kind' | 'verdict' | 'application' | 'fields'>,
): LogItem {
  const time = row.time ?? new Date(row.time_ms ?? Number.NaN).toISOString();
  const item: Record<string, unknown> = { seq: row.seq, time, kind: LOG_KINDS[row.kind] };
  let packed: Partial<Record<Packed, string>>;
  if (row.fields.startsWith(JSON_FORM)) packed = JSON.parse(row.fields.slice(1));
  else {
    packed = {};
    const parts = row.fields.split(SEP);
    for (let i = 0; i < PACKED.length; i++) if (parts[i] !== ABSENT) packed[PACKED[i]!] = parts[i];
  }
  if (row.verdict !== null) item.verdict = VERDICTS[row.verdict];
  if (packed.direction !== undefined) item.direction = packed.direction;
  if (packed.protocol !== undefined) item.protocol = packed.protocol;
  if (row.application !== null) item.application = row.application;
  for (const f of ['local', 'remote', 'host', 'rule', 'user', 'source'] as const)
    if (packed[f] !== undefined) item[f] = packed[f];
  item.message = packed.message ?? '';
  return item as LogItem;
}
