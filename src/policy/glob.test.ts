import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { compileGlob, type Glob, globLiteral, globMatch, globMatchesEverything, globSteps } from './glob.js';

const glob = (source: string): Glob => {
  const r = compileGlob(source);
  if (!r.ok) throw new Error(r.message);
  return r.glob;
};

/** The reference: the glob as an anchored regular expression (backtracking, fine for short inputs). */
function reference(source: string): RegExp {
  let out = '';
  for (let i = 0; i < source.length; i++) {
    const c = source[i]!;
    if (c === '*') out += '[\\s\\S]*';
    else if (c === '?') out += '[\\s\\S]';
    else if (c === '\\') out += unicodeEscape(source[++i]!);
    else if (c === '[') {
      let j = i + 1;
      let body = '';
      if (source[j] === '!' || source[j] === '^') {
        body += '^';
        j++;
      }
      let first = true;
      for (; source[j] !== ']' || first; j++) {
        first = false;
        let ch = source[j]!;
        if (ch === '\\') ch = source[++j]!;
        if (source[j + 1] === '-' && source[j + 2] !== undefined && source[j + 2] !== ']') {
          let to = source[j + 2]!;
          j += 2;
          if (to === '\\') to = source[++j]!;
          body += `${unicodeEscape(ch)}-${unicodeEscape(to)}`;
        } else body += unicodeEscape(ch);
      }
      out += `[${body}]`;
      i = j;
    } else out += unicodeEscape(c);
  }
  return new RegExp(`^${out}$`);
}

function unicodeEscape(c: string): string {
  return `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`;
}

const ALPHABET = ['a', 'b', ' ', '-', '/', 'é', '中'];
const textArb = fc.array(fc.constantFrom(...ALPHABET), { maxLength: 14 }).map((a) => a.join(''));
const globArb = fc
  .array(
    fc.oneof(
      fc.constantFrom(...ALPHABET),
      fc.constantFrom(
        '*',
        '*',
        '?',
        '[ab]',
        '[!a]',
        '[a-c]',
        '[^ -/]',
        '[é中]',
        '[!中]',
        '\\*',
        '\\?',
        '\\[',
      ),
    ),
    { minLength: 1, maxLength: 9 },
  )
  .map((a) => a.join(''));

describe('glob', () => {
  test('matches the whole text: stars, ?, sets, escapes', () => {
    assert.equal(globMatch(glob('curl *'), 'curl -s https://x'), true);
    assert.equal(globMatch(glob('curl *'), 'xcurl -s'), false);
    assert.equal(globMatch(glob('*--upload*'), 'rsync --upload x'), true);
    assert.equal(globMatch(glob('*--upload*'), 'rsync --download x'), false);
    assert.equal(globMatch(glob('a?c'), 'abc'), true);
    assert.equal(globMatch(glob('a?c'), 'ac'), false);
    assert.equal(globMatch(glob('[a-c]x'), 'bx'), true);
    assert.equal(globMatch(glob('[!a-c]x'), 'bx'), false);
    assert.equal(globMatch(glob('\\*'), '*'), true);
    assert.equal(globMatch(glob('\\*'), 'x'), false);
    assert.equal(globMatch(glob('[]]'), ']'), true);
    assert.equal(globMatch(glob('*'), ''), true);
    assert.equal(globMatch(glob('a*a'), 'a'), false);
  });

  test('refuses what is not a glob, saying where', () => {
    const err = (s: string) => {
      const r = compileGlob(s);
      return r.ok ? 'ok' : r.message;
    };
    assert.match(err(''), /empty/);
    assert.match(err('ab[cd'), /\[ at column 3 is never closed/);
    assert.match(err('x[z-a]'), /range z-a at column 3 is reversed/);
    assert.match(err('abc\\'), /column 4 escapes nothing/);
    assert.match(err('x'.repeat(300)), /longer than 256/);
    assert.match(err(`x*${'y'.repeat(65)}*z`), /part 2 of the glob \(between two stars\) is longer than 64/);
    assert.equal(
      err(`${'y'.repeat(200)}*z`),
      'ok',
      'an anchored head or tail is not searched for: any length',
    );
  });

  test('agrees with a regular-expression reference on random globs and texts', () => {
    fc.assert(
      fc.property(globArb, textArb, (source, text) => {
        const r = compileGlob(source);
        if (!r.ok) return true;
        assert.equal(globMatch(r.glob, text), reference(source).test(text), `${source} on ${text}`);
        return true;
      }),
      { numRuns: 20_000 },
    );
  });

  test('linear in the text whatever the glob: steps counted on the backtracking worst cases', () => {
    const cases: [string, (n: number) => string][] = [
      ['*a*a*a*a*a*a*a*a*b', (n) => 'a'.repeat(n)],
      ['*aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaab*', (n) => 'a'.repeat(n)],
      [`*${'?'.repeat(60)}b*c`, (n) => 'x'.repeat(n)],
      [`*${'a'.repeat(63)}b*`, (n) => 'a'.repeat(n)],
      ['*[!a]中*[é中]?*z', (n) => '中é'.repeat(n / 2)],
    ];
    for (const [source, make] of cases) {
      const g = glob(source);
      const words = g.segments.reduce((w, s) => w + s.words + s.special.length, 0);
      let previous = 0;
      for (const n of [1000, 10_000, 100_000]) {
        assert.equal(globMatch(g, make(n)), false);
        const steps = globSteps();
        // At most one pass per segment word (and special position), plus the glob itself.
        assert.ok(steps <= n * words + source.length, `${source}: ${steps} steps on ${n} characters`);
        if (previous > 0) assert.ok(steps <= previous * 10 + source.length, `${source}: not linear`);
        previous = steps;
      }
    }
  });

  test('what matches everything, and literals', () => {
    assert.equal(globMatchesEverything(glob('*')), true);
    assert.equal(globMatchesEverything(glob('**')), true);
    assert.equal(globMatchesEverything(glob('*?')), false);
    assert.equal(globLiteral(glob('curl -s')), 'curl -s');
    assert.equal(globLiteral(glob('curl \\*')), 'curl *');
    assert.equal(globLiteral(glob('curl *')), null);
  });
});
