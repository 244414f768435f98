import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { v6SegmentAt, v6Segments } from './v6-segments.js';

/** The last start at or below the key, by a plain scan. */
function reference(starts: readonly bigint[], key: bigint): number {
  let at = -1;
  for (let i = 0; i < starts.length; i++) if (starts[i]! <= key) at = i;
  return at;
}

// Addresses that round to the same number: neighbours in the low bits of a 128-bit value.
const base = 0x2001_0db8_0000_0000_0000_0000_0000_0000n;
const address = fc.oneof(
  fc.bigInt({ min: 0n, max: (1n << 128n) - 1n }),
  fc.bigInt({ min: 0n, max: 1n << 20n }).map((d) => base + d),
  fc.bigInt({ min: 0n, max: 1n << 80n }).map((d) => base + d),
);

describe('IPv6 segments', () => {
  test('find the segment a scan finds, also among starts that round to one number (property)', () => {
    fc.assert(
      fc.property(
        fc.uniqueArray(address, { minLength: 0, maxLength: 40 }),
        fc.array(address),
        (raw, keys) => {
          const starts = [...raw].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
          const seg = v6Segments({ starts, children: starts.map((_, i) => i) })!;
          for (const key of [
            ...keys,
            ...starts,
            ...starts.map((s) => s - 1n),
            ...starts.map((s) => s + 1n),
          ]) {
            const want = reference(starts, key);
            assert.equal(v6SegmentAt(seg, key), want < 0 ? null : want, `key ${key.toString(16)}`);
          }
        },
      ),
      { numRuns: 300 },
    );
  });
});
