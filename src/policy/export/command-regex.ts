/**
 * A Warden arguments glob as an OpenSnitch `process.command` operator: a glob without wildcards is
 * a case-sensitive equality, any other an anchored Go regexp where `.` also matches a newline.
 */
import { type Glob, globLiteral, globRuns, type Token } from '../glob.js';

/** The operator type and data for a glob. */
export function commandOperator(g: Glob): { type: 'simple' | 'regexp'; data: string } {
  const exact = globLiteral(g);
  if (exact !== null) return { type: 'simple', data: exact };
  const runs = globRuns(g);
  const parts = g.starred
    ? runs.map((run) => run.map(tokenRegex).join(''))
    : [runs[0]!.map(tokenRegex).join('')];
  return { type: 'regexp', data: `(?s)^${parts.join('.*')}$` };
}

function escapeChar(code: number): string {
  const c = String.fromCharCode(code);
  return /[.[\]()|*+?{}^$\\\-!]/.test(c) ? `\\${c}` : c;
}

function tokenRegex(t: Token): string {
  if (t.kind === 'any') return '.';
  if (t.kind === 'char') return escapeChar(t.code);
  let out = t.negated ? '[^' : '[';
  for (let k = 0; k < t.ranges.length; k += 2) {
    const from = t.ranges[k]!;
    const to = t.ranges[k + 1]!;
    out += from === to ? escapeChar(from) : `${escapeChar(from)}-${escapeChar(to)}`;
  }
  return `${out}]`;
}
