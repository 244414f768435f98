/**
 * OpenSnitch's `process.command` (the arguments joined by single spaces, as Warden's `arguments`)
 * to a Warden glob. A simple operator is an equality; a regexp (Go, unanchored unless ^ and $) is
 * translated when it is made of literal text, `.` (one character), `.*` and `.+`, and character
 * sets of plain characters and ranges: anything else (groups, alternatives, counted repeats, \d)
 * has no glob and is refused with the reason. Without `sensitive`, OpenSnitch compares in lower
 * case: each letter becomes a set of both cases.
 */
import { globEscape } from '../glob.js';

/** The glob, or why the pattern has none. */
export type CommandGlob = { ok: true; glob: string } | { ok: false; why: string };

const REGEX_SPECIAL = new Set([...'.[]()|*+?{}^$\\']);

function literal(c: string, sensitive: boolean): string {
  const lower = c.toLowerCase();
  const upper = c.toUpperCase();
  if (!sensitive && lower !== upper && lower.length === 1 && upper.length === 1) return `[${lower}${upper}]`;
  return globEscape(c);
}

/** A simple (equality) operator's data as a glob. */
export function simpleCommandGlob(data: string, sensitive: boolean): CommandGlob {
  if (data === '') return { ok: false, why: 'an empty command line is not a Warden glob' };
  return { ok: true, glob: [...data].map((c) => literal(c, sensitive)).join('') };
}

/** A regexp operator's pattern as a glob. */
export function regexpCommandGlob(pattern: string, sensitive: boolean): CommandGlob {
  const refuse = (what: string): CommandGlob => ({
    ok: false,
    why: `${what}: only literal text, ., .*, .+ and [sets] (anchored or not) become an arguments glob`,
  });
  let body = pattern;
  if (body.startsWith('(?s)')) body = body.slice(4);
  const start = body.startsWith('^');
  if (start) body = body.slice(1);
  const end = body.endsWith('$') && !body.endsWith('\\$');
  if (end) body = body.slice(0, -1);
  let out = start ? '' : '*';
  for (let i = 0; i < body.length; i++) {
    const c = body[i]!;
    if (c === '.') {
      const next = body[i + 1];
      if (next === '*') {
        out += '*';
        i++;
      } else if (next === '+') {
        out += '?*';
        i++;
      } else out += '?';
    } else if (c === '\\') {
      const next = body[i + 1];
      if (next === undefined || /[A-Za-z0-9]/.test(next)) return refuse(`\\${next ?? ''} at ${i + 1}`);
      out += literal(next, sensitive);
      i++;
    } else if (c === '[') {
      const set = readSet(body, i, sensitive);
      if (typeof set === 'string') return refuse(set);
      out += set.glob;
      i = set.end;
    } else if (REGEX_SPECIAL.has(c)) return refuse(`"${c}" at ${i + 1}`);
    else out += literal(c, sensitive);
    if (/[*+?{]/.test(body[i + 1] ?? '') && c !== '.')
      return refuse(`a repeat after "${body.slice(0, i + 1)}"`);
  }
  if (!end) out += '*';
  out = out.replace(/\*+/g, '*');
  if (out === '*' || out === '') return { ok: true, glob: '*' };
  return { ok: true, glob: out };
}

function readSet(body: string, open: number, sensitive: boolean): { glob: string; end: number } | string {
  let i = open + 1;
  let glob = '[';
  if (body[i] === '^') {
    glob += '!';
    i++;
  }
  let first = true;
  for (; i < body.length; i++) {
    const c = body[i]!;
    if (c === ']' && !first) {
      if (!sensitive && /[A-Za-z]/.test(glob)) return `a case-insensitive set at ${open + 1}`;
      return { glob: `${glob}]`, end: i };
    }
    first = false;
    if (c === '\\') {
      const next = body[i + 1];
      if (next === undefined || /[A-Za-z0-9]/.test(next)) return `\\${next ?? ''} in a set at ${i + 1}`;
      glob += `\\${next}`;
      i++;
    } else if (c === '[') return `a class like [:alpha:] at ${i + 1}`;
    else glob += c === '!' || c === '^' ? `\\${c}` : c;
  }
  return `an unclosed [ at ${open + 1}`;
}
