/**
 * Human-edited YAML documents: parse with positions, and turn schema issues
 * into problems that name the file, the line, the field and (for rules) the
 * rule. Pure: the caller reads the file.
 */
import { type Document, LineCounter, parseDocument } from 'yaml';
import type { z } from 'zod';
import { ErrorCode as Codes, type ErrorCode, formatProblem, type Problem, WardenError } from './errors.js';
import {
  nodeAt,
  parseSliced,
  SLICE_SIZES,
  type SliceSizes,
  TO_JS_OPTIONS,
  YAML_OPTIONS,
} from './yaml-slices.js';

/** A parsed YAML document and a way to find where a path of it was written. */
export interface LocatedDocument {
  readonly value: unknown;
  /** 1-based line and column of the node at `path`, or of its nearest written ancestor. */
  locate(path: readonly (string | number)[]): { line: number; column: number } | undefined;
}

/**
 * Parses YAML text; a syntax error throws WARDEN_E_YAML_SYNTAX naming file, line and column. A big
 * file whose bulk is one top-level sequence is parsed a slice at a time (src/yaml-slices.ts: the
 * same value and positions, a fraction of the memory); any other, or one with an error, whole.
 * `sizes` is for tests.
 */
export function parseYaml(
  text: string,
  file: string | undefined,
  sizes: SliceSizes = SLICE_SIZES,
): LocatedDocument {
  return parseSliced(text, sizes) ?? parseYamlWhole(text, file);
}

/** Parses YAML text as one document tree (parseYaml's path for any text it does not slice). */
export function parseYamlWhole(text: string, file: string | undefined): LocatedDocument {
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { lineCounter, ...YAML_OPTIONS });
  if (doc.errors.length > 0) {
    const problems: Problem[] = doc.errors.map((e) => {
      const pos = lineCounter.linePos(e.pos[0]);
      return {
        file,
        line: pos.line,
        column: pos.col,
        path: [],
        message: e.message.split('\n')[0] ?? e.message,
      };
    });
    throw new WardenError(Codes.YAML_SYNTAX, `${file ?? 'input'} is not valid YAML`, {
      problems,
      suggestion: 'Check indentation and quoting at the line shown; YAML uses spaces, not tabs.',
    });
  }
  return {
    value: doc.toJS(TO_JS_OPTIONS),
    locate: (path) => locateNode(doc, lineCounter, path),
  };
}

function locateNode(
  doc: Document,
  lineCounter: LineCounter,
  path: readonly (string | number)[],
): { line: number; column: number } | undefined {
  const offset = nodeAt(doc, path)?.range?.[0];
  if (offset === undefined) return undefined;
  const pos = lineCounter.linePos(offset);
  return { line: pos.line, column: pos.col };
}

/** Builds a problem at `path`, located in the document when it has one. */
export function problemAt(
  doc: LocatedDocument | undefined,
  file: string | undefined,
  path: readonly (string | number)[],
  message: string,
  rule?: string,
): Problem {
  const pos = doc?.locate(path);
  return { file, line: pos?.line, column: pos?.column, path, rule, message };
}

/** Problems located and described at most, of one text. */
const MAX_PROBLEMS = 100;

/** Turns zod issues into located problems (at most MAX_PROBLEMS and a last one saying there were more); `ruleNameAt` names the rule a path falls in, if any. */
export function issuesToProblems(
  issues: readonly z.core.$ZodIssue[],
  doc: LocatedDocument | undefined,
  file: string | undefined,
  ruleNameAt: (path: readonly PropertyKey[]) => string | undefined,
  schema?: z.ZodType,
): Problem[] {
  const out: Problem[] = [];
  for (const issue of issues) {
    if (out.length >= MAX_PROBLEMS) {
      // A text with thousands of errors (a hostile subscription) is not worth locating each one.
      out.push({ file, path: [], message: `and more problems: only the first ${MAX_PROBLEMS} are shown` });
      break;
    }
    const path = issue.path.filter((p): p is string | number => typeof p !== 'symbol');
    if (issue.code === 'unrecognized_keys') {
      for (const key of issue.keys) {
        const keyPath = [...path, key];
        out.push(
          problemAt(
            doc,
            file,
            keyPath,
            `unknown field "${key}"${hintFor(key, fieldsAt(schema, path))}`,
            ruleNameAt(keyPath),
          ),
        );
      }
      continue;
    }
    out.push(problemAt(doc, file, path, describeIssue(issue), ruleNameAt(path)));
  }
  return out;
}

const RENAMED: Record<string, string> = {
  dir: 'direction',
  proto: 'protocol',
  app: 'application',
  process: 'application',
  port: 'remotePorts',
  ports: 'remotePorts',
  dport: 'remotePorts',
  sport: 'localPorts',
  remotePort: 'remotePorts',
  localPort: 'localPorts',
  address: 'remote',
  remoteAddress: 'remote',
  host: 'remote',
  verdict: 'action',
  disabled: 'enabled',
  expiry: 'expires',
  description: 'comment',
};

function hintFor(key: string, fields: readonly string[]): string {
  const to = RENAMED[key] ?? closest(key, fields);
  return to === undefined ? '' : `; did you mean "${to}"?`;
}

