/**
 * Parsing a big YAML file a slice at a time, with the value and the positions the whole-file parse
 * gives. The `yaml` library's syntax tree of a whole file costs about 50 times the file's size (a
 * 1.1 MB policy of 10,000 rules took the RSS from 70 to 181 MB while it was parsed); when the bulk
 * of a file is one top-level block sequence (a policy's `rules:`), each slice of its items is
 * parsed as the file with the other items left out, so that each slice's trees are garbage before
 * the next is parsed (105 MB for that policy, and 10-30% faster: less is kept past young collections).
 *
 * Only where that is provably the same parse: one document, no directives, document markers
 * (but a first `---`), byte order mark, anchors, aliases or tags (nothing that reaches from one item to another), the
 * sequence the value of a plain or quoted key written alone on a line at column 0, its items
 * `-` at one column found from the Lexer's tokens of the whole file at line starts outside flow
 * collections, and every other line of the run indented deeper than the items (or at column 0
 * for items at column 0: the items' own lines), the run ending at a line at column 0 or at the end
 * of the file. The Lexer (what reads characters in context) runs once, over the whole text; a
 * slice is the Parser and Composer given its tokens: those of the lines before the sequence, of
 * its items, of the lines after. At each seam the Parser meets what it meets in the whole text: an
 * item's `-` at the sequence's column at a line start (after the lines before the sequence, as the
 * first item is), or a line at column 0 after an item's last line (as after the last item). A
 * slice with an error, or any doubt (an item count that differs), gives up: the caller parses the
 * whole file, whose errors are then the ones reported. src/yaml-slices.test.ts checks the value,
 * every position and every error against the whole-file parse on generated documents.
 */
import {
  Composer,
  type Document,
  isMap,
  isScalar,
  isSeq,
  Lexer,
  LineCounter,
  type Node,
  Parser,
  type YAMLMap,
} from 'yaml';

/** The options every YAML text of Warden is parsed with (whole or sliced). */
export const YAML_OPTIONS = { prettyErrors: false, uniqueKeys: true, version: '1.2' } as const;
/** The options of `toJS`. */
export const TO_JS_OPTIONS = { maxAliasCount: 100 } as const;

/** How big slices are. */
export interface SliceSizes {
  /** The characters of items a slice holds at least. */
  readonly chars: number;
  /** A slice holds at least this many times the characters of the lines around the sequence (parsed with each slice). */
  readonly around: number;
}

/**
 * 8 KiB of items a slice (about 400 KB of trees, garbage while young: 16 KiB and more are kept past
 * young collections and grow the old space), and the lines around the sequence at most a quarter
 * more parsing.
 */
export const SLICE_SIZES: SliceSizes = { chars: 8 * 1024, around: 4 };

/** The node at `path` in a document, or its nearest written ancestor (undefined: none). */
export function nodeAt(doc: Document, path: readonly (string | number)[]): Node | undefined {
  let node: unknown = doc.contents;
  let best: Node | undefined = doc.contents ?? undefined;
  for (const key of path) {
    if (isMap(node)) {
      const pair = node.items.find((p) => {
        const k = p.key as { value?: unknown } | null;
        return k !== null && typeof k === 'object' && String(k.value) === String(key);
      });
      if (pair === undefined) break;
      const target = (pair.value ?? pair.key) as Node | null;
      if (target === null) break;
      best = target;
      node = pair.value;
    } else if (isSeq(node) && typeof key === 'number') {
      const item = node.items[key] as Node | undefined;
      if (item === undefined) break;
      best = item;
      node = item;
    } else break;
  }
  return best;
}

/** Where a file is cut: the sequence's key line, its items' line starts, the end of its run. */
interface Plan {
  /** Offset of the key's line (column 0: the key's own offset). */
  readonly keyAt: number;
  /** The Lexer's tokens of the whole text: a token's length, or minus the code of a control token (no text). */
  readonly tokens: Int32Array;
  /** Line start of each slice's first item, and the end of the run last. */
  readonly cuts: readonly number[];
  /** The index in `tokens` of the first token at each cut. */
  readonly cutTokens: readonly number[];
  /** How many items each slice holds. */
  readonly counts: readonly number[];
}

const DOCUMENT = '\x02';
const SCALAR = '\x1f';
const FLOW_END = '\x18';
const BOM = '\u{FEFF}';

