import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { formatIpv4, formatIpv6, type IpRange } from '../ip/index.js';
import { formatAddressSpec, parseAddressSpec } from './address-spec.js';
import type { AddressSpec } from './rule.js';

function ok(text: string): AddressSpec {
  const r = parseAddressSpec(text);
  if (!r.ok) assert.fail(`${JSON.stringify(text)} refused: ${r.message}`);
  return r.value;
}

function refused(text: string): string {
  const r = parseAddressSpec(text);
  if (r.ok) assert.fail(`${JSON.stringify(text)} accepted as ${formatAddressSpec(r.value)}`);
  return r.message;
}

const v4 = (first: number, last = first): AddressSpec => ({ kind: 'ip', range: { version: 4, first, last } });
const v6 = (first: bigint, last = first): AddressSpec => ({ kind: 'ip', range: { version: 6, first, last } });

describe('parseAddressSpec', () => {
  test('localhost, in any case', () => {
    assert.deepEqual(ok('localhost'), { kind: 'localhost' });
    assert.deepEqual(ok('LocalHost'), { kind: 'localhost' });
    assert.deepEqual(ok('  localhost '), { kind: 'localhost' });
  });

  test('single IP addresses', () => {
    assert.deepEqual(ok('10.0.0.1'), v4(0x0a000001));
    assert.deepEqual(ok(' 10.0.0.1 '), v4(0x0a000001));
    assert.deepEqual(ok('::1'), v6(1n));
    assert.deepEqual(ok('2001:DB8::1'), v6((0x2001n << 112n) | (0xdb8n << 96n) | 1n));
    assert.deepEqual(ok('::ffff:192.0.2.1'), v4(0xc0000201));
  });

  test('CIDR networks', () => {
    assert.deepEqual(ok('10.0.0.0/8'), v4(0x0a000000, 0x0affffff));
    assert.deepEqual(ok('0.0.0.0/0'), v4(0, 0xffffffff));
    assert.deepEqual(ok('fe80::/10'), v6(0xfe80n << 112n, (0xfe80n << 112n) | ((1n << 118n) - 1n)));
  });

  test('first-last ranges', () => {
    assert.deepEqual(ok('10.0.0.1-10.0.0.20'), v4(0x0a000001, 0x0a000014));
    assert.deepEqual(ok('10.0.0.1 - 10.0.0.20'), v4(0x0a000001, 0x0a000014));
    assert.deepEqual(ok('::1-::5'), v6(1n, 5n));
  });

  test('host names, lower-cased, with *. suffixes', () => {
    assert.deepEqual(ok('example.com'), { kind: 'host', name: 'example.com' });
    assert.deepEqual(ok('API.Example.COM.'), { kind: 'host', name: 'api.example.com' });
    assert.deepEqual(ok('*.example.com'), { kind: 'host', name: '*.example.com' });
    assert.deepEqual(ok('my-host'), { kind: 'host', name: 'my-host' });
    assert.deepEqual(ok('host-1.internal'), { kind: 'host', name: 'host-1.internal' });
  });

  test('host names with a dash after digits are host names, not ranges', () => {
    assert.deepEqual(ok('1-2-3-4.sslip.io'), { kind: 'host', name: '1-2-3-4.sslip.io' });
    assert.deepEqual(ok('10-0-0-1.nip.io'), { kind: 'host', name: '10-0-0-1.nip.io' });
    assert.deepEqual(ok('1-2.com'), { kind: 'host', name: '1-2.com' });
    assert.deepEqual(ok('8.88-mv.example'), { kind: 'host', name: '8.88-mv.example' });
    // With an address (or nothing a host name could be) on both sides, it stays a range and its error.
    assert.match(refused('10.0.0.300-10.0.0.5'), /not a valid address range/);
    assert.match(refused('10.0.0.1-'), /not a valid address range/);
    assert.match(refused('1-2'), /not a valid address range/);
    assert.match(refused('::1-fe80::g'), /not a valid address range/);
  });

  test('@group references', () => {
    assert.deepEqual(ok('@lan'), { kind: 'group', name: 'lan' });
    assert.deepEqual(ok('@Office_Net-2.v4'), { kind: 'group', name: 'Office_Net-2.v4' });
    assert.match(refused('@'), /not a valid group reference/);
    assert.match(refused('@bad name'), /not a valid group reference/);
    assert.match(refused('@-lan'), /not a valid group reference/);
    assert.match(refused(`@${'g'.repeat(65)}`), /not a valid group reference/);
  });

  test('bad inputs say what is wrong', () => {
    assert.match(refused(''), /empty/);
    assert.match(refused('   '), /empty/);
    assert.match(refused('10.0.0.300'), /"10\.0\.0\.300" is not a valid IP address/);
    assert.match(refused('010.0.0.1'), /not a valid IP address/);
    assert.match(refused('1.2.3'), /not a valid IP address/);
    assert.match(refused('10.0.0.0/33'), /prefix length 33 is out of range/);
    assert.match(refused('10.0.0.1/24'), /did you mean 10\.0\.0\.0\/24\?/);
    assert.match(refused('example.com/24'), /not an IP address/);
    assert.match(refused('bad_host!'), /not a valid host name/);
    assert.match(refused('a..b'), /empty label/);
    assert.match(refused('10.0.0.20-10.0.0.1'), /reversed/);
    assert.match(refused('10.0.0.1-::1'), /mixes IPv4 and IPv6/);
    assert.match(refused('10.0.0.1-10.0.0.300'), /not a valid address range/);
    assert.match(refused(':::1'), /not a valid IP address/);
    assert.match(refused('fe80::1%eth0'), /not a valid IP address/);
    refused('any host');
    refused('*');
  });
});

