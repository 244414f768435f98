/**
 * The text of a list (docs/policy.md, "Lists") into a ListContent, read as it streams in: a
 * hosts file ("0.0.0.0 ads.example.com" lines), plain domains (one a line), or addresses and
 * CIDRs. A bad line is skipped and counted (the first few are kept with their line numbers), so
 * one typo does not refuse a million-line list; a list over its byte or entry bound is refused
 * whole. Pure: no I/O (src/engine/lists.ts feeds it).
 */
import { parseCidr, parseIp, parseIpRange } from '../ip/index.js';
import { neutralizeControls } from '../text.js';
import type { ListFormat } from './rule.js';

/** A loaded list, ready for compilePolicy: merged address ranges and a name set. */
export interface ListContent {
  readonly format: ListFormat;
  /** Sorted, merged inclusive IPv4 ranges as [first0, last0, first1, last1, ...]. */
  readonly v4: readonly number[];
  readonly v6: readonly bigint[];
  /** Lower-case names without a trailing dot. */
  readonly names: NameTable;
  /** A name also matches every name below it (format `domains`); `hosts` names match exactly. */
  readonly subdomains: boolean;
  /** Entries accepted (addresses, ranges and names as written, before merging). */
  readonly entries: number;
}

/** A line the parser skipped: where and why. */
export interface ListLineProblem {
  readonly line: number;
  readonly message: string;
}

/** What parsing a list gave: its content, and the lines it skipped. */
export interface ParsedList {
  readonly content: ListContent;
  /** How many lines were skipped as bad. */
  readonly badLines: number;
  /** The first few of them (MAX_PROBLEMS), with line numbers. */
  readonly problems: readonly ListLineProblem[];
  readonly bytes: number;
}

/** The bounds of one list. */
export interface ListBounds {
  readonly maxBytes: number;
  readonly maxEntries: number;
}

/** A list over its bounds, or otherwise unusable as a whole. */
export class ListRefused extends Error {}

