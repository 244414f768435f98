/** Port lists: `443`, `"80,443"`, `"8000-8100"`, `[80, "8000-8100"]`, parsed and written back. */
import type { Parsed } from '../ip/index.js';
import type { PortRange } from './rule.js';

const MAX_PORT = 65535;

function parsePortNumber(text: string, whole: string): Parsed<number> {
  if (!/^[0-9]+$/.test(text)) return { ok: false, message: `"${whole}": "${text}" is not a port number` };
  const n = Number(text);
  if (n < 1 || n > MAX_PORT) return { ok: false, message: `port ${n} is out of range 1-${MAX_PORT}` };
  return { ok: true, value: n };
}

function parseOne(item: string, whole: string): Parsed<PortRange> {
  const dash = item.indexOf('-');
  if (dash === -1) {
    const p = parsePortNumber(item, whole);
    return p.ok ? { ok: true, value: { from: p.value, to: p.value } } : p;
  }
  const a = parsePortNumber(item.slice(0, dash).trim(), whole);
  if (!a.ok) return a;
  const b = parsePortNumber(item.slice(dash + 1).trim(), whole);
  if (!b.ok) return b;
  if (a.value > b.value)
    return { ok: false, message: `port range ${item} is reversed; write ${b.value}-${a.value}` };
  return { ok: true, value: { from: a.value, to: b.value } };
}

/**
 * Parses a port list written as a number, a comma-separated string, or an
 * array of numbers and `from-to` strings. Overlapping or duplicate entries are
 * an error (they are almost always a typo), as are ports outside 1-65535.
 */
export function parsePortList(input: unknown): Parsed<PortRange[]> {
  const items: string[] = [];
  const whole = Array.isArray(input) ? JSON.stringify(input) : String(input);
  const add = (v: unknown): string | null => {
    if (typeof v === 'number') {
      if (!Number.isInteger(v)) return `${v} is not a whole port number`;
      items.push(String(v));
      return null;
    }
    if (typeof v === 'string') {
      for (const part of v.split(',')) items.push(part.trim());
      return null;
    }
    return `expected a port number, "from-to" or a list of them, got ${JSON.stringify(v)}`;
  };
  if (Array.isArray(input)) {
    if (input.length === 0)
      return { ok: false, message: 'port list is empty; leave the field out to mean any port' };
    for (const v of input) {
      const err = add(v);
      if (err !== null) return { ok: false, message: err };
    }
  } else {
    const err = add(input);
    if (err !== null) return { ok: false, message: err };
  }
  const ranges: PortRange[] = [];
  for (const item of items) {
    if (item === '') return { ok: false, message: `"${whole}" has an empty entry` };
    const r = parseOne(item, whole);
    if (!r.ok) return r;
    ranges.push(r.value);
  }
  const sorted = [...ranges].sort((x, y) => x.from - y.from);
  for (let i = 1; i < sorted.length; i++) {
    const prev = sorted[i - 1]!;
    const cur = sorted[i]!;
    if (cur.from <= prev.to) {
      const merged = `${prev.from}-${Math.max(prev.to, cur.to)}`;
      return {
        ok: false,
        message: `ports ${formatRange(prev)} and ${formatRange(cur)} overlap; write them once, e.g. ${merged}`,
      };
    }
  }
  return { ok: true, value: ranges };
}

function formatRange(r: PortRange): string {
  return r.from === r.to ? String(r.from) : `${r.from}-${r.to}`;
}

/** Writes a port list back in its shortest readable form: a number, or a list of numbers and ranges. */
export function formatPortList(ranges: readonly PortRange[]): number | string | (number | string)[] {
  const items = ranges.map((r) => (r.from === r.to ? r.from : formatRange(r)));
  return items.length === 1 ? items[0]! : items;
}

/** Formats a port list as one string, e.g. "80,443,8000-8100". */
export function portListText(ranges: readonly PortRange[]): string {
  return ranges.map(formatRange).join(',');
}

/** True when the port is in the list. */
export function portListContains(ranges: readonly PortRange[], port: number): boolean {
  for (const r of ranges) if (r.from <= port && port <= r.to) return true;
  return false;
}
