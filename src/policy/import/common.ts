/**
 * What every importer returns, and the small helpers they share: unique rule
 * names, located problems, address and port parsing that never throws.
 * Pure: the caller reads the files.
 */
import type { Problem } from '../../errors.js';
import { parseCidr, parseIp } from '../../ip/index.js';
import type { AddressSpec, DefaultAction, ListSource, PortRange, Rule } from '../rule.js';

/** One input file: its name (for messages) and its text. */
export interface SourceFile {
  readonly name: string;
  readonly text: string;
}

/** The tools Warden imports from and exports to. */
export type Tool = 'opensnitch' | 'ufw' | 'firewalld';
export const TOOLS: readonly Tool[] = ['opensnitch', 'ufw', 'firewalld'];

/**
 * The result of an import. `problems` are rules (or parts of files) that were
 * NOT imported because Warden cannot express them faithfully; `notes` are rules
 * that were imported with a caveat the user should read (e.g. ufw `limit` became
 * a plain allow). Nothing is dropped or widened without one of the two.
 */
export interface ImportResult {
  readonly rules: Rule[];
  /** Lists the imported rules use (`list:name`), when the tool had some (OpenSnitch `lists` operands). */
  lists?: Record<string, ListSource>;
  readonly defaults: { incoming?: DefaultAction; outgoing?: DefaultAction };
  readonly problems: Problem[];
  readonly notes: Problem[];
}

export function emptyResult(): ImportResult {
  return { rules: [], defaults: {}, problems: [], notes: [] };
}

/** Hands out rule names that are unique, at most 120 characters, and free of control characters. */
export class RuleNames {
  private readonly used = new Set<string>();

  take(wanted: string): string {
    const clean = [...wanted]
      .map((c) => (c.charCodeAt(0) < 0x20 || c.charCodeAt(0) === 0x7f ? ' ' : c))
      .join('');
    const base = (clean.trim() === '' ? 'imported rule' : clean.trim()).slice(0, 110);
    let name = base;
    for (let i = 2; this.used.has(name); i++) name = `${base} (${i})`;
    this.used.add(name);
    return name;
  }
}

/** A problem in a file, at a line and/or a path, for a rule. */
export function located(
  file: string,
  message: string,
  where: { line?: number; path?: readonly (string | number)[]; rule?: string } = {},
): Problem {
  const p: Problem = { file, path: where.path ?? [], message };
  if (where.line !== undefined) p.line = where.line;
  if (where.rule !== undefined) p.rule = where.rule;
  return p;
}

/** An IP address or CIDR as an address entry; null when it is neither. Host bits in a CIDR are an error too. */
export function addressEntry(text: string): AddressSpec | null {
  const t = text.trim();
  if (t.includes('/')) {
    const r = parseCidr(t);
    return r.ok ? { kind: 'ip', range: r.value } : null;
  }
  const ip = parseIp(t);
  if (ip === null) return null;
  return ip.version === 4
    ? { kind: 'ip', range: { version: 4, first: ip.value, last: ip.value } }
    : { kind: 'ip', range: { version: 6, first: ip.value, last: ip.value } };
}

/** Every IPv4 address, and every IPv6 address: how a rule is limited to one address family. */
export const ALL_IPV4: AddressSpec = { kind: 'ip', range: { version: 4, first: 0, last: 0xffffffff } };
export const ALL_IPV6: AddressSpec = {
  kind: 'ip',
  range: { version: 6, first: 0n, last: (1n << 128n) - 1n },
};

/** True when the entry is all of IPv4 or all of IPv6 (0.0.0.0/0, ::/0). */
export function isWholeFamily(spec: AddressSpec): boolean {
  if (spec.kind !== 'ip') return false;
  const r = spec.range;
  return r.version === 4
    ? r.first === 0 && r.last === 0xffffffff
    : r.first === 0n && r.last === (1n << 128n) - 1n;
}

/**
 * Parses a port list written with `sep` between items and `rangeSep` inside a
 * range (ufw: `80,443,8000:8100`; firewalld: `8000-8100`). Overlapping items are
 * merged. Null when anything is not a port.
 */
export function portList(text: string, rangeSep: string): PortRange[] | null {
  const out: PortRange[] = [];
  for (const item of text.split(',')) {
    const parts = item.trim().split(rangeSep);
    if (parts.length > 2) return null;
    const nums = parts.map((p) => (/^[0-9]{1,5}$/.test(p.trim()) ? Number(p.trim()) : Number.NaN));
    const from = nums[0]!;
    const to = nums[1] ?? from;
    if (!(from >= 1 && to <= 65535 && from <= to)) return null;
    out.push({ from, to });
  }
  return mergePorts(out);
}

/** Sorts and merges overlapping or adjacent port ranges (the policy schema rejects overlaps). */
export function mergePorts(ranges: readonly PortRange[]): PortRange[] {
  const sorted = [...ranges].sort((a, b) => a.from - b.from);
  const out: PortRange[] = [];
  for (const r of sorted) {
    const last = out[out.length - 1];
    if (last !== undefined && r.from <= last.to + 1)
      out[out.length - 1] = { from: last.from, to: Math.max(last.to, r.to) };
    else out.push({ ...r });
  }
  return out;
}

/** 1-based line number of a character offset. */
export function lineAt(text: string, offset: number): number {
  let line = 1;
  for (let i = 0; i < offset && i < text.length; i++) if (text.charCodeAt(i) === 10) line++;
  return line;
}