const MAX_PROBLEMS = 20;
/** Longest line looked at; a longer one is a bad line (no list entry is this long). */
const MAX_LINE = 4096;
/** Letters, digits, hyphens and (found in real lists) underscores; labels of 1-63, names up to 253. */
const NAME =
  /^(?=.{1,253}$)[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?(?:\.[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?)*$/;
/** Names hosts files map for the machine itself: never list entries. */
const HOSTS_OWN = new Set([
  'localhost',
  'localhost.localdomain',
  'local',
  'broadcasthost',
  'ip6-localhost',
  'ip6-loopback',
  'ip6-localnet',
  'ip6-mcastprefix',
  'ip6-allnodes',
  'ip6-allrouters',
  'ip6-allhosts',
  '0.0.0.0',
]);

/** Reads a list as it streams in; `end()` gives the result or throws ListRefused. */
export class ListParser {
  readonly #format: ListFormat;
  readonly #bounds: ListBounds;
  #rest = '';
  #line = 0;
  #bytes = 0;
  #entries = 0;
  #bad = 0;
  readonly #problems: ListLineProblem[] = [];
  readonly #v4: [number, number][] = [];
  readonly #v6: [bigint, bigint][] = [];
  readonly #names = new NameTable();

  constructor(format: ListFormat, bounds: ListBounds) {
    this.#format = format;
    this.#bounds = bounds;
  }

  /**
   * Feeds the next piece of the text (bytes are decoded as UTF-8 by the caller's stream). With
   * `quotable` false (a file a user other than the engine's could have pointed elsewhere, e.g. by a
   * symlink to a secret) its bad lines are counted and numbered, not quoted.
   */
  push(chunk: string | Buffer, quotable = true): void {
    this.#quotable = quotable;
    const text = typeof chunk === 'string' ? chunk : chunk.toString('utf8');
    this.#bytes += typeof chunk === 'string' ? Buffer.byteLength(chunk) : chunk.length;
    if (this.#bytes > this.#bounds.maxBytes)
      throw new ListRefused(`the list is larger than its bound of ${this.#bounds.maxBytes} bytes (maxBytes)`);
    let start = 0;
    let text2 = text;
    if (this.#rest !== '') {
      text2 = this.#rest + text;
      this.#rest = '';
    }
    for (let nl = text2.indexOf('\n', start); nl !== -1; nl = text2.indexOf('\n', start)) {
      this.#lineOf(text2, start, nl);
      start = nl + 1;
    }
    this.#rest = text2.slice(start);
    if (this.#rest.length > MAX_LINE) {
      // A line that never ends is one bad line; skip to its end.
      this.#rest = '';
      this.#skipLong = true;
    }
  }

  #skipLong = false;
  #quotable = true;

  /** A bad entry as its problem names it: quoted (cut at 80 characters; #badLine escapes it), or not at all (see push). */
  #quote(raw: string): string {
    return this.#quotable ? `"${cut(raw, 80)}"` : 'the entry';
  }

  /** The parsed list; throws ListRefused when it is over its bounds. */
  end(): ParsedList {
    if (this.#rest !== '' || this.#skipLong) this.#lineOf(this.#rest, 0, this.#rest.length);
    this.#rest = '';
    const content: ListContent = {
      format: this.#format,
      v4: mergeRanges(this.#v4),
      v6: mergeRanges(this.#v6),
      names: this.#names,
      subdomains: this.#format === 'domains',
      entries: this.#entries,
    };
    return { content, badLines: this.#bad, problems: this.#problems, bytes: this.#bytes };
  }

  #lineOf(text: string, from: number, to: number): void {
    this.#line++;
    if (this.#skipLong) {
      this.#skipLong = false;
      this.#badLine(`line is longer than ${MAX_LINE} characters`);
      return;
    }
    if (to - from > MAX_LINE) {
      this.#badLine(`line is longer than ${MAX_LINE} characters`);
      return;
    }
    let line = text.slice(from, to);
    const hash = line.indexOf('#');
    if (hash !== -1) line = line.slice(0, hash);
    line = line.trim();
    if (line === '' || line.startsWith('!')) return;
    switch (this.#format) {
      case 'domains':
        this.#name(line, true);
        return;
      case 'hosts':
        this.#hostsLine(line);
        return;
      case 'ips':
        this.#address(line);
        return;
    }
  }

  #hostsLine(line: string): void {
    const words = line.split(/\s+/);
    if (words.length < 2 || parseIp(words[0]!) === null) {
      this.#badLine(
        words.length < 2
          ? `${this.#quote(line)} is not a hosts line (expected an address and names, e.g. 0.0.0.0 ads.example.com)`
          : `${this.#quote(words[0]!)} is not an IP address (a hosts line starts with one)`,
      );
      return;
    }
    for (let i = 1; i < words.length; i++) {
      const w = words[i]!.toLowerCase();
      if (HOSTS_OWN.has(w)) continue;
      this.#name(w, false);
    }
  }

  #name(raw: string, wildcardOk: boolean): void {
    let name = raw.toLowerCase();
    if (wildcardOk && name.startsWith('*.')) name = name.slice(2);
    else if (wildcardOk && name.startsWith('.')) name = name.slice(1);
    if (name.endsWith('.')) name = name.slice(0, -1);
    if (!NAME.test(name) || /^[0-9.]+$/.test(name)) {
      this.#badLine(`${this.#quote(raw)} is not a domain name`);
      return;
    }
    if (!this.#names.add(name)) return;
    this.#count();
  }

  #address(text: string): void {
    const first = text.split(/\s+/, 1)[0]!;
    let range: { version: 4 | 6; first: number | bigint; last: number | bigint } | null = null;
    let message: string | undefined;
    if (first.includes('/')) {
      const r = parseCidr(first);
      if (r.ok) range = r.value;
      else message = r.message;
    } else if (first.includes('-')) {
      const r = parseIpRange(first);
      if (r.ok) range = r.value;
      else message = r.message;
    } else {
      const ip = parseIp(first);
      if (ip !== null) range = { version: ip.version, first: ip.value, last: ip.value };
      else message = `${this.#quote(first)} is not an IP address, CIDR or range`;
    }
    if (range === null) {
      // The address parser's own message quotes the entry whole: only when it may be quoted.
      if (!this.#quotable || message === undefined) message = `${this.#quote(first)} is not an address`;
      this.#badLine(message);
      return;
    }
    this.#count();
    if (range.version === 4) this.#v4.push([range.first as number, range.last as number]);
    else this.#v6.push([range.first as bigint, range.last as bigint]);
  }

  #count(): void {
    if (++this.#entries > this.#bounds.maxEntries)
      throw new ListRefused(
        `the list has more than its bound of ${this.#bounds.maxEntries} entries (maxEntries), at line ${this.#line}`,
      );
  }

  #badLine(message: string): void {
    this.#bad++;
    // Every problem passes here: cut and escaped whatever quoted it (it is a server's or a file's text).
    if (this.#problems.length < MAX_PROBLEMS)
      this.#problems.push({ line: this.#line, message: neutralizeControls(cut(message, 240)) });
  }
}

function cut(s: string, max: number): string {
  return s.length > max ? `${s.slice(0, max)}…` : s;
}

/** Parses a whole text at once (tests, the console). */
export function parseListText(text: string, format: ListFormat, bounds: ListBounds): ParsedList {
  const p = new ListParser(format, bounds);
  p.push(text);
  return p.end();
}

/** Sorts and merges overlapping or adjacent inclusive ranges into [first0, last0, ...]. */
export function mergeRanges<T extends number | bigint>(ranges: [T, T][]): T[] {
  ranges.sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
  const out: T[] = [];
  for (const [first, last] of ranges) {
    const n = out.length;
    if (
      n > 0 &&
      first <= (typeof first === 'bigint' ? (out[n - 1] as bigint) + 1n : (out[n - 1] as number) + 1)
    ) {
      if (last > out[n - 1]!) out[n - 1] = last;
    } else out.push(first, last);
  }
  return out;
}

/**
 * A name set as an open-addressing table keyed by a hash the lookup computes from the end of the
 * name backwards, so every suffix of a name (`b.example.com`, `example.com`, `com`) is looked up
 * in one pass over its characters, with no substring made: slicing and hashing a new string per
 * suffix cost more than the rest of a decision. It is also the parser's set (one structure for a
 * million names, not a Set and a table).
 */
export class NameTable {
  #mask = 15;
  /** Entry number + 1 per slot, 0 for an empty slot. */
  #slots = new Int32Array(16);
  /** The full hash of the slot's name (a cheap first check, and no rehashing of strings on growth). */
  #hashes = new Int32Array(16);
  readonly #names: string[] = [];
  /** Answers for names looked up before (bounded; the table no longer changes once parsed). */
  readonly seen = new Map<string, boolean>();

  get size(): number {
    return this.#names.length;
  }

  [Symbol.iterator](): IterableIterator<string> {
    return this.#names[Symbol.iterator]();
  }

  /** Adds a name; false when it was there already. */
  add(name: string): boolean {
    const h = backwardHash(name);
    if (this.#probe(h, name, 0)) return false;
    if ((this.#names.length + 1) * 2 > this.#slots.length) this.#grow();
    this.#names.push(name);
    this.#place(h, this.#names.length);
    return true;
  }

  /** Exactly this name. */
  has(name: string): boolean {
    return this.#probe(backwardHash(name), name, 0);
  }

  /** This name, or (subdomains) one of its parent domains. */
  lookUp(name: string, subdomains: boolean): boolean {
    let h = FNV_OFFSET;
    for (let i = name.length - 1; i >= 0; i--) {
      const c = name.charCodeAt(i);
      // At a dot, h is the hash of the suffix after it: a listed parent domain matches.
      if (c === 46 && subdomains && this.#probe(h, name, i + 1)) return true;
      h = Math.imul(h ^ c, FNV_PRIME);
    }
    return this.#probe(h, name, 0);
  }

  #place(h: number, entry: number): void {
    let slot = slotOf(h, this.#mask);
    while (this.#slots[slot] !== 0) slot = (slot + 1) & this.#mask;
    this.#slots[slot] = entry;
    this.#hashes[slot] = h;
  }

  #grow(): void {
    const oldSlots = this.#slots;
    const oldHashes = this.#hashes;
    this.#slots = new Int32Array(oldSlots.length * 2);
    this.#hashes = new Int32Array(oldSlots.length * 2);
    this.#mask = this.#slots.length - 1;
    for (let i = 0; i < oldSlots.length; i++) if (oldSlots[i] !== 0) this.#place(oldHashes[i]!, oldSlots[i]!);
  }

  /** True when the table holds name[from..] (whose backward hash is h). */
  #probe(h: number, name: string, from: number): boolean {
    const slots = this.#slots;
    const mask = this.#mask;
    for (let slot = slotOf(h, mask); ; slot = (slot + 1) & mask) {
      const e = slots[slot]!;
      if (e === 0) return false;
      if (this.#hashes[slot] === h) {
        const candidate = this.#names[e - 1]!;
        if (candidate.length === name.length - from && name.endsWith(candidate)) return true;
      }
    }
  }
}

/** FNV-1a over a name's characters from its end, so names that share a suffix hash alike step by step (NameTable, index-names.ts). */
export const FNV_OFFSET = 0x811c9dc5 | 0;
export const FNV_PRIME = 0x01000193;

export function backwardHash(name: string): number {
  let h = FNV_OFFSET;
  for (let i = name.length - 1; i >= 0; i--) h = Math.imul(h ^ name.charCodeAt(i), FNV_PRIME);
  return h;
}

export function slotOf(h: number, mask: number): number {
  return (h ^ (h >>> 15)) & mask;
}

/** True when one of the names is in the list: exactly, or (format domains) below one of its names. */
export function nameInList(
  list: Pick<ListContent, 'names' | 'subdomains'>,
  names: readonly string[],
): boolean {
  const t = list.names;
  if (t.size === 0) return false;
  for (let n = 0; n < names.length; n++) {
    const name = names[n]!;
    // The engine keeps one string per learned name: a name seen before is one map lookup.
    const known = t.seen.get(name);
    if (known !== undefined) {
      if (known) return true;
      continue;
    }
    const found = t.lookUp(name, list.subdomains);
    if (t.seen.size >= SEEN_MAX) t.seen.clear();
    t.seen.set(name, found);
    if (found) return true;
  }
  return false;
}

/** Names remembered per list with their answer. */
const SEEN_MAX = 1 << 16;

/** An empty list of a format: what a list is until it was loaded once. */
export function emptyList(format: ListFormat): ListContent {
  return { format, v4: [], v6: [], names: new NameTable(), subdomains: format === 'domains', entries: 0 };
}
