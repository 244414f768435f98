/**
 * Globs over a process's command line (the `arguments` rule field): `*` any run of characters
 * (spaces and slashes too), `?` one character, `[abc]`, `[a-z]`, `[!a-z]` (or `[^a-z]`) one
 * character of (or not of) a set, `\x` the character x itself. The glob matches the whole text.
 *
 * A glob is compiled once per rule into segments: the runs of single-character tests between the
 * stars. The first segment must match at the start, the last at the end, and each middle one is
 * found at its leftmost place after the previous one: a segment has a fixed length, so the leftmost
 * place never loses a match a later place would have given, and no step is ever taken back. Each
 * middle segment (at most 64 tests) is searched with a bit-parallel shift-and (one bit per position
 * of the segment, in one or two 32-bit words), so a whole match costs at most one pass over the
 * text with two words of state, plus the length of the glob: linear in the text whatever the glob
 * (no backtracking blow-up, unlike a recursive matcher on `*a*a*a*a*b`). `globSteps` counts those
 * steps for the tests.
 */

/** Longest glob a rule may hold (characters). */
export const MAX_GLOB_LENGTH = 256;

/** Longest part between two stars (single-character tests): it is searched for, in two words. */
export const MAX_SEARCHED_PART = 64;

/** One single-character test: a literal, any character, or a set (ranges as [from, to] code pairs). */
export type Token =
  | { readonly kind: 'char'; readonly code: number }
  | { readonly kind: 'any' }
  | { readonly kind: 'set'; readonly ranges: readonly number[]; readonly negated: boolean };

interface Segment {
  readonly tokens: readonly Token[];
  /** 32-bit words of one position mask (one bit per token). */
  readonly words: number;
  /** Shift-and tables: for each ASCII code, the words of positions that accept it. */
  readonly ascii: Int32Array;
  /** The positions that accept every non-ASCII character (`?`, a negated ASCII-only set). */
  readonly wide: Int32Array;
  /** Positions whose answer depends on which non-ASCII character it is (tested one by one). */
  readonly special: readonly number[];
}

/** A compiled glob; `source` is the text it was compiled from. */
export interface Glob {
  readonly source: string;
  /** No star: the text must be exactly this one segment. */
  readonly starred: boolean;
  readonly segments: readonly Segment[];
  /** Total length of all segments (the shortest text that can match). */
  readonly minLength: number;
}

/** A glob or a sentence saying what is wrong and where (1-based column). */
export type GlobResult = { ok: true; glob: Glob } | { ok: false; message: string };

/** Compiles a glob; refuses an empty one, an unclosed `[`, an empty set, a reversed range, a trailing `\`. */
export function compileGlob(source: string): GlobResult {
  if (source === '')
    return { ok: false, message: 'the glob is empty; leave the field out to match anything' };
  if (source.length > MAX_GLOB_LENGTH)
    return { ok: false, message: `the glob is longer than ${MAX_GLOB_LENGTH} characters` };
  const parts: Token[][] = [[]];
  let starred = false;
  for (let i = 0; i < source.length; i++) {
    const c = source.charCodeAt(i);
    const column = i + 1;
    if (c === 0x2a /* * */) {
      starred = true;
      if (parts[parts.length - 1]!.length > 0 || parts.length === 1) parts.push([]);
      continue;
    }
    const current = parts[parts.length - 1]!;
    if (c === 0x3f /* ? */) current.push({ kind: 'any' });
    else if (c === 0x5c /* \ */) {
      if (i + 1 >= source.length)
        return {
          ok: false,
          message: `a \\ at column ${column} escapes nothing (write \\\\ for a backslash)`,
        };
      current.push({ kind: 'char', code: source.charCodeAt(++i) });
    } else if (c === 0x5b /* [ */) {
      const set = readSet(source, i);
      if (!set.ok) return set;
      current.push(set.token);
      i = set.end;
    } else current.push({ kind: 'char', code: c });
  }
  // parts[0] is the anchored head (maybe empty); with a star, the last part is the anchored tail.
  // The parts between two stars are searched for: each is one or two 32-bit words of state.
  for (let p = 1; p < parts.length - 1; p++)
    if (parts[p]!.length > MAX_SEARCHED_PART)
      return {
        ok: false,
        message: `part ${p + 1} of the glob (between two stars) is longer than ${MAX_SEARCHED_PART} characters; a part searched for in the command line can be at most that long`,
      };
  const segments = parts.map(segmentOf);
  return {
    ok: true,
    glob: {
      source,
      starred,
      segments,
      minLength: segments.reduce((n, s) => n + s.tokens.length, 0),
    },
  };
}

