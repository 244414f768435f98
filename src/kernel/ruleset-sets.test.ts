import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { compilePolicy } from '../policy/compile.js';
import { parseListText } from '../policy/list-format.js';
import { parsePolicyText } from '../policy/parse.js';
import { validateSettings } from '../settings/index.js';
import { compileRuleset } from './ruleset.js';
import { type Element, type Field, ShapeLayers } from './ruleset-sets.js';

const FIELDS: Field[] = ['proto', 'addr4', 'rport'];

/** One rule's elements: the cross product of disjoint ranges per field, as elementsOf makes them. */
function ruleElements(protos: number[], addrs: [number, number][], ports: [number, number][]): Element[] {
  const out: Element[] = [];
  for (const p of protos)
    for (const a of addrs)
      for (const r of ports) out.push({ fields: FIELDS, lo: [p, a[0], r[0]], hi: [p, a[1], r[1]] });
  return out;
}

/** Disjoint sorted ranges from sorted distinct cut points. */
const disjoint = (max: number) =>
  fc.uniqueArray(fc.integer({ min: 0, max }), { minLength: 2, maxLength: 40 }).map((pts) => {
    const s = [...pts].sort((a, b) => a - b);
    const out: [number, number][] = [];
    for (let i = 0; i + 1 < s.length; i += 2) out.push([s[i]!, s[i + 1]!]);
    return out;
  });

describe('set layers', () => {
  test('addDisjoint places every element where add would (property)', () => {
    const rule = fc.record({
      protos: fc.subarray([6, 17], { minLength: 1 }),
      addrs: disjoint(5000),
      ports: disjoint(100),
    });
    fc.assert(
      fc.property(fc.array(rule, { minLength: 1, maxLength: 6 }), (rules) => {
        const one = new ShapeLayers();
        const batch = new ShapeLayers();
        for (const r of rules) {
          const elements = ruleElements(r.protos, r.addrs, r.ports);
          for (const e of elements) one.add(e);
          batch.addDisjoint(elements);
        }
        assert.deepEqual(batch.elements(), one.elements());
      }),
      { numRuns: 200 },
    );
  });

  test('a list of 50,000 networks compiles in seconds, not minutes (was pairwise)', () => {
    const lines: string[] = [];
    for (let i = 0; i < 50_000; i++) lines.push(`${11 + (i % 200)}.${(i >> 8) & 255}.${(i * 7) & 255}.0/24`);
    const nets = parseListText(lines.join('\n'), 'ips', { maxBytes: 1 << 24, maxEntries: 100_000 }).content;
    const p = parsePolicyText(
      'lists: { bad: { file: /x, format: ips } }\nrules:\n  - { name: bad, direction: both, protocol: tcp, remotePorts: "80,443", remote: "list:bad", action: deny }\n',
    );
    const settings = validateSettings({});
    const t0 = performance.now();
    const rs = compileRuleset({
      policy: compilePolicy(p, { settings, lists: new Map([['bad', nets]]) }),
      settings,
      now: 0,
    });
    const ms = performance.now() - t0;
    assert.ok(rs.stats.elements >= (nets.v4.length / 2) * 2 * 2, `${rs.stats.elements} elements`);
    assert.ok(ms < 20_000, `compiled in ${Math.round(ms)} ms`);
  });
});