/** A line whose first token is outside flow collections: its start, its indentation, what it starts with. */
enum Kind {
  Item,
  Scalar,
  Key,
  Other,
}

/**
 * Finds the top-level block sequence worth slicing and where to cut it, from the Lexer's tokens of
 * the whole text; undefined when the text has none or anything the slices could not parse alike.
 */
export function planSlices(text: string, sizes: SliceSizes): Plan | undefined {
  if (text.length <= sizes.chars) return undefined;
  const starts: number[] = [];
  const cols: number[] = [];
  const kinds: Kind[] = [];
  /** The index in `tokens` of each line's first token. */
  const lineTokens: number[] = [];
  // A typed array: a JS array of half a million numbers, grown by pushes, left its old copies in
  // the old space (50 MB more RSS for the 1.1 MB policy).
  let tokens = new Int32Array((text.length >> 1) + 64);
  let count = 0;
  let lineToken = 0;
  let offset = 0;
  let depth = 0;
  let documents = 0;
  let scalarNext = false;
  let blockHeader = false;
  /** A line start outside flow collections whose first token is still to come. */
  let pending = false;
  let col = 0;
  /** For a line starting with a scalar: 0 after the scalar, 1 after its `:`, -1 not a key line. */
  let keyState = -1;
  for (const tok of new Lexer().lex(text)) {
    const index = count++;
    if (index === tokens.length) {
      const grown = new Int32Array(tokens.length * 2);
      grown.set(tokens);
      tokens = grown;
    }
    tokens[index] = tok === DOCUMENT || tok === SCALAR ? -tok.charCodeAt(0) : tok.length;
    if (tok === DOCUMENT) {
      if (++documents > 1) return undefined;
      continue;
    }
    if (tok === SCALAR) {
      scalarNext = true;
      continue;
    }
    if (tok === FLOW_END) return undefined;
    if (tok.length === 0) {
      scalarNext = false;
      blockHeader = false;
      continue;
    }
    if (!text.startsWith(tok, offset)) return undefined;
    const quoted = !scalarNext && (tok[0] === '"' || tok[0] === "'");
    const scalar = scalarNext || quoted;
    // A block scalar's content is one token from a line start to past its last line's newline.
    const blockContent = scalarNext && blockHeader;
    if (scalar) blockHeader = false;
    scalarNext = false;
    if (!scalar) {
      const c = tok[0];
      if (c === '&' || c === '*' || c === '!' || c === '%' || c === BOM || tok === '...') return undefined;
      // One `---` before anything else starts the one document; another would start a second.
      if (tok === '---' && starts.length > 0) return undefined;
      if (c === '|' || c === '>') blockHeader = true;
    }
    const atLineStart = offset === 0 || text.charCodeAt(offset - 1) === 10;
    if (atLineStart && depth === 0 && !blockContent) {
      pending = true;
      // A plain scalar's token comes right after its control token (an empty one, at a line start
      // after a block scalar's header, ends that block scalar: it is not the line's).
      lineToken = scalar && !quoted ? index - 1 : index;
      col = 0;
      keyState = -1;
      if (tok[0] === ' ' || tok[0] === '\t') {
        if (tok.includes('\t')) return undefined;
        col = tok.length;
        offset += tok.length;
        continue;
      }
    }
    if (pending && depth === 0) {
      pending = false;
      if (tok[0] !== '\n' && tok[0] !== '\r' && tok[0] !== '#') {
        starts.push(offset - col);
        cols.push(col);
        lineTokens.push(lineToken);
        if (scalar && !tok.includes('\n')) {
          kinds.push(Kind.Scalar);
          keyState = 0;
        } else kinds.push(!scalar && tok === '-' ? Kind.Item : Kind.Other);
        offset += tok.length;
        if (!scalar) depth += tok === '{' || tok === '[' ? 1 : 0;
        continue;
      }
    }
    if (keyState >= 0) {
      if (tok === ':' && keyState === 0 && depth === 0) keyState = 1;
      else if (tok === '\n' || tok === '\r\n') {
        if (keyState === 1) kinds[kinds.length - 1] = Kind.Key;
        keyState = -1;
      } else if (scalar || !(tok[0] === ' ' || (keyState === 1 && tok[0] === '#'))) keyState = -1;
    }
    if (!scalar) {
      if (tok === '{' || tok === '[') depth++;
      else if ((tok === '}' || tok === ']') && depth > 0) depth--;
    }
    offset += tok.length;
  }
  if (offset !== text.length || documents !== 1) return undefined;
  const run = bestRun(text, starts, cols, kinds, sizes);
  if (run === undefined) return undefined;
  const token = (line: number) => (line < starts.length ? lineTokens[line]! : count);
  return { ...run, tokens: tokens.subarray(0, count), cutTokens: run.cutLines.map(token) };
}

