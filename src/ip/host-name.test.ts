import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { parseHostName } from './host-name.js';

function accepted(text: string): string {
  const r = parseHostName(text);
  if (!r.ok) assert.fail(`${JSON.stringify(text)} refused: ${r.message}`);
  return r.value;
}

function refused(text: string): string {
  const r = parseHostName(text);
  if (r.ok) assert.fail(`${JSON.stringify(text)} accepted as ${r.value}`);
  return r.message;
}

describe('parseHostName', () => {
  test('accepts RFC 1123 names', () => {
    for (const name of [
      'localhost',
      'example.com',
      'www.example.com',
      'a.b.c.d.e.f',
      'x',
      'my-host',
      'host-1.internal',
      '3com.com',
      '1-2-3-4.sslip.io',
      'xn--bcher-kva.example',
      'a1.b2',
    ]) {
      assert.equal(accepted(name), name);
    }
  });

  test('lower-cases and drops one trailing dot', () => {
    assert.equal(accepted('WWW.Example.COM'), 'www.example.com');
    assert.equal(accepted('example.com.'), 'example.com');
    assert.equal(accepted('*.Example.com.'), '*.example.com');
  });

  test('accepts *. wildcards and keeps the prefix', () => {
    assert.equal(accepted('*.example.com'), '*.example.com');
    assert.equal(accepted('*.com'), '*.com');
    assert.equal(accepted('*.a.b.c'), '*.a.b.c');
  });

  test('refuses wildcards anywhere but a leading *. label', () => {
    for (const s of [
      '*',
      '*.',
      '*example.com',
      'a.*.example.com',
      'www.*',
      '**.example.com',
      '*.*.example.com',
    ]) {
      refused(s);
    }
  });

  test('refuses empty names and empty labels', () => {
    assert.match(refused(''), /empty/);
    assert.match(refused('.'), /empty/);
    assert.match(refused('a..b'), /empty label/);
    assert.match(refused('.example.com'), /empty label/);
    assert.match(refused('example.com..'), /empty label/);
  });

  test('refuses bad labels and names the label', () => {
    const bad = refused('bad_host!');
    assert.match(bad, /label "bad_host!"/);
    assert.match(bad, /letters, digits and inner hyphens/);
    assert.match(refused('-leading.example.com'), /label "-leading"/);
    assert.match(refused('trailing-.example.com'), /label "trailing-"/);
    assert.match(refused('under_score.com'), /label "under_score"/);
    assert.match(refused('sp ace.com'), /label "sp ace"/);
    assert.match(refused('exa mple'), /label "exa mple"/);
    refused('host:80');
    refused('host/path');
    refused('10.0.0.0/8');
    refused('::1');
    refused('bücher.example');
  });

  test('labels may have 63 characters, not 64', () => {
    const l63 = 'a'.repeat(63);
    assert.equal(accepted(`${l63}.com`), `${l63}.com`);
    assert.match(refused(`${'a'.repeat(64)}.com`), /longer than 63 characters/);
  });

  test('names may have 253 characters, not 254', () => {
    const label = 'a'.repeat(63);
    const name253 = `${label}.${label}.${label}.${'b'.repeat(61)}`;
    assert.equal(name253.length, 253);
    assert.equal(accepted(name253), name253);
    assert.equal(accepted(`${name253}.`), name253);
    assert.equal(accepted(`*.${name253}`), `*.${name253}`);
    const name254 = `${label}.${label}.${label}.${'b'.repeat(62)}`;
    assert.equal(name254.length, 254);
    assert.match(refused(name254), /longer than 253 characters/);
  });

  test('refuses names that look like IPv4 addresses', () => {
    assert.match(refused('1.2.3.4'), /looks like an IPv4 address/);
    assert.match(refused('10.0.0.300'), /looks like an IPv4 address/);
    assert.match(refused('1.2.3'), /looks like an IPv4 address/);
    assert.match(refused('127'), /looks like an IPv4 address/);
    assert.match(refused('*.1.2.3'), /looks like an IPv4 address/);
  });

  test('accepts the domains fast-check generates, lower-cased', () => {
    fc.assert(
      fc.property(fc.domain(), (d) => {
        assert.equal(accepted(d), d.toLowerCase());
        assert.equal(accepted(`*.${d}`), `*.${d.toLowerCase()}`);
        assert.equal(accepted(d.toUpperCase()), d.toLowerCase());
      }),
      { numRuns: 1000 },
    );
  });

  test('accepted names are idempotent: parsing the result gives the result', () => {
    fc.assert(
      fc.property(fc.string({ unit: fc.constantFrom(...'abcXYZ019-.*_'), maxLength: 30 }), (s) => {
        const r = parseHostName(s);
        if (!r.ok) return;
        assert.equal(accepted(r.value), r.value);
        assert.ok(!r.value.endsWith('.'));
        assert.equal(r.value, r.value.toLowerCase());
      }),
      { numRuns: 2000 },
    );
  });
});