function readSet(
  source: string,
  open: number,
): { ok: true; token: Token; end: number } | { ok: false; message: string } {
  let i = open + 1;
  let negated = false;
  if (source[i] === '!' || source[i] === '^') {
    negated = true;
    i++;
  }
  const ranges: number[] = [];
  let first = true;
  for (; i < source.length; i++) {
    let c = source.charCodeAt(i);
    if (c === 0x5d /* ] */ && !first) {
      if (ranges.length === 0) return { ok: false, message: `the set at column ${open + 1} is empty` };
      return { ok: true, token: { kind: 'set', ranges, negated }, end: i };
    }
    first = false;
    if (c === 0x5c) {
      if (i + 1 >= source.length) break;
      c = source.charCodeAt(++i);
    }
    let to = c;
    if (source[i + 1] === '-' && i + 2 < source.length && source[i + 2] !== ']') {
      let j = i + 2;
      to = source.charCodeAt(j);
      if (to === 0x5c && j + 1 < source.length) to = source.charCodeAt(++j);
      if (to < c)
        return {
          ok: false,
          message: `the range ${String.fromCharCode(c)}-${String.fromCharCode(to)} at column ${i + 1} is reversed`,
        };
      i = j;
    }
    ranges.push(c, to);
  }
  return { ok: false, message: `the [ at column ${open + 1} is never closed (write \\[ for a bracket)` };
}

function accepts(t: Token, code: number): boolean {
  if (t.kind === 'any') return true;
  if (t.kind === 'char') return t.code === code;
  let inside = false;
  for (let k = 0; k < t.ranges.length; k += 2)
    if (t.ranges[k]! <= code && code <= t.ranges[k + 1]!) {
      inside = true;
      break;
    }
  return inside !== t.negated;
}

function segmentOf(tokens: readonly Token[]): Segment {
  const words = Math.max(1, Math.ceil(tokens.length / 32));
  const ascii = new Int32Array(128 * words);
  const wide = new Int32Array(words);
  const special: number[] = [];
  tokens.forEach((t, p) => {
    const bit = 1 << (p & 31);
    for (let code = 0; code < 128; code++) if (accepts(t, code)) ascii[code * words + (p >>> 5)]! |= bit;
    if (t.kind === 'any') wide[p >>> 5]! |= bit;
    else if (t.kind === 'char') {
      if (t.code >= 128) special.push(p);
    } else if (t.ranges.some((c) => c >= 128)) special.push(p);
    else if (t.negated) wide[p >>> 5]! |= bit;
  });
  return { tokens, words, ascii, wide, special };
}

/** Steps of the last match (an object: a module-level `let` in the hot loop kept deoptimizing it). */
const counter = { steps: 0 };

/** Steps taken by the last globMatch (token tests and shift-and word operations): for tests. */
export function globSteps(): number {
  return counter.steps;
}

/** Does the token run match text at `at` (exactly its length)? */
function matchesAt(seg: Segment, text: string, at: number): boolean {
  const tokens = seg.tokens;
  for (let p = 0; p < tokens.length; p++) {
    counter.steps++;
    if (!accepts(tokens[p]!, text.charCodeAt(at + p))) return false;
  }
  return true;
}

/**
 * The end (exclusive) of the leftmost place in text[from, limit) where the segment (at most 64
 * tests: two words) matches, or -1. While no position is alive and the segment starts with a
 * literal character, the search jumps to that character's next occurrence (indexOf reads each
 * skipped character once: the steps count them).
 */
