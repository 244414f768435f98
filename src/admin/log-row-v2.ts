/**
 * How SqliteLogStore laid a LogItem out in a row in schema version 2, and back:
 * read only to migrate such a file to the current version (log-row.ts). Version 2 had
 * columns for the filtered fields and packed the others into one text column,
 * `fields`, in a fixed order joined by U+001F (a JSON form when a value held a
 * separator).
 */
import { LOG_KINDS, type LogItem } from '../protocol/log-item.js';
import { VERDICTS } from './log-row.js';

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

/** The columns of a version 2 row that hold the item. */
export interface V2Row {
  seq: number;
  time_ms: number | null;
  /** The time text when it is not `new Date(time_ms).toISOString()`. */
  time: string | null;
  kind: number;
  verdict: number | null;
  application: string | null;
  fields: string;
}

/** The item a version 2 row holds. */
export function itemOfV2Row(row: V2Row): LogItem {
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
