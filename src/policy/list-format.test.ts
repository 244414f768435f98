import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { formatIpv4, parseIp } from '../ip/index.js';
import { validateSettings } from '../settings/index.js';
import { compilePolicy } from './compile.js';
import { decide } from './evaluate.js';
import { exportFirewalld, exportOpenSnitch, exportUfw } from './export/index.js';
import { internalRules } from './internal-rules.js';
import { lint } from './lint.js';
import { ListParser, ListRefused, nameInList, parseListText } from './list-format.js';
import { parsePolicyText } from './parse.js';
import type { ConnectionFacts } from './rule.js';
import { serializePolicy } from './serialize.js';
import { outgoingTcp } from './testing/arbitraries.js';

const BOUNDS = { maxBytes: 1 << 20, maxEntries: 1000 };

describe('list parser', () => {
  test('reads a hosts file: names after an address, comments, the machine names skipped', () => {
    const text = [
      '# ad servers',
      '127.0.0.1 localhost',
      '::1 ip6-localhost ip6-loopback',
      '0.0.0.0 ads.example.com tracker.example.net  # trailing comment',
      '0.0.0.0\tADS.Example.ORG.',
      'not-an-address bad.example.com',
      'lonely.example.com',
      '0.0.0.0 under_score.example.com',
    ].join('\r\n');
    const r = parseListText(text, 'hosts', BOUNDS);
    assert.deepEqual([...r.content.names].sort(), [
      'ads.example.com',
      'ads.example.org',
      'tracker.example.net',
      'under_score.example.com',
    ]);
    assert.equal(r.badLines, 2);
    assert.deepEqual(
      r.problems.map((p) => p.line),
      [6, 7],
    );
    assert.match(r.problems[0]!.message, /not an IP address/);
    assert.equal(r.content.subdomains, false);
  });

  test('reads plain domains; a name matches itself and its subdomains, hosts names match exactly', () => {
    const r = parseListText('example.com\n*.wild.org\n.dot.net\nbad..name\n1.2.3.4\n', 'domains', BOUNDS);
    assert.deepEqual([...r.content.names].sort(), ['dot.net', 'example.com', 'wild.org']);
    assert.equal(r.badLines, 2);
    assert.ok(nameInList(r.content, ['a.b.example.com']));
    assert.ok(nameInList(r.content, ['example.com']));
    assert.ok(!nameInList(r.content, ['notexample.com', 'com']));
    const h = parseListText('0.0.0.0 example.com\n', 'hosts', BOUNDS);
    assert.ok(nameInList(h.content, ['example.com']));
    assert.ok(!nameInList(h.content, ['a.example.com']));
  });

  test('reads addresses, CIDRs and ranges of both families, merged', () => {
    const r = parseListText(
      '10.0.0.0/24\n10.0.1.0/24\n192.0.2.7\n2001:db8::/32\n198.51.100.1-198.51.100.9\n10.0.0.5/24\nnope\n',
      'ips',
      BOUNDS,
    );
    assert.deepEqual(r.content.v4.map(formatIpv4), [
      '10.0.0.0',
      '10.0.1.255',
      '192.0.2.7',
      '192.0.2.7',
      '198.51.100.1',
      '198.51.100.9',
    ]);
    assert.equal(r.content.v6.length, 2);
    assert.equal(r.badLines, 2);
    assert.match(r.problems[0]!.message, /did you mean 10\.0\.0\.0\/24/);
    assert.equal(r.problems[1]!.line, 7);
  });

  test('refuses a list over its entry or byte bound, naming the bound', () => {
    const many = Array.from({ length: 11 }, (_, i) => `h${i}.example.com`).join('\n');
    assert.throws(
      () => parseListText(many, 'domains', { maxBytes: 1 << 20, maxEntries: 10 }),
      (e: Error) =>
        e instanceof ListRefused && /more than its bound of 10 entries .* line 11/.test(e.message),
    );
    assert.throws(
      () => parseListText(many, 'domains', { maxBytes: 50, maxEntries: 100 }),
      (e: Error) => e instanceof ListRefused && /larger than its bound of 50 bytes/.test(e.message),
    );
  });

  test("a bad line's problem shows a server's control characters as escapes, never raw", () => {
    const r = parseListText('good.example\n\u001b[2Jevil\u009b.example\u202e\n', 'domains', BOUNDS);
    assert.equal(r.badLines, 1);
    const message = r.problems[0]!.message;
    // biome-ignore lint/suspicious/noControlCharactersInRegex: finding control characters is the point.
    assert.doesNotMatch(message, /[\u0000-\u001f\u007f-\u009f\u202e]/);
    assert.match(message, /\\x1b\[2Jevil\\u009b\.example\\u202e/);
  });

  test('a line that never ends is one bad line, not a held buffer', () => {
    const p = new ListParser('domains', { maxBytes: 1 << 20, maxEntries: 100 });
    p.push('good.example.com\n');
    for (let i = 0; i < 10; i++) p.push('x'.repeat(1000));
    p.push('\nafter.example.com\n');
    const r = p.end();
    assert.deepEqual([...r.content.names], ['good.example.com', 'after.example.com']);
    assert.equal(r.badLines, 1);
    assert.equal(r.problems[0]!.line, 2);
  });

  test('the same text split anywhere gives the same list (property)', () => {
    const line = fc.oneof(
      fc.constantFrom(
        '0.0.0.0 a.example.com',
        '# c',
        '',
        '10.0.0.0/8',
        'b.example.org',
        '::1 x.y',
        'bad line',
      ),
      fc.string({ maxLength: 30 }),
    );
    fc.assert(
      fc.property(
        fc.array(line, { maxLength: 40 }),
        fc.constantFrom('hosts', 'domains', 'ips'),
        fc.array(fc.nat(), { maxLength: 6 }),
        (lines, format, cuts) => {
          const text = lines.join('\n');
          const whole = parseListText(text, format, BOUNDS);
          const p = new ListParser(format, BOUNDS);
          const at = [...new Set(cuts.map((c) => (text.length === 0 ? 0 : c % text.length)))].sort(
            (a, b) => a - b,
          );
          let from = 0;
          for (const c of at) {
            p.push(text.slice(from, c));
            from = c;
          }
          p.push(text.slice(from));
          const split = p.end();
          assert.deepEqual([...split.content.names], [...whole.content.names]);
          assert.deepEqual(split.content.v4, whole.content.v4);
          assert.deepEqual(split.content.v6, whole.content.v6);
          assert.equal(split.badLines, whole.badLines);
        },
      ),
      { numRuns: 300 },
    );
  });

  test('every address of a listed range is in the list, and only those (property)', () => {
    fc.assert(
      fc.property(
        fc.array(fc.tuple(fc.integer({ min: 0, max: 0xffffffff }), fc.integer({ min: 8, max: 32 })), {
          minLength: 1,
          maxLength: 30,
        }),
        fc.array(fc.integer({ min: 0, max: 0xffffffff }), { minLength: 1, maxLength: 30 }),
        (cidrs, probes) => {
          const nets = cidrs.map(([a, bits]) => {
            const size = 2 ** (32 - bits);
            const first = Math.floor(a / size) * size;
            return { first, last: first + size - 1, text: `${formatIpv4(first)}/${bits}` };
          });
          const r = parseListText(nets.map((n) => n.text).join('\n'), 'ips', BOUNDS);
          assert.equal(r.badLines, 0);
          const p = parsePolicyText(
            'lists: { nets: { file: /l, format: ips } }\nrules: [{ name: n, direction: outgoing, remote: "list:nets", action: deny }]',
          );
          const cp = compilePolicy(p, { lists: new Map([['nets', r.content]]) });
          for (const probe of [...probes, ...nets.map((n) => n.first), ...nets.map((n) => n.last)]) {
            const inside = nets.some((n) => n.first <= probe && probe <= n.last);
            const d = decide(cp, connection(formatIpv4(probe), []));
            assert.equal(d.ruleName === 'n', inside, formatIpv4(probe));
          }
        },
      ),
      { numRuns: 200 },
    );
  });
});

function connection(remote: string, hosts: string[]): ConnectionFacts {
  return outgoingTcp({ remoteAddress: parseIp(remote), remoteHosts: hosts });
}

describe('lists in the policy', () => {
  const text = `
lists:
  ads:
    url: https://lists.example.org/hosts.txt
    format: hosts
    refresh: 6h
  nets: { file: /etc/warden/lists/nets.txt, format: ips, maxEntries: 5000 }
addressGroups:
  blocked: [list:nets, 203.0.113.9]
rules:
  - { name: no ads, direction: outgoing, remote: "list:ads", action: deny }
  - { name: no nets, direction: outgoing, remote: ["@blocked", "list:ads"], action: reject }
`;

  test('parse, serialize and parse again give the same policy', () => {
    const p = parsePolicyText(text);
    assert.deepEqual(p.lists?.ads, {
      url: 'https://lists.example.org/hosts.txt',
      refreshSeconds: 21600,
      format: 'hosts',
      maxBytes: 64 << 20,
      maxEntries: 2_000_000,
    });
    assert.deepEqual(parsePolicyText(serializePolicy(p)), p);
  });

  test('an undefined list and a bad definition are located errors', () => {
    const bad = `lists:
  ads: { url: http://lists.example.org/x, format: hosts, refresh: 1m }
  both: { url: https://a.example/x, file: /x, format: ips }
  fmt: { file: relative.txt, format: adblock }
addressGroups:
  g: [list:nope]
rules:
  - { name: r, direction: outgoing, remote: [1.2.3.4, "list:missing"], action: deny }
`;
    assert.throws(
      () => parsePolicyText(bad, { file: 'p.yaml' }),
      (e: Error & { problems?: { line?: number; message: string; path?: readonly unknown[] }[] }) => {
        const ms = (e.problems ?? []).map((p) => `${p.line}: ${p.message}`).join('\n');
        assert.match(ms, /2: .*is not https/);
        assert.match(ms, /2: refresh must be between 5m and 30d/);
        assert.match(ms, /3: a list has either file/);
        assert.match(ms, /4: "adblock" is not allowed; must be one of "hosts", "domains", "ips"/);
        return true;
      },
    );
    const undefinedLists = `lists:
  ads: { file: /etc/warden/lists/ads.txt, format: hosts }
addressGroups:
  g: [list:nope]
rules:
  - { name: r, direction: outgoing, remote: [1.2.3.4, "list:missing"], action: deny }
`;
    assert.throws(
      () => parsePolicyText(undefinedLists, { file: 'p.yaml' }),
      (e: Error & { problems?: { line?: number; message: string }[] }) => {
        const ms = (e.problems ?? []).map((p) => `${p.line}: ${p.message}`).join('\n');
        assert.match(ms, /4: list "nope" is not defined \(known lists: ads\)/);
        assert.match(ms, /6: list "missing" is not defined/);
        return true;
      },
    );
  });

  test('a domain list matches the names learned for the remote; an IP list its addresses', () => {
    const p = parsePolicyText(text);
    const lists = new Map([
      ['ads', parseListText('0.0.0.0 ads.example.com\n', 'hosts', BOUNDS).content],
      ['nets', parseListText('198.51.100.0/24\n', 'ips', BOUNDS).content],
    ]);
    const cp = compilePolicy(p, { lists });
    assert.equal(decide(cp, connection('192.0.2.1', ['ads.example.com'])).ruleName, 'no ads');
    assert.equal(decide(cp, connection('192.0.2.1', ['x.ads.example.com'])).ruleName, 'default outgoing');
    assert.equal(decide(cp, connection('198.51.100.77', [])).ruleName, 'no nets');
    assert.equal(decide(cp, connection('203.0.113.9', [])).ruleName, 'no nets');
    // Not loaded yet: the list holds nothing.
    assert.equal(decide(compilePolicy(p), connection('198.51.100.77', [])).ruleName, 'default outgoing');
  });

  test('lint reports empty, unreachable and overlapping lists', () => {
    const p = parsePolicyText(text);
    const cp = compilePolicy(p);
    const ads = parseListText('0.0.0.0 a.example.com b.example.com\n', 'hosts', BOUNDS).content;
    const nets = parseListText('', 'ips', BOUNDS).content;
    const kinds = (facts: Parameters<typeof lint>[1]['lists']) =>
      lint(cp, { now: 0, lists: facts })
        .filter((f) => f.kind.startsWith('list-'))
        .map((f) => `${f.kind} ${f.severity}: ${f.message}`);
    assert.deepEqual(kinds(undefined), []);
    const found = kinds(
      new Map([
        ['ads', { error: 'no answer within 30000 ms' }],
        ['nets', { content: nets }],
      ]),
    );
    assert.equal(found.length, 2);
    assert.match(found[0]!, /^list-unreachable error: list "ads" has never been loaded \(no answer/);
    assert.match(found[1]!, /^list-empty warning: list "nets" is empty/);
    const twin = parseListText('0.0.0.0 b.example.com\n', 'hosts', BOUNDS).content;
    const overlap = kinds(
      new Map([
        ['ads', { content: ads, error: 'HTTP 500' }],
        ['nets', { content: twin }],
      ]),
    );
    assert.match(
      overlap.join('\n'),
      /list-unreachable warning: list "ads" could not be refreshed \(HTTP 500\); its last good copy \(2 entries\)/,
    );
    assert.match(overlap.join('\n'), /list-overlap warning: lists "ads" and "nets" share 1 entry/);
  });

  test('the engine may fetch each URL list: an internal rule to its server (or the proxy)', () => {
    const p = parsePolicyText(text);
    const host = {
      executables: { engine: '/e', console: '/c', assistant: '/a' },
      environment: {},
      etcEnvironment: '',
    };
    const direct = internalRules(validateSettings({ proxy: { mode: 'direct' } }), host, p);
    const rule = direct.find((r) => r.id === 'internal.list.ads');
    assert.equal(rule?.application, '/e');
    assert.deepEqual(rule?.remote, [{ kind: 'host', name: 'lists.example.org' }]);
    assert.deepEqual(rule?.remotePorts, [{ from: 443, to: 443 }]);
    assert.equal(
      direct.filter((r) => r.id.startsWith('internal.list.')).length,
      1,
      'file lists need no rule',
    );
    const proxied = internalRules(
      validateSettings({ proxy: { mode: 'manual', url: 'http://proxy.lan:3128' } }),
      host,
      p,
    ).find((r) => r.id === 'internal.list.ads');
    assert.deepEqual(proxied?.remote, [{ kind: 'host', name: 'proxy.lan' }]);
  });

  test('the engine may fetch each URL rule subscription too: a deny-all policy does not cut it off', () => {
    const p = parsePolicyText(
      'defaults: { outgoing: { action: deny } }\ninclude:\n  - { name: corp, url: "https://rules.example.com:8443/base.yaml" }\n  - { name: local, file: /etc/warden/lab.yaml }\n',
    );
    const host = {
      executables: { engine: '/e', console: '/c', assistant: '/a' },
      environment: {},
      etcEnvironment: '',
    };
    const rules = internalRules(validateSettings({ proxy: { mode: 'direct' } }), host, p);
    const corp = rules.find((r) => r.id === 'internal.include.corp');
    assert.equal(corp?.application, '/e');
    assert.deepEqual(corp?.remote, [{ kind: 'host', name: 'rules.example.com' }]);
    assert.deepEqual(corp?.remotePorts, [{ from: 8443, to: 8443 }]);
    assert.equal(rules.filter((r) => r.id.startsWith('internal.include.')).length, 1, 'a file needs no rule');
    // The engine's fetch is decided by it, before the policy's deny default.
    const cp = compilePolicy(p, { internalRules: rules });
    const d = decide(cp, {
      direction: 'outgoing',
      protocol: 'tcp',
      application: '/e',
      uid: 0,
      user: 'root',
      localAddress: null,
      localPort: null,
      remoteAddress: parseIp('198.51.100.4'),
      remotePort: 8443,
      remoteHosts: ['rules.example.com'],
      now: 0,
    });
    assert.equal(d.ruleName, 'internal: rule subscription corp');
    assert.equal(d.verdict, 'allow');
  });

  test('exporters refuse rules with lists (else a deny list would export as deny everything)', () => {
    const p = parsePolicyText(text);
    const incoming = parsePolicyText(text.replace(/direction: outgoing/g, 'direction: incoming'));
    for (const r of [exportUfw(p), exportOpenSnitch(p, '2026-01-01T00:00:00Z'), exportFirewalld(incoming)]) {
      // ufw and firewalld refuse any list; OpenSnitch these two (a URL list, an ips list), saying why.
      const skipped = r.skipped
        .filter((s) => /cannot refer to Warden's lists|list:(ads|nets) .*OpenSnitch/.test(s.message))
        .map((s) => s.rule);
      assert.deepEqual(skipped, ['no ads', 'no nets']);
    }
  });
});