function findFrom(seg: Segment, text: string, from: number, limit: number): number {
  const k = seg.tokens.length;
  if (k === 0) return from;
  const two = seg.words === 2;
  const ascii = seg.ascii;
  const words = seg.words;
  // The bit of the last position, in the word it falls in.
  const last0 = two ? 0 : 1 << (k - 1);
  const last1 = two ? 1 << (k - 33) : 0;
  const first = seg.tokens[0]!;
  const lead = first.kind === 'char' ? String.fromCharCode(first.code) : null;
  let s0 = 0;
  let s1 = 0;
  let count = 0;
  let found = -1;
  for (let i = from; i < limit; i++) {
    if (s0 === 0 && s1 === 0 && lead !== null) {
      const next = text.indexOf(lead, i);
      if (next < 0 || next >= limit) {
        count += limit - i;
        break;
      }
      count += next - i;
      i = next;
    }
    count += words;
    const code = text.charCodeAt(i);
    let m0: number;
    let m1: number;
    if (code < 128) {
      m0 = ascii[code * words]!;
      m1 = two ? ascii[code * words + 1]! : 0;
    } else {
      m0 = seg.wide[0]!;
      m1 = two ? seg.wide[1]! : 0;
      for (const p of seg.special) {
        count++;
        if (accepts(seg.tokens[p]!, code)) {
          if (p < 32) m0 |= 1 << p;
          else m1 |= 1 << (p - 32);
        }
      }
    }
    // state = ((state << 1) | 1) & accept(code), the top bit of the low word carried up.
    s1 = ((s1 << 1) | (s0 >>> 31)) & m1;
    s0 = ((s0 << 1) | 1) & m0;
    if ((s0 & last0) !== 0 || (s1 & last1) !== 0) {
      found = i + 1;
      break;
    }
  }
  counter.steps += count;
  return found;
}

/** True when the glob matches the whole text. */
export function globMatch(g: Glob, text: string): boolean {
  counter.steps = 0;
  const n = text.length;
  if (n < g.minLength) return false;
  const segs = g.segments;
  const head = segs[0]!;
  if (!g.starred) return n === head.tokens.length && matchesAt(head, text, 0);
  if (!matchesAt(head, text, 0)) return false;
  let at = head.tokens.length;
  const tail = segs[segs.length - 1]!;
  const tailStart = n - tail.tokens.length;
  // The middle segments, each at its leftmost place; the tail must still fit after them.
  for (let s = 1; s < segs.length - 1; s++) {
    const end = findFrom(segs[s]!, text, at, tailStart);
    if (end < 0) return false;
    at = end;
  }
  return tailStart >= at && matchesAt(tail, text, tailStart);
}

/** True when the glob matches every text (only stars). */
export function globMatchesEverything(g: Glob): boolean {
  return g.starred && g.minLength === 0;
}

/**
 * The text a glob without any wildcard matches, or null: for export, where a literal command
 * line can be written as an exact string.
 */
export function globLiteral(g: Glob): string | null {
  if (g.starred) return null;
  let out = '';
  for (const t of g.segments[0]!.tokens) {
    if (t.kind !== 'char') return null;
    out += String.fromCharCode(t.code);
  }
  return out;
}

/** Escapes text so that a glob matches exactly it. */
export function globEscape(text: string): string {
  return text.replace(/[*?[\\]/g, (c) => `\\${c}`);
}

/** The glob as runs of single-character tests with a star between each two (for exporters). */
export function globRuns(g: Glob): readonly (readonly Token[])[] {
  return g.segments.map((s) => s.tokens);
}

/**
 * Runs every path of the matcher once on short texts when the module loads. A long search is
 * compiled by V8 in the middle of its loop (on-stack replacement); code after the loop that had
 * never run yet had no type feedback then, and that compiled loop, kept for later calls, left
 * for the interpreter at every exit (measured: every call, several times slower).
 */
function warmUp(): void {
  const texts = ['', 'a', 'xab', 'x-é中-b', 'ab'.repeat(40), `${'a'.repeat(70)}b`];
  for (const source of ['*ab*', '*a?*b', '*[!x]é*[a-c]', `*${'a'.repeat(40)}b*`, 'a*b*', '?']) {
    const r = compileGlob(source);
    if (r.ok) for (const t of texts) globMatch(r.glob, t);
  }
}
warmUp();
