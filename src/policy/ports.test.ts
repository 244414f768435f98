import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { formatPortList, parsePortList, portListContains, portListText } from './ports.js';
import type { PortRange } from './rule.js';

function ok(input: unknown): PortRange[] {
  const r = parsePortList(input);
  if (!r.ok) assert.fail(`${JSON.stringify(input)} refused: ${r.message}`);
  return r.value;
}

function refused(input: unknown): string {
  const r = parsePortList(input);
  if (r.ok) assert.fail(`${JSON.stringify(input)} accepted as ${JSON.stringify(r.value)}`);
  return r.message;
}

const one = (p: number): PortRange => ({ from: p, to: p });

describe('parsePortList', () => {
  test('a number', () => {
    assert.deepEqual(ok(80), [one(80)]);
    assert.deepEqual(ok(1), [one(1)]);
    assert.deepEqual(ok(65535), [one(65535)]);
  });

  test('a string: one port, a list, a range', () => {
    assert.deepEqual(ok('443'), [one(443)]);
    assert.deepEqual(ok('80,443'), [one(80), one(443)]);
    assert.deepEqual(ok(' 80 , 443 '), [one(80), one(443)]);
    assert.deepEqual(ok('1000-2000'), [{ from: 1000, to: 2000 }]);
    assert.deepEqual(ok('1000 - 2000'), [{ from: 1000, to: 2000 }]);
    assert.deepEqual(ok('22,80,8000-8100'), [one(22), one(80), { from: 8000, to: 8100 }]);
    assert.deepEqual(ok('5-5'), [one(5)]);
    assert.deepEqual(ok('1-65535'), [{ from: 1, to: 65535 }]);
  });

  test('an array of numbers, ranges and comma lists, in the order written', () => {
    assert.deepEqual(ok([443, 80]), [one(443), one(80)]);
    assert.deepEqual(ok([80, '8000-8100']), [one(80), { from: 8000, to: 8100 }]);
    assert.deepEqual(ok(['53', '67,68', 123]), [one(53), one(67), one(68), one(123)]);
  });

  test('adjacent ranges are fine (they do not overlap)', () => {
    assert.deepEqual(ok('1-10,11-20'), [
      { from: 1, to: 10 },
      { from: 11, to: 20 },
    ]);
  });

  test('port 0 and ports above 65535 are refused', () => {
    assert.match(refused(0), /port 0 is out of range 1-65535/);
    assert.match(refused('0'), /port 0 is out of range/);
    assert.match(refused(70000), /port 70000 is out of range 1-65535/);
    assert.match(refused('65536'), /port 65536 is out of range/);
    assert.match(refused('0-80'), /port 0 is out of range/);
    assert.match(refused('80-70000'), /port 70000 is out of range/);
    assert.match(refused([80, 70000]), /port 70000/);
  });

  test('reversed ranges are refused, with the right order suggested', () => {
    const m = refused('2000-1000');
    assert.match(m, /reversed/);
    assert.match(m, /write 1000-2000/);
    assert.match(refused([22, '90-80']), /port range 90-80 is reversed; write 80-90/);
  });

  test('overlapping and duplicate entries are refused, with a merged suggestion', () => {
    const m = refused('1000-2000,1500-2500');
    assert.match(m, /1000-2000 and 1500-2500 overlap/);
    assert.match(m, /1000-2500/);
    assert.match(refused('80,80'), /80 and 80 overlap/);
    assert.match(refused([80, '70-90']), /70-90 and 80 overlap/);
    assert.match(refused('1-10,10-20'), /overlap/);
    assert.match(refused([443, '443']), /overlap/);
  });

  test('empty lists and empty entries are refused', () => {
    assert.match(refused([]), /empty/);
    assert.match(refused(''), /empty entry/);
    assert.match(refused('80,'), /empty entry/);
    assert.match(refused('80,,443'), /empty entry/);
    assert.match(refused(','), /empty entry/);
  });

  test('non-numbers are refused', () => {
    assert.match(refused('http'), /"http" is not a port number/);
    assert.match(refused('80-'), /not a port number/);
    assert.match(refused('-80'), /not a port number/);
    assert.match(refused('8o'), /not a port number/);
    assert.match(refused('0x50'), /not a port number/);
    assert.match(refused('1e3'), /not a port number/);
    assert.match(refused('80-90-100'), /not a port number/);
    assert.match(refused(80.5), /not a whole port number/);
    assert.match(refused(Number.NaN), /not a whole port number/);
    assert.match(refused(-1), /not a port number/);
    assert.match(refused(null), /expected a port number/);
    assert.match(refused(true), /expected a port number/);
    assert.match(refused({ from: 1, to: 2 }), /expected a port number/);
    assert.match(refused([[80]]), /expected a port number/);
    assert.match(refused([80, null]), /expected a port number/);
  });
});