/** The longest run of items after a key line at column 0, cut into slices; undefined if none is worth it. */
function bestRun(
  text: string,
  starts: readonly number[],
  cols: readonly number[],
  kinds: readonly Kind[],
  sizes: SliceSizes,
): { keyAt: number; cuts: number[]; cutLines: number[]; counts: number[] } | undefined {
  let best: { key: number; items: number[]; end: number; endLine: number } | undefined;
  for (let i = 0; i + 1 < starts.length; i++) {
    if (kinds[i] !== Kind.Key || cols[i] !== 0 || kinds[i + 1] !== Kind.Item) continue;
    const n = cols[i + 1]!;
    const items: number[] = [];
    let k = i + 1;
    let ok = true;
    for (; k < starts.length; k++) {
      const c = cols[k]!;
      if (c === n && kinds[k] === Kind.Item) items.push(k);
      else if (c === 0) break;
      else if (c <= n) {
        ok = false;
        break;
      }
    }
    if (!ok) continue;
    const end = k < starts.length ? starts[k]! : text.length;
    if (best === undefined || end - starts[items[0]!]! > best.end - starts[best.items[0]!]!)
      best = { key: starts[i]!, items, end, endLine: k };
    i = k - 1;
  }
  if (best === undefined) return undefined;
  const { items, end, endLine } = best;
  const first = starts[items[0]!]!;
  // The lines around the sequence are parsed again with each slice.
  const target = Math.max(sizes.chars, sizes.around * (text.length - (end - first)));
  if (end - first <= target) return undefined;
  const cuts = [first];
  const cutLines = [items[0]!];
  const counts: number[] = [];
  let count = 0;
  for (let m = 0; m < items.length; m++) {
    count++;
    const nextLine = m + 1 < items.length ? items[m + 1]! : endLine;
    const next = m + 1 < items.length ? starts[nextLine]! : end;
    if (next - cuts.at(-1)! >= target || next === end) {
      cuts.push(next);
      cutLines.push(nextLine);
      counts.push(count);
      count = 0;
    }
  }
  return { keyAt: best.key, cuts, cutLines, counts };
}

/**
 * A slice parsed as parseDocument parses a text: its document and the sequence node (undefined: an
 * error or a doubt). Its tokens are the whole text's (lexed once): those of the lines before the
 * sequence, of the slice's items, of the lines after.
 */
function parseSlice(text: string, plan: Plan, s: number): { doc: Document; seq: Node } | undefined {
  const { tokens, cuts, cutTokens } = plan;
  const parser = new Parser();
  const composer = new Composer(YAML_OPTIONS);
  const length = cuts[0]! + cuts[s + 1]! - cuts[s]! + text.length - cuts.at(-1)!;
  /** From each range's text offset, its first token and the token after its last. */
  const ranges = [0, 0, cutTokens[0]!, cuts[s]!, cutTokens[s]!, cutTokens[s + 1]!];
  ranges.push(cuts.at(-1)!, cutTokens.at(-1)!, tokens.length);
  function* cst() {
    for (let r = 0; r < 9; r += 3) {
      let offset = ranges[r]!;
      for (let i = ranges[r + 1]!; i < ranges[r + 2]!; i++) {
        const code = tokens[i]!;
        if (code < 0) yield* parser.next(String.fromCharCode(-code));
        else {
          yield* parser.next(text.slice(offset, offset + code));
          offset += code;
        }
      }
    }
    yield* parser.end();
  }
  const docs = [...composer.compose(cst(), true, length)];
  const doc = docs[0];
  if (docs.length !== 1 || doc === undefined || doc.errors.length > 0 || !isMap(doc.contents))
    return undefined;
  const pair = doc.contents.items.find((p) => isScalar(p.key) && p.key.range?.[0] === plan.keyAt);
  if (pair === undefined || !isSeq(pair.value) || pair.value.items.length !== plan.counts[s])
    return undefined;
  return { doc, seq: pair.value };
}

