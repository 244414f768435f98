import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { fixtures } from '../../../test/support/import-fixtures.js';
import { exportOpenSnitch } from '../export/index.js';
import { importPolicy, type SourceFile } from './index.js';
import { connection, verdict } from './testing.js';

const rule = (name: string, action: string, operator: object, extra: object = {}): SourceFile => ({
  name: `${name}.json`,
  text: JSON.stringify({
    name,
    enabled: true,
    precedence: false,
    action,
    duration: 'always',
    operator,
    ...extra,
  }),
});
const simple = (operand: string, data: string, type = 'simple') => ({
  type,
  operand,
  data,
  sensitive: false,
});

describe('OpenSnitch import', () => {
  const { policy, problems, notes } = importPolicy('opensnitch', fixtures('opensnitch'));

  test('the fixture rules map to Warden rules, deny-first then allows, in name order', () => {
    assert.deepEqual(
      policy.rules.map((r) => [r.name, r.action, r.direction]),
      [
        ['000-allow-system-dns', 'allow', 'outgoing'],
        ['deny-always-lists-ads', 'deny', 'outgoing'],
        ['deny-always-regexp-doubleclick', 'deny', 'outgoing'],
        ['reject-curl-tcp-lan', 'reject', 'outgoing'],
        ['allow-30m-wget', 'allow', 'outgoing'],
        ['allow-always-python-command', 'allow', 'outgoing'],
        ['allow-always-simple-firefox', 'allow', 'outgoing'],
      ],
    );
    // process.command without "sensitive": OpenSnitch compares in lower case, so letters match either case.
    assert.equal(
      policy.rules[5]!.arguments,
      '[pP][yY][tT][hH][oO][nN]3 *[mM][aA][nN][aA][gG][eE].[pP][yY] [rR][uU][nN][sS][eE][rR][vV][eE][rR]',
    );
    const reject = policy.rules[3]!;
    assert.equal(reject.application, '/usr/bin/curl');
    assert.equal(reject.user, 1000);
    assert.equal(reject.protocol, 'tcp');
    assert.equal(policy.defaults.outgoing.action, 'deny', 'DefaultAction of default-config.json');
    assert.equal(policy.rules[4]!.expires, '2026-03-04T12:30:00.000Z');
  });

  test('a lists.domains operand becomes a list of its directory (format hosts) used by the rule', () => {
    const ads = policy.rules[1]!;
    assert.deepEqual(ads.remote, [{ kind: 'list', name: 'ads' }]);
    assert.equal(ads.enabled, false);
    assert.deepEqual(policy.lists?.ads, {
      file: '/etc/opensnitchd/blocklists/ads',
      format: 'hosts',
      maxBytes: 64 << 20,
      maxEntries: 2_000_000,
    });
    assert.ok(notes.some((n) => /became list "ads" \(format hosts\)/.test(n.message)));
    const files = [
      rule('nets', 'deny', { type: 'lists', operand: 'lists.nets', data: '/etc/opensnitchd/nets/' }),
      rule('re', 'deny', { type: 'lists', operand: 'lists.domains_regexp', data: '/etc/opensnitchd/re/' }),
    ];
    const { policy: p, problems: probs } = importPolicy('opensnitch', files);
    assert.deepEqual(p.lists?.nets?.format, 'ips');
    assert.equal(probs.length, 1);
    assert.match(probs[0]!.message, /lists of regular expressions have no Warden counterpart/);
    // Back to OpenSnitch: the hosts list is its lists.domains directory again (the ips one is refused:
    // Warden's ips format mixes what OpenSnitch keeps in lists.ips and lists.nets).
    const back = exportOpenSnitch(policy, '2026-12-06T12:00:00Z');
    const ops = back.files.map(
      (f) => JSON.parse(f.text).operator as { type: string; operand: string; data: string },
    );
    assert.ok(
      ops.some(
        (o) =>
          o.type === 'lists' && o.operand === 'lists.domains' && o.data === '/etc/opensnitchd/blocklists/ads',
      ),
      JSON.stringify(ops),
    );
  });

  test('what cannot be expressed is reported with file, field and rule', () => {
    assert.deepEqual(
      problems.map((p) => [p.file, p.rule, p.path.join('.')]),
      [],
      'every fixture rule maps (lists and process.command included); refusals are tested per operand',
    );
    assert.ok(notes.some((n) => /expires at/.test(n.message)));
  });

  test('decisions: a deny on a host and its subdomains wins over an allow for the application', () => {
    const firefox = {
      direction: 'outgoing' as const,
      application: '/usr/lib/firefox/firefox',
      remotePort: 443,
    };
    assert.equal(verdict(policy, connection({ ...firefox, remoteHosts: ['ad.doubleclick.net'] })), 'deny');
    assert.equal(verdict(policy, connection({ ...firefox, remoteHosts: ['doubleclick.net'] })), 'deny');
    assert.equal(verdict(policy, connection({ ...firefox, remoteHosts: ['example.org'] })), 'allow');
    assert.equal(
      verdict(
        policy,
        connection({ direction: 'outgoing', application: '/usr/bin/curl', uid: 1000, remote: '192.168.3.3' }),
      ),
      'reject',
    );
    assert.equal(
      verdict(
        policy,
        connection({ direction: 'outgoing', application: '/usr/bin/curl', uid: 1000, remote: '2001:db8::1' }),
      ),
      'deny',
    );
  });

  test('OpenSnitch order: a later deny beats an earlier-named allow; precedence allow beats a later deny', () => {
    const files = [
      rule('a-allow-curl', 'allow', simple('process.path', '/usr/bin/curl')),
      rule('b-deny-port-25', 'deny', simple('dest.port', '25')),
      rule('0-prio-allow-mail', 'allow', simple('process.path', '/usr/sbin/postfix'), { precedence: true }),
    ];
    const { policy: p, problems: probs } = importPolicy('opensnitch', files);
    assert.deepEqual(probs, []);
    const out = (application: string) =>
      verdict(p, connection({ direction: 'outgoing', application, remotePort: 25, protocol: 'tcp' }));
    assert.equal(out('/usr/bin/curl'), 'deny');
    assert.equal(out('/usr/sbin/postfix'), 'allow');
  });

  test('protocol tcp means IPv4 TCP only (OpenSnitch calls IPv6 TCP "tcp6")', () => {
    const { policy: p } = importPolicy('opensnitch', [rule('deny-tcp', 'deny', simple('protocol', 'tcp'))]);
    assert.equal(verdict(p, connection({ direction: 'outgoing', remote: '8.8.8.8' })), 'deny');
    assert.equal(verdict(p, connection({ direction: 'outgoing', remote: '2001:db8::8' })), 'ask');
  });

  test('regexps: only exact shapes are taken; an unanchored or unescaped pattern is reported', () => {
    const files = [
      rule('h1', 'deny', simple('dest.host', '^(.*\\.)?example\\.com$', 'regexp')),
      rule('h2', 'deny', simple('dest.host', '.*\\.github.com', 'regexp')),
      rule('h3', 'deny', simple('dest.host', '^(.*\\.)?example.org$', 'regexp')),
      rule('p1', 'allow', simple('dest.port', '^(53|80|443)$', 'regexp')),
      rule('a1', 'allow', simple('process.path', '^(/usr/bin/wget|/usr/bin/curl)$', 'regexp')),
    ];
    const { policy: p, problems: probs } = importPolicy('opensnitch', files);
    assert.deepEqual(probs.map((x) => x.rule).sort(), ['h2', 'h3']);
    assert.deepEqual(p.rules.find((r) => r.name === 'h1')!.remote, [
      { kind: 'host', name: '*.example.com' },
      { kind: 'host', name: 'example.com' },
    ]);
    assert.deepEqual(p.rules.find((r) => r.name === 'p1')!.remotePorts, [
      { from: 53, to: 53 },
      { from: 80, to: 80 },
      { from: 443, to: 443 },
    ]);
    assert.deepEqual(
      p.rules.filter((r) => r.name.startsWith('a1')).map((r) => r.application),
      ['/usr/bin/wget', '/usr/bin/curl'],
    );
  });

  test('durations: once and until restart are reported; a JSON syntax error names its line', () => {
    const { problems: probs } = importPolicy('opensnitch', [
      rule('once', 'allow', simple('process.path', '/bin/x'), { duration: 'once' }),
      { name: 'broken.json', text: '{\n  "name": "x",\n  "action": allow\n}' },
    ]);
    assert.equal(probs.length, 2);
    assert.match(probs[0]!.message, /duration "once"/);
    assert.equal(probs[1]!.file, 'broken.json');
    assert.equal(probs[1]!.line, 3);
  });

  test('process.parent.path becomes ancestor, process.command an arguments glob; what has no glob is reported', () => {
    const files = [
      rule('a-parent', 'allow', {
        type: 'list',
        operand: 'list',
        list: [
          { ...simple('process.parent.path', '/usr/sbin/sshd'), sensitive: true },
          { ...simple('process.command', 'curl -s https://x/*'), sensitive: true },
        ],
      }),
      rule('b-regexp', 'allow', { ...simple('process.command', '--upload', 'regexp'), sensitive: true }),
      rule('c-group', 'allow', simple('process.command', '^(curl|wget) .*$', 'regexp')),
      rule('d-parents', 'allow', simple('process.parent.path', '^(/bin/a|/bin/b)$', 'regexp')),
    ];
    const r = importPolicy('opensnitch', files);
    assert.deepEqual(
      r.policy.rules.map((x) => [x.name, x.ancestor, x.arguments]),
      [
        ['a-parent', '/usr/sbin/sshd', 'curl -s https://x/\\*'],
        ['b-regexp', undefined, '*--upload*'],
      ],
    );
    assert.deepEqual(
      r.problems.map((p) => [p.rule, p.path.join('.')]),
      [
        ['c-group', 'operator'],
        ['d-parents', 'operator'],
      ],
    );
    assert.match(r.problems[0]!.message, /"\(" at 1: only literal text/);
    assert.match(r.problems[1]!.message, /one ancestor/);
  });
});

describe('OpenSnitch executable checksums', () => {
  test('process.hash.md5 / sha1 are left out with a note: the rule is kept without a pin', () => {
    const files = [
      rule('curl-md5', 'allow', {
        type: 'list',
        operand: 'list',
        list: [
          simple('process.path', '/usr/bin/curl'),
          simple('process.hash.md5', 'd41d8cd98f00b204e9800998ecf8427e'),
        ],
      }),
    ];
    const { policy, problems, notes } = importPolicy('opensnitch', files);
    assert.deepEqual(problems, []);
    assert.equal(policy.rules.length, 1);
    assert.equal(policy.rules[0]!.application, '/usr/bin/curl');
    assert.equal(policy.rules[0]!.sha256, undefined);
    const note = notes.find((n) => n.rule === 'curl-md5');
    assert.match(
      note?.message ?? '',
      /process\.hash\.md5 d41d8cd98f00b204e9800998ecf8427e left out: Warden pins executables by SHA-256 only/,
    );
  });
});
