import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { type LocatedDocument, parseYaml, parseYamlWhole } from './document.js';
import { WardenError } from './errors.js';
import { parsePolicyText, validatePolicy } from './policy/index.js';
import { parseSliced, planSlices, type SliceSizes } from './yaml-slices.js';

/** What a parse gives: the value, or the error with every problem (positions included). */
type Outcome =
  | { doc: LocatedDocument }
  | { error: { code: string; message: string; problems: unknown } }
  | { thrown: string };

function outcome(parse: () => LocatedDocument): Outcome {
  try {
    return { doc: parse() };
  } catch (err) {
    // The yaml library's own errors (toJS: an alias to an anchor written after it) pass through.
    if (!(err instanceof WardenError)) return { thrown: String(err) };
    return { error: { code: err.code, message: err.message, problems: err.problems } };
  }
}

/** Every path into a value (and a few that lead nowhere), for locate. */
function pathsOf(value: unknown, at: (string | number)[] = [], out: (string | number)[][] = []) {
  out.push(at);
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) pathsOf(value[i], [...at, i], out);
    out.push([...at, value.length], [...at, 'x']);
  } else if (value !== null && typeof value === 'object') {
    for (const [k, v] of Object.entries(value)) pathsOf(v, [...at, k], out);
    out.push([...at, 'no such key']);
  }
  return out;
}

/** Parses a text whole and sliced (at these sizes) and expects the same outcome; returns whether it was sliced. */
function same(text: string, sizes: SliceSizes): boolean {
  const whole = outcome(() => parseYamlWhole(text, 'f.yaml'));
  const sliced = outcome(() => parseYaml(text, 'f.yaml', sizes));
  if (!('doc' in whole)) {
    assert.deepStrictEqual(sliced, whole, text);
    return false;
  }
  assert.ok('doc' in sliced, `${text}\n${JSON.stringify(sliced)}`);
  assert.deepStrictEqual(sliced.doc.value, whole.doc.value, text);
  for (const path of pathsOf(whole.doc.value))
    assert.deepStrictEqual(
      sliced.doc.locate(path),
      whole.doc.locate(path),
      `${JSON.stringify(path)} in\n${text}`,
    );
  return parseSliced(text, sizes) !== undefined;
}

/** A sequence item at indentation `ind` (its content at `sub`), `k` its number; some are invalid or stop slicing. */
const item = (valid: boolean) =>
  fc.tuple(fc.nat(1000), fc.nat(valid ? VALID.length - 1 : INVALID.length - 1)).map(
    ([k, i]) =>
      (ind: string, sub: string) =>
        (valid ? VALID : INVALID)[i]!(ind, sub, k),
  );