/** Edit distance (insertions, deletions, substitutions, swaps of neighbours) between two words. */
function distance(a: string, b: string): number {
  const d: number[][] = Array.from({ length: a.length + 1 }, (_, i) => [
    i,
    ...Array<number>(b.length).fill(0),
  ]);
  for (let j = 1; j <= b.length; j++) d[0]![j] = j;
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      let v = Math.min(d[i - 1]![j]! + 1, d[i]![j - 1]! + 1, d[i - 1]![j - 1]! + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1])
        v = Math.min(v, d[i - 2]![j - 2]! + 1);
      d[i]![j] = v;
    }
  }
  return d[a.length]![b.length]!;
}

/**
 * The candidate closest to a misspelt word, when it is close enough to be what was meant (at most a
 * third of its letters off, case ignored): `protcol` -> `protocol`. The console uses it for commands,
 * options and values too.
 */
export function closest(word: string, candidates: readonly string[]): string | undefined {
  let best: string | undefined;
  let bestDistance = Math.max(1, Math.floor(word.length / 3)) + 1;
  for (const c of candidates) {
    const dist = distance(word.toLowerCase(), c.toLowerCase());
    if (dist < bestDistance) {
      best = c;
      bestDistance = dist;
    }
  }
  return best;
}

/** The field names an object schema allows at a path (through arrays, optionals, defaults, unions). */
function fieldsAt(schema: z.ZodType | undefined, path: readonly (string | number)[]): string[] {
  type Def = {
    type: string;
    shape?: Record<string, unknown>;
    element?: unknown;
    innerType?: unknown;
    in?: unknown;
    options?: unknown[];
  };
  const defOf = (s: unknown): Def | undefined => (s as { _zod?: { def?: Def } })?._zod?.def;
  const unwrap = (s: unknown): unknown[] => {
    const def = defOf(s);
    if (def === undefined) return [];
    if (def.innerType !== undefined) return unwrap(def.innerType);
    if (def.type === 'pipe') return unwrap(def.in);
    if (def.type === 'union') return (def.options ?? []).flatMap(unwrap);
    return [s];
  };
  let at: unknown[] = schema === undefined ? [] : unwrap(schema);
  for (const step of path) {
    at = at.flatMap((s) => {
      const def = defOf(s)!;
      if (typeof step === 'number') return def.type === 'array' ? unwrap(def.element) : [];
      if (def.type === 'record') return unwrap((def as { valueType?: unknown }).valueType);
      return def.shape?.[step] === undefined ? [] : unwrap(def.shape[step]);
    });
  }
  return [...new Set(at.flatMap((s) => Object.keys(defOf(s)?.shape ?? {})))];
}

function describeIssue(issue: z.core.$ZodIssue): string {
  // Parsed with reportInput, so an absent `input` means the field was not written at all.
  const missing = issue.input === undefined;
  switch (issue.code) {
    case 'invalid_type':
      return missing
        ? `required field is missing (expected ${issue.expected})`
        : `expected ${issue.expected}, got ${describeValue(issue.input)}`;
    case 'invalid_value': {
      const options = issue.values.map((v) => JSON.stringify(v)).join(', ');
      return missing
        ? `required field is missing (one of ${options})`
        : `${describeValue(issue.input)} is not allowed; must be one of ${options}`;
    }
    default:
      return issue.message;
  }
}

function describeValue(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'a list';
  if (typeof v === 'object') return 'a mapping';
  return typeof v === 'string' ? JSON.stringify(v) : `${typeof v} ${String(v)}`;
}

/** Options for schema.safeParse so issues carry the offending input (for messages). */
const PARSE_OPTIONS = { reportInput: true } as const;

/** How to validate one kind of document and how to report its problems. */
export interface DocumentKind {
  readonly code: ErrorCode;
  /** What the document is called when it has no file name: "policy", "settings". */
  readonly what: string;
  /** The message when the top level is not a mapping. */
  readonly notAMapping: string;
  /** Names the rule a problem's path falls in, if any. */
  readonly ruleNameAt?: (path: readonly PropertyKey[]) => string | undefined;
}

/** Validates a mapping against a schema; throws the kind's code with every problem located. */
export function validateDocument<S extends z.ZodType>(
  schema: S,
  value: unknown,
  kind: DocumentKind,
  file: string | undefined,
  doc: LocatedDocument | undefined,
): z.output<S> {
  const what = file ?? kind.what;
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    throwIfProblems(kind.code, what, [problemAt(doc, file, [], kind.notAMapping)]);
  }
  const result = schema.safeParse(value, PARSE_OPTIONS);
  if (!result.success) {
    throwIfProblems(
      kind.code,
      what,
      issuesToProblems(result.error.issues, doc, file, kind.ruleNameAt ?? (() => undefined), schema),
    );
  }
  return result.data as z.output<S>;
}

/** Throws a WardenError with every problem listed, or returns when there are none. */
export function throwIfProblems(code: ErrorCode, what: string, problems: readonly Problem[]): void {
  if (problems.length === 0) return;
  const first = problems[0];
  const lead =
    problems.length === 1 && first !== undefined ? formatProblem(first) : `${problems.length} problems`;
  throw new WardenError(code, `${what} is invalid: ${lead}`, { problems });
}