describe('formatAddressSpec', () => {
  test('canonical forms', () => {
    assert.equal(formatAddressSpec({ kind: 'localhost' }), 'localhost');
    assert.equal(formatAddressSpec(ok('10.0.0.1')), '10.0.0.1');
    assert.equal(formatAddressSpec(ok('10.0.0.0/8')), '10.0.0.0/8');
    assert.equal(formatAddressSpec(ok('10.0.0.0-10.0.0.255')), '10.0.0.0/24');
    assert.equal(formatAddressSpec(ok('10.0.0.1-10.0.0.20')), '10.0.0.1-10.0.0.20');
    assert.equal(formatAddressSpec(ok('2001:0DB8:0:0::1')), '2001:db8::1');
    assert.equal(formatAddressSpec(ok('::ffff:1.2.3.4')), '1.2.3.4');
    assert.equal(formatAddressSpec(ok('*.Example.com')), '*.example.com');
    assert.equal(formatAddressSpec(ok('@lan')), '@lan');
  });
});

const isMapped = (v: bigint): boolean => v >> 32n === 0xffffn;
const v4Value = fc.integer({ min: 0, max: 0xffffffff });
const v6Value = fc.bigInt({ min: 0n, max: (1n << 128n) - 1n }).filter((v) => !isMapped(v));

const ipRange: fc.Arbitrary<IpRange> = fc.oneof(
  fc
    .tuple(v4Value, v4Value)
    .map(([a, b]): IpRange => ({ version: 4, first: Math.min(a, b), last: Math.max(a, b) })),
  fc.tuple(v4Value, fc.integer({ min: 0, max: 32 })).map(([v, bits]): IpRange => {
    const size = 2 ** (32 - bits);
    const first = Math.floor(v / size) * size;
    return { version: 4, first, last: first + size - 1 };
  }),
  fc.tuple(v6Value, v6Value).map(([a, b]): IpRange => {
    const [first, last] = a < b ? [a, b] : [b, a];
    return { version: 6, first, last };
  }),
  fc.tuple(v6Value, fc.integer({ min: 0, max: 128 })).map(([v, bits]): IpRange => {
    const mask = (1n << BigInt(128 - bits)) - 1n;
    const first = (v | mask) ^ mask;
    return { version: 6, first, last: first | mask };
  }),
);

const spec: fc.Arbitrary<AddressSpec> = fc.oneof(
  fc.constant<AddressSpec>({ kind: 'localhost' }),
  ipRange.map((range): AddressSpec => ({ kind: 'ip', range })),
  fc.domain().map((d): AddressSpec => ({ kind: 'host', name: d.toLowerCase() })),
  fc.domain().map((d): AddressSpec => ({ kind: 'host', name: `*.${d.toLowerCase()}` })),
  fc
    .stringMatching(/^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,63}$/)
    .map((name): AddressSpec => ({ kind: 'group', name })),
);

describe('address spec round trip', () => {
  test('parse(format(spec)) gives the spec back', () => {
    fc.assert(
      fc.property(spec, (s) => {
        assert.deepEqual(ok(formatAddressSpec(s)), s);
      }),
      { numRuns: 3000 },
    );
  });

  test('format(parse(text)) is a fixed point for generated addresses', () => {
    const text = fc.oneof(
      fc.ipV4(),
      fc.ipV6(),
      fc.tuple(fc.ipV4(), fc.integer({ min: 0, max: 32 })).map(([a, b]) => `${a}/${b}`),
      fc
        .tuple(v4Value, v4Value)
        .map(([a, b]) => `${formatIpv4(Math.min(a, b))}-${formatIpv4(Math.max(a, b))}`),
      fc.tuple(v6Value, v6Value).map(([a, b]) => {
        const [first, last] = a < b ? [a, b] : [b, a];
        return `${formatIpv6(first)}-${formatIpv6(last)}`;
      }),
      fc.domain(),
    );
    fc.assert(
      fc.property(text, (t) => {
        const r = parseAddressSpec(t);
        if (!r.ok) return; // e.g. a CIDR with host bits set
        const once = formatAddressSpec(r.value);
        assert.deepEqual(ok(once), r.value);
        assert.equal(formatAddressSpec(ok(once)), once);
      }),
      { numRuns: 3000 },
    );
  });
});