type Item = (ind: string, sub: string, k: number) => string;
const VALID: Item[] = [
  (i, _s, k) => `${i}- { name: r${k}, remote: 10.0.0.${k % 256}, remotePorts: ${k} }\n`,
  (i, s, k) => `${i}- { name: "a${k}",\n${s}  ports: [1,\n${s}    2], x: y }\n`,
  (i, s, k) => `${i}- name: b${k}\n${s}action: deny\n${s}remote: [a, b]\n`,
  (i, _s, k) => `${i}- c${k} # a comment\n`,
  (i) => `# a comment at column 0\n${i}# one at the items' column\n`,
  (_i, s) => `${s}  # a deeper comment\n`,
  (i, s) => `${i}- |\n${s}line one\n${s}- not an item\n\n${s}end\n`,
  (i, s) => `${i}- key: >-\n${s}  folded\n${s}  text\n\n`,
  (i, s) => `${i}- |+\n${s}kept\n\n\n`,
  (i, s) => `${i}- "na:me": 'it''s'\n${s}'q k': "x\\ty"\n`,
  (i, s) => `${i}- "multi\n${s}line"\n`,
  (i, s) => `${i}- plain\n${s}continued\n`,
  () => `\n`,
  () => `   \n`,
  (i, s) => `${i}- - a\n${s}- b\n`,
  (i) => `${i}-\n`,
  (i, s, k) => `${i}-\n${s}x: ${k}\n`,
  (i) => `${i}- 0x1F\n${i}- ~\n${i}- true\n`,
  (i, s) => `${i}- ? a\n${s}: b\n`,
  (i, s) => `${i}- [a,\n${s}b]\n`,
  (i) => `${i}- [a,\n${i}]\n`,
  (i, _s, k) => `${i}- "#${k}": '-'\n`,
  (i) => `${i}- a:b\n`,
  (i) => `${i}-    spaced\n`,
  (i) => `${i}- |\n`,
  (i, s) => `${i}- k: >\n${s}x: |-\n`,
  (i, s) => `${i}- { "k": [ "a,b",\n${s}  'c' ], d: "e # f" } # g\n`,
  (i, s) => `${i}- - - deep\n${s}  - er\n${s}- x\n`,
];
const INVALID: Item[] = [
  (i) => `${i}- { a: 1\n`,
  (i) => `${i}- { a: 1, a: 2 }\n`,
  (i) => `${i}- "unterminated\n`,
  (i) => `${i}- a: b: c\n`,
  (i) => `\t${i}- tab\n`,
  (i) => `${i}- &anchor x\n`,
  (i) => `${i}- *anchor\n`,
  (i) => `${i}- !!str 1\n`,
  (i) => (i.length > 1 ? `${i.slice(1)}x: 1\n` : `${i}x: 1\n`),
  (i) => `${i}x: 1\n`,
  (i) => `${i}- [a,\n${i}b]\n`,
  (i) => `${i}- "a\n${i}b"\n`,
  (i) => `${i}- plain\n${i}continued\n`,
  () => `key: v\n`,
  () => `---\n`,
  (i) => `${i}- 'it's'\n`,
  (i) => `${i}- }\n`,
  (i, s) => `${i}- |\n${s}a\n${i.slice(1)} b\n`,
];

const prefix = fc.constantFrom(
  '',
  '# head\n',
  'version: 1\n',
  'mode: {a: 1,\n  b: 2}\n',
  'defaults:\n  x: |\n    text\n',
  '%YAML 1.2\n---\n',
  '---\n',
  '--- # c\n',
  '# c\n---\nversion: 1\n',
  '--- {a: 1}\n',
);
const key = fc.constantFrom(
  'rules:',
  '"rules":',
  "'rules' :  # c",
  'rules: # comment',
  '1:',
  '~:',
  'rules:   ',
);
const suffix = fc.constantFrom(
  '',
  'after: 1\n',
  '"1": [x]\n',
  '"~": [x, y]\n',
  '? [k]\n: v\n',
  'other:\n  - x\n',
  '# trailing\n',
  'version: 2\n',
  '...\n',
);

/** A document with a top-level sequence of items, and the sizes to slice it at. */
const documents = (invalidShare: number) =>
  fc
    .record({
      prefix,
      key,
      between: fc.constantFrom('', '# c\n', '\n'),
      indent: fc.constantFrom(0, 2, 4),
      items: fc.array(
        fc.oneof(
          { weight: 100 - invalidShare, arbitrary: item(true) },
          { weight: invalidShare, arbitrary: item(false) },
        ),
        {
          minLength: 1,
          maxLength: 12,
        },
      ),
      suffix,
      noFinalNewline: fc.boolean(),
      crlf: fc.boolean(),
      chars: fc.integer({ min: 1, max: 120 }),
    })
    .map((d) => {
      const ind = ' '.repeat(d.indent);
      const sub = ' '.repeat(d.indent + 2);
      let text = `${d.prefix}${d.key}\n${d.between}${d.items.map((f) => f(ind, sub)).join('')}${d.suffix}`;
      if (d.noFinalNewline) text = text.replace(/\n$/, '');
      if (d.crlf) text = text.replaceAll('\n', '\r\n');
      return { text, sizes: { chars: d.chars, around: 0 } };
    });