describe('formatPortList', () => {
  test('one port is a number, one range a string, several a list', () => {
    assert.equal(formatPortList([one(443)]), 443);
    assert.equal(formatPortList([{ from: 8000, to: 8100 }]), '8000-8100');
    assert.deepEqual(formatPortList([one(80), one(443), { from: 8000, to: 8100 }]), [80, 443, '8000-8100']);
  });

  test('portListText writes one comma-separated string', () => {
    assert.equal(portListText([one(80), one(443), { from: 8000, to: 8100 }]), '80,443,8000-8100');
    assert.deepEqual(ok(portListText([one(80), { from: 8000, to: 8100 }])), [
      one(80),
      { from: 8000, to: 8100 },
    ]);
  });

  test('portListContains includes range ends', () => {
    const list = ok('22,8000-8100');
    for (const p of [22, 8000, 8050, 8100]) assert.ok(portListContains(list, p), String(p));
    for (const p of [21, 23, 7999, 8101]) assert.ok(!portListContains(list, p), String(p));
  });
});

/** Non-overlapping port ranges in random order: cut sorted distinct ports into ranges and singletons. */
const portRanges = fc
  .uniqueArray(fc.integer({ min: 1, max: 65535 }), { minLength: 1, maxLength: 24 })
  .chain((ports) => {
    const sorted = [...ports].sort((a, b) => a - b);
    return fc.tuple(
      fc.constant(sorted),
      fc.array(fc.boolean(), { minLength: sorted.length, maxLength: sorted.length }),
    );
  })
  .map(([sorted, pair]) => {
    const out: PortRange[] = [];
    for (let i = 0; i < sorted.length; i++) {
      const from = sorted[i]!;
      const next = sorted[i + 1];
      if (pair[i] && next !== undefined) {
        out.push({ from, to: next });
        i++;
      } else out.push(one(from));
    }
    return out;
  })
  .chain((ranges) => fc.shuffledSubarray(ranges, { minLength: ranges.length, maxLength: ranges.length }));

describe('port list round trip', () => {
  test('formatPortList output parses back to the same ranges', () => {
    fc.assert(
      fc.property(portRanges, (ranges) => {
        assert.deepEqual(ok(formatPortList(ranges)), ranges);
        assert.deepEqual(ok(portListText(ranges)), ranges);
      }),
      { numRuns: 1000 },
    );
  });

  test('a parsed list formats to a value that parses to the same list', () => {
    fc.assert(
      fc.property(portRanges, (ranges) => {
        const parsed = ok(portListText(ranges));
        assert.deepEqual(ok(formatPortList(parsed)), parsed);
      }),
      { numRuns: 500 },
    );
  });

  test('a list with any two overlapping entries is refused', () => {
    fc.assert(
      fc.property(portRanges, fc.nat(), fc.nat(), (ranges, i, j) => {
        const r = ranges[i % ranges.length]!;
        const port = r.from + (j % (r.to - r.from + 1));
        const msg = refused([...portListText(ranges).split(','), String(port)]);
        assert.match(msg, /overlap/);
      }),
      { numRuns: 500 },
    );
  });
});
