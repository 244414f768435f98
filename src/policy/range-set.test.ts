import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { mergeRanges } from './list-format.js';
import { V4RangeSet, V6RangeSet } from './range-set.js';

/** The reference: is v in one of the merged ranges [first0, last0, ...]? */
function naive<T extends number | bigint>(ranges: readonly T[], v: T): boolean {
  for (let i = 0; i < ranges.length; i += 2) if (ranges[i]! <= v && v <= ranges[i + 1]!) return true;
  return false;
}

describe('range sets', () => {
  test('IPv4: the same answer as a scan, at every range edge and elsewhere (property)', () => {
    // Narrow ranges (hosts, /24s: in the filter) and wide ones (/16 and more: the wide bitmap),
    // crowded into a few /8s so that buckets of the first-level table hold several ranges.
    const base = fc.constantFrom(0, 0x0a000000, 0x7f000000, 0xc0a80000, 0xff000000);
    const range = fc
      .tuple(
        base,
        fc.integer({ min: 0, max: 0xffffff }),
        fc.oneof(
          fc.constant(0),
          fc.constant(255),
          fc.integer({ min: 0, max: 5000 }),
          fc.integer({ min: 0, max: 2 ** 20 }),
        ),
      )
      .map(([b, o, w]): [number, number] => [b + o, Math.min(0xffffffff, b + o + w)]);
    fc.assert(
      fc.property(
        fc.array(range, { minLength: 1, maxLength: 400 }),
        fc.array(fc.integer({ min: 0, max: 0xffffffff })),
        (rs, probes) => {
          const merged = mergeRanges(rs);
          const set = new V4RangeSet(merged);
          const keys = [...probes];
          for (let i = 0; i < merged.length; i += 2) {
            const [first, last] = [merged[i]!, merged[i + 1]!];
            for (const v of [first - 1, first, first + 1, last - 1, last, last + 1])
              if (v >= 0 && v <= 0xffffffff) keys.push(v);
          }
          for (const v of keys) assert.equal(set.has(v), naive(merged, v), `address ${v}`);
        },
      ),
      { numRuns: 150 },
    );
  });

  test('IPv4: a list of 100,000 random networks answers as a scan would', () => {
    let seed = 1;
    const rnd = () => {
      seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
      return seed / 2 ** 32;
    };
    const rs: [number, number][] = [];
    for (let i = 0; i < 100_000; i++) {
      const a = Math.floor(rnd() * 2 ** 32);
      rs.push(rnd() < 0.5 ? [(a & 0xffffff00) >>> 0, (a | 0xff) >>> 0] : [a, a]);
    }
    const merged = mergeRanges(rs);
    const set = new V4RangeSet(merged);
    let hits = 0;
    for (let i = 0; i < 20_000; i++) {
      const v = i % 2 === 0 ? Math.floor(rnd() * 2 ** 32) : merged[(i * 7) % merged.length]!;
      const expected = naive(merged, v);
      if (expected) hits++;
      assert.equal(set.has(v), expected, `address ${v}`);
    }
    assert.ok(hits > 9000, `only ${hits} probes were in the list`);
    assert.ok(set.bytes < 4 * 2 ** 20, `${set.bytes} bytes`);
  });

  test('IPv6: the same answer as a scan, /48s shared by many ranges and wide ranges included (property)', () => {
    const prefix = fc.constantFrom(0n, 0x20010db8n << 96n, 0xfe80n << 112n, (1n << 128n) - (1n << 80n));
    const range = fc
      .tuple(
        prefix,
        fc.bigInt({ min: 0n, max: (1n << 80n) - 1n }),
        fc.oneof(
          fc.constant(0n),
          fc.constant((1n << 64n) - 1n),
          fc.bigInt({ min: 0n, max: 1n << 90n }),
          fc.bigInt({ min: 0n, max: 1000n }),
        ),
      )
      .map(([p, o, w]): [bigint, bigint] => {
        const first = p + o;
        const last = first + w > (1n << 128n) - 1n ? (1n << 128n) - 1n : first + w;
        return [first, last];
      });
    fc.assert(
      fc.property(fc.array(range, { minLength: 1, maxLength: 120 }), (rs) => {
        const merged = mergeRanges(rs);
        const set = new V6RangeSet(merged);
        for (let i = 0; i < merged.length; i += 2) {
          for (const v of [
            merged[i]! - 1n,
            merged[i]!,
            merged[i + 1]!,
            merged[i + 1]! + 1n,
            merged[i]! + 12345n,
          ])
            if (v >= 0n && v < 1n << 128n) assert.equal(set.has(v), naive(merged, v), `address ${v}`);
        }
      }),
      { numRuns: 150 },
    );
  });
});