describe('YAML parsed a slice at a time', () => {
  test('gives the value, the positions and the errors of the whole-file parse (generated documents)', () => {
    let sliced = 0;
    let runs = 0;
    fc.assert(
      fc.property(documents(0), ({ text, sizes }) => {
        runs++;
        if (same(text, sizes)) sliced++;
      }),
      { numRuns: 400 },
    );
    // Most valid documents are sliced: the property is not vacuous.
    assert.ok(sliced > runs / 3, `only ${sliced} of ${runs} sliced`);
  });

  test('and with invalid or unsliceable items among them', () => {
    fc.assert(
      fc.property(documents(15), ({ text, sizes }) => {
        same(text, sizes);
      }),
      { numRuns: 400 },
    );
  });

  test('a big policy is sliced at the default sizes, with the value and positions of the whole parse', () => {
    const lines = ['version: 1', 'rules:'];
    for (let i = 0; i < 2000; i++)
      lines.push(`  - { name: r${i}, direction: outgoing, remote: 10.0.${i >> 8}.${i & 255}, action: deny }`);
    const text = `${lines.join('\n')}\nmode: enforce\n`;
    assert.ok(parseSliced(text) !== undefined, 'not sliced');
    const whole = parseYamlWhole(text, 'p.yaml');
    const doc = parseYaml(text, 'p.yaml');
    assert.deepStrictEqual(doc.value, whole.value);
    assert.deepStrictEqual(doc.locate(['rules', 1999, 'action']), { line: 2002, column: 69 });
    assert.deepStrictEqual(doc.locate(['rules', 1999, 'action']), whole.locate(['rules', 1999, 'action']));
    assert.deepStrictEqual(doc.locate(['mode']), { line: 2003, column: 7 });
  });

  test('an error in the middle of a big file names the line and column of the whole parse', () => {
    const lines = ['rules:'];
    for (let i = 0; i < 2000; i++) lines.push(i === 1234 ? '  - { name: r, bad' : `  - { name: r${i} }`);
    const text = `${lines.join('\n')}\n`;
    const err = outcome(() => parseYaml(text, 'p.yaml'));
    assert.deepStrictEqual(
      err,
      outcome(() => parseYamlWhole(text, 'p.yaml')),
    );
    assert.ok('error' in err && err.error.code === 'WARDEN_E_YAML_SYNTAX');
    // The item on line 1236 lacks its }: the parser finds out on the next line.
    assert.match(JSON.stringify(err.error.problems), /"line":1237,"column":3,/);
  });

  test("a big policy's validation errors name the lines, columns and rules of the whole parse", () => {
    const lines = ['version: 1', 'mode: enforce', 'rules:'];
    for (let i = 0; i < 2000; i++) {
      const protocol = i === 1500 ? 'tcpx' : 'tcp';
      const extra = i === 1800 ? ', prot: tcp' : '';
      lines.push(`  - { name: r${i}, direction: outgoing, protocol: ${protocol}, action: deny${extra} }`);
    }
    lines.push('# the end');
    const text = `${lines.join('\n')}\n`;
    assert.ok(parseSliced(text) !== undefined, 'not sliced');
    const sliced = outcome(() => ({
      value: parsePolicyText(text, { file: 'p.yaml' }),
      locate: () => undefined,
    }));
    const whole = outcome(() => {
      const doc = parseYamlWhole(text, 'p.yaml');
      return { value: validatePolicy(doc.value, { file: 'p.yaml' }, doc), locate: () => undefined };
    });
    assert.deepStrictEqual(sliced, whole);
    assert.ok('error' in sliced);
    const problems = sliced.error.problems as { line?: number; column?: number; rule?: string }[];
    assert.deepStrictEqual(
      problems.map((p) => [p.line, p.column, p.rule]),
      [
        [1504, 51, 'r1500'],
        [1804, 76, 'r1800'],
      ],
    );
  });

  test('anchors, aliases, tags, directives and several documents are parsed whole', () => {
    const body = Array.from({ length: 50 }, (_, i) => `  - r${i}\n`).join('');
    const sizes = { chars: 1, around: 0 };
    assert.ok(planSlices(`rules:\n${body}`, sizes) !== undefined);
    assert.ok(planSlices(`# c\n---\nrules:\n${body}`, sizes) !== undefined);
    for (const text of [
      `x: &a 1\nrules:\n${body}  - *a\n`,
      `rules:\n${body}  - !!str 1\n`,
      `%YAML 1.2\n---\nrules:\n${body}`,
      `rules:\n${body}---\nrules:\n${body}`,
      `\u{FEFF}rules:\n${body}`,
      `---\nrules:\n${body}---\nrules:\n${body}`,
      `x: 1\n---\nrules:\n${body}`,
    ])
      assert.equal(planSlices(text, sizes), undefined, text);
  });
});