/** A sliced parse's value and a way to find where a path of it was written. */
export interface SlicedParse {
  readonly value: unknown;
  locate(path: readonly (string | number)[]): { line: number; column: number } | undefined;
}

/**
 * Parses a text a slice at a time when it has a sequence worth slicing (planSlices) and every
 * slice parses without an error; undefined otherwise (the caller parses the whole text).
 */
export function parseSliced(text: string, sizes: SliceSizes = SLICE_SIZES): SlicedParse | undefined {
  const plan = planSlices(text, sizes);
  if (plan === undefined) return undefined;
  let value: Record<string, unknown> | undefined;
  let items: unknown[] | undefined;
  let prop = '';
  for (let s = 0; s < plan.counts.length; s++) {
    const parsed = parseSlice(text, plan, s);
    if (parsed === undefined) return undefined;
    const js = parsed.doc.toJS(TO_JS_OPTIONS) as Record<string, unknown>;
    if (s === 0) {
      const pairs = (parsed.doc.contents as YAMLMap).items;
      const pair = pairs.find((p) => p.value === parsed.seq)!;
      // The property toJS makes of a scalar key (the yaml library's stringifyKey), which no other
      // key may make: `1:` and `"1":` are two keys, and the property holds the last one's value.
      const propOf = (key: unknown) =>
        isScalar(key) ? (key.value === null ? '' : String(key.value)) : undefined;
      prop = propOf(pair.key)!;
      if (pairs.some((p) => p !== pair && (!isScalar(p.key) || propOf(p.key) === prop))) return undefined;
      value = js;
    }
    const part = Object.hasOwn(js, prop) ? js[prop] : undefined;
    if (!Array.isArray(part) || part.length !== plan.counts[s]) return undefined;
    if (s === 0) items = part;
    else for (const item of part) items!.push(item);
  }
  return { value, locate: locator(text, plan) };
}

/** Locates a path by parsing again the one slice it falls in (the last one is kept). */
function locator(text: string, plan: Plan): SlicedParse['locate'] {
  let lines: LineCounter | undefined;
  let cached: { s: number; doc: Document; seq: Node } | undefined;
  const slice = (s: number) => {
    if (cached?.s !== s) {
      const parsed = parseSlice(text, plan, s);
      if (parsed === undefined) return undefined;
      cached = { s, ...parsed };
    }
    return cached;
  };
  const firsts = [0];
  for (const n of plan.counts) firsts.push(firsts.at(-1)! + n);
  return (path) => {
    const first = slice(0);
    if (first === undefined) return undefined;
    let s = 0;
    let at = path;
    const index = path[1];
    if (Number.isInteger(index) && (index as number) >= 0 && (index as number) < firsts.at(-1)!) {
      // Only a path through the sliced sequence goes to another slice.
      const top = nodeAt(first.doc, path.slice(0, 1));
      if (top === first.seq) {
        while (firsts[s + 1]! <= (index as number)) s++;
        at = [path[0]!, (index as number) - firsts[s]!, ...path.slice(2)];
      }
    }
    const got = slice(s);
    const offset = got === undefined ? undefined : nodeAt(got.doc, at)?.range?.[0];
    if (offset === undefined) return undefined;
    if (lines === undefined) {
      lines = new LineCounter();
      lines.addNewLine(0);
      for (let nl = text.indexOf('\n'); nl !== -1; nl = text.indexOf('\n', nl + 1)) lines.addNewLine(nl + 1);
    }
    const pos = lines.linePos(toWhole(plan, s, offset));
    return { line: pos.line, column: pos.col };
  };
}

/** The offset in the whole text of an offset in slice `s`'s text. */
function toWhole(plan: Plan, s: number, offset: number): number {
  const before = plan.cuts[0]!;
  const length = plan.cuts[s + 1]! - plan.cuts[s]!;
  if (offset < before) return offset;
  if (offset < before + length) return offset - before + plan.cuts[s]!;
  return offset - before - length + plan.cuts.at(-1)!;
}
