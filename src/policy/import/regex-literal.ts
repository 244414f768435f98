/**
 * Reads the few regular-expression shapes that mean exactly a literal or a
 * list of literals (`^/usr/bin/curl$`, `^(53|80|443)$`,
 * `^(.*\.)?example\.com$`). Anything else is not translated: a rule whose
 * pattern Warden cannot express exactly is reported, never approximated.
 */

const LITERAL_CHAR = /[A-Za-z0-9_\-/:@%,~=]/;

/** The text a regexp body (no anchors) matches exactly, or null when it is not a plain literal. */
export function literalOf(body: string): string | null {
  let out = '';
  for (let i = 0; i < body.length; i++) {
    const c = body[i]!;
    if (c === '\\') {
      const next = body[i + 1];
      if (next === undefined || /[A-Za-z0-9]/.test(next)) return null;
      out += next;
      i++;
    } else if (LITERAL_CHAR.test(c)) out += c;
    else return null;
  }
  return out;
}

/** Strips `^` and `$`; null when the pattern is not anchored at both ends (Go regexps match substrings). */
export function anchoredBody(pattern: string): string | null {
  if (!pattern.startsWith('^') || !pattern.endsWith('$') || pattern.endsWith('\\$')) return null;
  return pattern.slice(1, -1);
}

/** The literals an anchored pattern `^lit$` or `^(lit|lit|...)$` matches exactly; null for anything else. */
export function literalAlternatives(pattern: string): string[] | null {
  const body = anchoredBody(pattern);
  if (body === null) return null;
  const group = /^\((?:\?:)?([^()]*)\)$/.exec(body);
  const items = group ? group[1]!.split('|') : [body];
  const out: string[] = [];
  for (const item of items) {
    const lit = literalOf(item);
    if (lit === null || lit === '') return null;
    out.push(lit);
  }
  return out;
}

/**
 * Host-name patterns: a literal name, `^(.*\.)?name$` (the name and every name
 * below it), `^.*\.name$` (only the names below it), and alternations of
 * literal names. Returns Warden host entries (`name`, `*.name`) or null.
 */
export function hostPatternEntries(pattern: string): string[] | null {
  const body = anchoredBody(pattern);
  if (body === null) return null;
  const both =
    /^\((?:\?:)?(?:\.\*|\.\+)\\\.\)\?(.+)$/.exec(body) ?? /^\((?:\?:)?\|(?:\.\*|\.\+)\\\.\)(.+)$/.exec(body);
  if (both) {
    const name = literalOf(both[1]!);
    return name === null || name === '' ? null : [`*.${name}`, name];
  }
  const below = /^(?:\.\*|\.\+)\\\.(.+)$/.exec(body);
  if (below) {
    const name = literalOf(below[1]!);
    return name === null || name === '' ? null : [`*.${name}`];
  }
  return literalAlternatives(pattern);
}
