import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { formatPath, type Problem, WardenError } from '../errors.js';
import { parseAddressSpec } from './address-spec.js';
import { parsePolicyText, serializePolicy, validateRule } from './index.js';
import type { AddressSpec, Policy, Rule } from './rule.js';

/** Parses, expects WARDEN_E_POLICY_INVALID, and returns the error. */
function invalid(text: string, file = 'policy.yaml'): WardenError {
  try {
    parsePolicyText(text, { file });
  } catch (err) {
    assert.ok(err instanceof WardenError, `expected a WardenError, got ${String(err)}`);
    assert.equal(err.code, 'WARDEN_E_POLICY_INVALID', err.message);
    assert.ok(err.problems.length > 0);
    return err;
  }
  assert.fail(`expected the policy to be refused:\n${text}`);
}

/** Expects exactly one problem naming this rule, field and line; returns it for further checks. */
function problem(
  text: string,
  expected: { rule: string; path: string; line: number; message: RegExp },
): Problem {
  const err = invalid(text);
  assert.equal(err.problems.length, 1, JSON.stringify(err.problems));
  const p = err.problems[0]!;
  assert.equal(p.rule, expected.rule, 'problem.rule');
  assert.equal(formatPath(p.path), expected.path, 'problem.path');
  assert.equal(p.line, expected.line, 'problem.line');
  assert.equal(p.file, 'policy.yaml');
  assert.equal(typeof p.column, 'number');
  assert.match(p.message, expected.message);
  // The error message names file, line and rule, so a person can find the problem.
  assert.ok(err.message.includes(`policy.yaml:${expected.line}:`), err.message);
  assert.ok(err.message.includes(`(rule "${expected.rule}")`), err.message);
  return p;
}

/** A policy with one harmless rule first, so the rule under test is rules[1] and starts on line 7. */
const withRule = (...lines: string[]) =>
  [
    'mode: enforce',
    'rules:',
    '  - name: dns',
    '    direction: outgoing',
    '    remotePorts: 53',
    '    protocol: udp',
    '    action: allow',
    ...lines.map((l, i) => (i === 0 ? `  - ${l}` : `    ${l}`)),
    '',
  ].join('\n');

describe('parsePolicyText: errors name the rule, the field and the line', () => {
  test('unknown field, with the rename hint', () => {
    problem(withRule('name: web', 'direction: outgoing', 'protocol: tcp', 'port: 443', 'action: allow'), {
      rule: 'web',
      path: 'rules[1].port',
      line: 11,
      message: /unknown field "port"; did you mean "remotePorts"\?/,
    });
    problem(withRule('name: web', 'direction: outgoing', 'verdict: allow', 'action: allow'), {
      rule: 'web',
      path: 'rules[1].verdict',
      line: 10,
      message: /did you mean "action"\?/,
    });
    problem(withRule('name: web', 'direction: outgoing', 'colour: red', 'action: allow'), {
      rule: 'web',
      path: 'rules[1].colour',
      line: 10,
      message: /^unknown field "colour"$/,
    });
  });

  test('port 70000', () => {
    problem(
      withRule(
        'name: web',
        'direction: outgoing',
        'protocol: tcp',
        'remotePorts: [443, 70000]',
        'action: allow',
      ),
      {
        rule: 'web',
        path: 'rules[1].remotePorts',
        line: 11,
        message: /port 70000 is out of range 1-65535/,
      },
    );
    problem(withRule('name: srv', 'direction: incoming', 'protocol: tcp', 'localPorts: 0', 'action: allow'), {
      rule: 'srv',
      path: 'rules[1].localPorts',
      line: 11,
      message: /port 0 is out of range/,
    });
  });

  test('bad CIDR', () => {
    problem(withRule('name: lan', 'direction: incoming', 'remote: 10.0.0.1/8', 'action: allow'), {
      rule: 'lan',
      path: 'rules[1].remote',
      line: 10,
      message: /host bits set.*did you mean 10\.0\.0\.0\/8\?/,
    });
    problem(
      withRule(
        'name: lan',
        'direction: incoming',
        'remote:',
        '  - 192.168.0.0/16',
        '  - 10.0.0.0/33',
        'action: allow',
      ),
      {
        rule: 'lan',
        path: 'rules[1].remote[1]',
        line: 12,
        message: /prefix length 33 is out of range/,
      },
    );
  });

  test('unknown protocol', () => {
    problem(withRule('name: sctp', 'direction: outgoing', 'protocol: sctp', 'action: allow'), {
      rule: 'sctp',
      path: 'rules[1].protocol',
      line: 10,
      message: /must be one of "tcp", "udp", "tcp\+udp", "icmp", "any"/,
    });
  });

  test('overlapping port ranges', () => {
    problem(
      withRule(
        'name: web',
        'direction: outgoing',
        'protocol: tcp',
        'remotePorts: "8000-8100,8080"',
        'action: allow',
      ),
      {
        rule: 'web',
        path: 'rules[1].remotePorts',
        line: 11,
        message: /8000-8100 and 8080 overlap/,
      },
    );
  });

  test('reversed range', () => {
    problem(
      withRule(
        'name: web',
        'direction: outgoing',
        'protocol: tcp',
        'remotePorts: 2000-1000',
        'action: allow',
      ),
      {
        rule: 'web',
        path: 'rules[1].remotePorts',
        line: 11,
        message: /reversed; write 1000-2000/,
      },
    );
    problem(withRule('name: lan', 'direction: outgoing', 'remote: 10.0.0.20-10.0.0.1', 'action: allow'), {
      rule: 'lan',
      path: 'rules[1].remote',
      line: 10,
      message: /reversed/,
    });
  });

  test('empty application path', () => {
    problem(withRule('name: app', 'direction: outgoing', 'application: ""', 'action: allow'), {
      rule: 'app',
      path: 'rules[1].application',
      line: 10,
      message: /application path is empty/,
    });
  });

  test('relative application path', () => {
    problem(withRule('name: app', 'direction: outgoing', 'application: bin/curl', 'action: allow'), {
      rule: 'app',
      path: 'rules[1].application',
      line: 10,
      message: /"bin\/curl" is not an absolute path/,
    });
    problem(withRule('name: dir', 'direction: outgoing', 'application: /usr/bin/', 'action: allow'), {
      rule: 'dir',
      path: 'rules[1].application',
      line: 10,
      message: /is a directory/,
    });
  });

  test('bad host name', () => {
    problem(
      withRule('name: web', 'direction: outgoing', 'remote: [example.com, "bad_host!"]', 'action: allow'),
      {
        rule: 'web',
        path: 'rules[1].remote[1]',
        line: 10,
        message: /"bad_host!" is not a valid host name/,
      },
    );
    problem(withRule('name: web', 'direction: outgoing', 'remote: 10.0.0.300', 'action: allow'), {
      rule: 'web',
      path: 'rules[1].remote',
      line: 10,
      message: /"10\.0\.0\.300" is not a valid IP address/,
    });
  });

  test('ports with protocol icmp (or any)', () => {
    problem(
      withRule('name: ping', 'direction: outgoing', 'protocol: icmp', 'remotePorts: 80', 'action: allow'),
      {
        rule: 'ping',
        path: 'rules[1].remotePorts',
        line: 11,
        message: /ports need protocol tcp, udp or tcp\+udp \(this rule's protocol is icmp\)/,
      },
    );
    problem(withRule('name: web', 'direction: outgoing', 'localPorts: 8080', 'action: allow'), {
      rule: 'web',
      path: 'rules[1].localPorts',
      line: 10,
      message: /this rule's protocol is any/,
    });
  });

  test('undefined @group', () => {
    problem(withRule('name: office', 'direction: incoming', 'remote: "@office"', 'action: allow'), {
      rule: 'office',
      path: 'rules[1].remote',
      line: 10,
      message: /address group "office" is not defined \(the policy defines no addressGroups\)/,
    });
    const text = [
      'addressGroups:',
      '  lan: [10.0.0.0/8]',
      '  dmz: [192.0.2.0/24]',
      withRule('name: office', 'direction: incoming', 'remote: ["@lan", "@office"]', 'action: allow'),
    ].join('\n');
    const err = invalid(text);
    const p = err.problems[0]!;
    assert.equal(p.rule, 'office');
    assert.equal(formatPath(p.path), 'rules[1].remote[1]');
    assert.equal(p.line, 13);
    assert.match(p.message, /known groups: lan, dmz/);
  });

  test('duplicate rule names', () => {
    problem(withRule('name: dns', 'direction: outgoing', 'action: deny'), {
      rule: 'dns',
      path: 'rules[1].name',
      line: 8,
      message: /already used by rule #1/,
    });
  });

  test('unknown condition setting, and a condition of the wrong type', () => {
    problem(
      withRule(
        'name: c',
        'direction: outgoing',
        'action: allow',
        'condition:',
        '  setting: syslog.enabeld',
        '  equals: true',
      ),
      {
        rule: 'c',
        path: 'rules[1].condition.setting',
        line: 12,
        message: /unknown setting "syslog\.enabeld"; conditions can test .*syslog\.enabled/,
      },
    );
    problem(
      withRule(
        'name: c',
        'direction: outgoing',
        'action: allow',
        'condition:',
        '  setting: syslog.enabled',
        '  equals: "yes"',
      ),
      {
        rule: 'c',
        path: 'rules[1].condition.equals',
        line: 13,
        message: /holds a boolean, not a string/,
      },
    );
    problem(
      withRule(
        'name: c',
        'direction: outgoing',
        'action: allow',
        'condition:',
        '  setting: proxy.mode',
        '  equals: pac',
      ),
      {
        rule: 'c',
        path: 'rules[1].condition.equals',
        line: 13,
        message: /one of auto, direct, manual/,
      },
    );
  });

  test('bad expires', () => {
    for (const value of [
      'tomorrow',
      '2026-12-31',
      '2026-12-31T18:00:00',
      '2026-13-01T00:00:00Z',
      '"2026-02-30T00:00Z x"',
    ]) {
      problem(withRule('name: tmp', 'direction: outgoing', 'action: allow', `expires: ${value}`), {
        rule: 'tmp',
        path: 'rules[1].expires',
        line: 11,
        message: /is not an ISO 8601 instant with a time zone/,
      });
    }
  });

  test('missing required fields and bad enums', () => {
    // A missing direction is located at the rule.
    problem(withRule('name: x', 'action: allow'), {
      rule: 'x',
      path: 'rules[1].direction',
      line: 8,
      message: /required field is missing \(one of "incoming", "outgoing", "both"\)/,
    });
    problem(withRule('name: x', 'direction: sideways', 'action: allow'), {
      rule: 'x',
      path: 'rules[1].direction',
      line: 9,
      message: /must be one of "incoming", "outgoing", "both"/,
    });
    problem(withRule('name: x', 'direction: outgoing', 'action: permit'), {
      rule: 'x',
      path: 'rules[1].action',
      line: 10,
      message: /must be one of "allow", "deny", "reject", "ask"/,
    });
    // A rule without a name is named by its position.
    problem(withRule('direction: outgoing', 'action: allow'), {
      rule: '#2',
      path: 'rules[1].name',
      line: 8,
      message: /required field is missing/,
    });
  });

  test('every problem is reported, each with its own rule and line', () => {
    const text = withRule(
      'name: a',
      'direction: outgoing',
      'protocol: tcp',
      'remotePorts: 70000',
      'action: allow',
      'colour: red',
    ).concat(
      ['  - name: b', '    direction: outgoing', '    application: curl', '    action: allow', ''].join('\n'),
    );
    const err = invalid(text);
    const seen = err.problems.map((p) => `${p.rule}@${p.line}:${formatPath(p.path)}`).sort();
    assert.deepEqual(
      seen,
      ['a@11:rules[1].remotePorts', 'a@13:rules[1].colour', 'b@16:rules[2].application'].sort(),
    );
    assert.match(err.message, /3 problems/);
  });

  test('document-level problems have a line and no rule', () => {
    for (const [text, path] of [
      ['mode: strict\n', 'mode'],
      ['version: 2\n', 'version'],
      ['rules: {}\n', 'rules'],
      ['defaults:\n  incoming:\n    action: drop\n', 'defaults.incoming.action'],
      ['addressGroups:\n  lan: [10.0.0.0/8, "@other"]\n', 'addressGroups.lan[1]'],
      ['addressGroups:\n  "bad name": [10.0.0.0/8]\n', 'addressGroups.bad name'],
      ['whatever: 1\n', 'whatever'],
    ] as const) {
      const err = invalid(text);
      const p = err.problems[0]!;
      assert.equal(formatPath(p.path), path, text);
      assert.equal(p.rule, undefined, text);
      assert.equal(typeof p.line, 'number', text);
    }
    invalid('- just\n- a list\n');
  });

  test('YAML syntax errors are WARDEN_E_YAML_SYNTAX with a line', () => {
    try {
      parsePolicyText('rules:\n  - name: a\n    direction: [outgoing\n', { file: 'p.yaml' });
      assert.fail('expected an error');
    } catch (err) {
      assert.ok(err instanceof WardenError);
      assert.equal(err.code, 'WARDEN_E_YAML_SYNTAX');
      assert.equal(typeof err.problems[0]?.line, 'number');
    }
  });
});

const VALID = `# A realistic policy.
version: 1
mode: enforce
defaults:
  incoming: { action: deny, log: true }
  outgoing: { action: allow, log: false }
addressGroups:
  lan: [10.0.0.0/8, 192.168.0.0/16, "fd00::/8"]
  admins: [192.0.2.10, 192.0.2.20-192.0.2.30, admin.example.com]
rules:
  - name: ssh from admins
    direction: incoming
    protocol: tcp
    application: /usr/sbin/sshd
    localPorts: 22
    remote: "@admins"
    action: allow
    log: true
  - name: web server
    direction: incoming
    protocol: tcp
    localPorts: [80, 443, "8000-8100"]
    action: allow
  - name: no telemetry
    direction: outgoing
    remote: ["*.telemetry.example", tracker.example.net]
    action: reject
    comment: Vendors phone home here.
  - name: browser as ann
    direction: outgoing
    protocol: tcp+udp
    application: /usr/lib/firefox/firefox
    user: ann
    remotePorts: 443
    action: allow
  - name: backup job
    direction: outgoing
    protocol: tcp
    user: 0
    remote: ["2001:db8::/32", localhost]
    remotePorts: 873
    action: allow
    expires: 2030-01-01T00:00:00+01:00
  - name: syslog relay
    enabled: false
    direction: outgoing
    protocol: udp
    remotePorts: 514
    action: allow
    condition: { setting: syslog.enabled, equals: true }
  - name: ping
    direction: both
    protocol: icmp
    action: allow
  - name: ask the rest of lan
    direction: incoming
    remote: "@lan"
    action: ask
`;

describe('parsePolicyText: valid files', () => {
  test('a realistic policy parses to the model', () => {
    const p = parsePolicyText(VALID);
    assert.equal(p.mode, 'enforce');
    assert.deepEqual(p.defaults, {
      incoming: { action: 'deny', log: true },
      outgoing: { action: 'allow', log: false },
    });
    assert.deepEqual(Object.keys(p.addressGroups), ['lan', 'admins']);
    assert.equal(p.rules.length, 8);
    const ssh = p.rules[0]!;
    assert.deepEqual(ssh.localPorts, [{ from: 22, to: 22 }]);
    assert.deepEqual(ssh.remote, [{ kind: 'group', name: 'admins' }]);
    assert.equal(ssh.enabled, true);
    assert.equal(p.rules[1]!.log, false, 'log defaults to false');
    assert.equal(p.rules[2]!.protocol, 'any', 'protocol defaults to any');
    assert.equal(p.rules[2]!.application, 'any', 'application defaults to any');
    assert.equal(p.rules[3]!.user, 'ann');
    assert.equal(p.rules[4]!.user, 0);
    assert.equal(p.rules[4]!.expires, '2029-12-31T23:00:00.000Z', 'expires is normalised to UTC');
    assert.deepEqual(p.rules[5]!.condition, { setting: 'syslog.enabled', equals: true });
    assert.equal(p.rules[5]!.enabled, false);
    assert.ok(!('remote' in p.rules[1]!), 'absent fields stay absent');
  });

  test('an empty file is the out-of-the-box policy', () => {
    const p = parsePolicyText('');
    assert.deepEqual(p, {
      mode: 'enforce',
      defaults: { incoming: { action: 'deny', log: true }, outgoing: { action: 'allow', log: true } },
      addressGroups: {},
      rules: [],
    });
  });

  test('remote: any means no restriction', () => {
    const p = parsePolicyText(withRule('name: x', 'direction: outgoing', 'remote: any', 'action: allow'));
    assert.equal(p.rules[1]!.remote, undefined);
    invalid(withRule('name: x', 'direction: outgoing', 'remote: [any, 10.0.0.1]', 'action: allow'));
  });

  test('round trip: serializePolicy(parsePolicyText(x)) parses back deep-equal', () => {
    const p = parsePolicyText(VALID);
    const text = serializePolicy(p);
    assert.match(text, /^# Warden network security policy/);
    assert.deepEqual(parsePolicyText(text), p);
    // And serialising again is stable.
    assert.equal(serializePolicy(parsePolicyText(text)), text);
  });

  test('validateRule checks one rule against the groups', () => {
    const rule = validateRule(
      { name: 'r', direction: 'outgoing', remote: '@lan', action: 'allow' },
      {
        addressGroups: { lan: [{ kind: 'localhost' }] },
      },
    );
    assert.deepEqual(rule.remote, [{ kind: 'group', name: 'lan' }]);
    assert.throws(
      () => validateRule({ name: 'r', direction: 'outgoing', remote: '@lan', action: 'allow' }),
      (err: unknown) =>
        err instanceof WardenError && err.code === 'WARDEN_E_POLICY_INVALID' && err.problems[0]?.rule === 'r',
    );
    assert.throws(
      () => validateRule({ name: 'r', direction: 'outgoing', action: 'allow', port: 80 }),
      (err: unknown) =>
        err instanceof WardenError && /did you mean "remotePorts"/.test(err.problems[0]?.message ?? ''),
    );
  });
});

// ---------------------------------------------------------------------------
// Round trip over generated policies.

const specText = fc.oneof(
  fc.constant('localhost'),
  fc.ipV4(),
  fc.ipV6(),
  fc.tuple(fc.ipV4(), fc.integer({ min: 8, max: 32 })).map(([a, b]) => `${a}/${b}`),
  fc.domain(),
  fc.domain().map((d) => `*.${d}`),
);
const spec: fc.Arbitrary<AddressSpec> = specText
  .map((t) => parseAddressSpec(t))
  .filter((r) => r.ok)
  .map((r) => (r as { ok: true; value: AddressSpec }).value);

/** Non-overlapping port lists: sorted distinct ports, as singletons or cut into from-to pairs. */
const portList = fc
  .tuple(fc.uniqueArray(fc.integer({ min: 1, max: 65535 }), { minLength: 1, maxLength: 6 }), fc.boolean())
  .map(([ports, pairs]) => {
    const sorted = [...ports].sort((a, b) => a - b);
    if (!pairs) return sorted.map((p) => ({ from: p, to: p }));
    const out: { from: number; to: number }[] = [];
    for (let i = 0; i < sorted.length; i += 2)
      out.push({ from: sorted[i]!, to: sorted[i + 1] ?? sorted[i]! });
    return out;
  });

const ruleArb = (name: string, groups: string[]): fc.Arbitrary<Rule> =>
  fc
    .record(
      {
        enabled: fc.boolean(),
        direction: fc.constantFrom('incoming', 'outgoing', 'both'),
        protocol: fc.constantFrom('tcp', 'udp', 'tcp+udp', 'icmp', 'any'),
        application: fc.constantFrom('any', '/usr/bin/curl', '/opt/app/bin/server'),
        user: fc.oneof(fc.nat({ max: 65534 }), fc.constantFrom('root', 'ann', 'www-data')),
        localPorts: portList,
        remotePorts: portList,
        remote: fc.array(
          fc.oneof(
            spec,
            ...(groups.length === 0
              ? []
              : [fc.constantFrom(...groups).map((g): AddressSpec => ({ kind: 'group', name: g }))]),
          ),
          {
            minLength: 1,
            maxLength: 3,
          },
        ),
        action: fc.constantFrom('allow', 'deny', 'reject', 'ask'),
        log: fc.boolean(),
        condition: fc.constantFrom(
          { setting: 'syslog.enabled', equals: true },
          { setting: 'applicationPort', equals: 44334 },
          { setting: 'proxy.mode', equals: 'direct' },
        ),
        expires: fc
          .date({ min: new Date('2020-01-01'), max: new Date('2040-01-01'), noInvalidDate: true })
          .map((d) => d.toISOString()),
        comment: fc.string({ maxLength: 40 }),
      },
      {
        requiredKeys: ['enabled', 'direction', 'protocol', 'application', 'action', 'log'],
        noNullPrototype: true,
      },
    )
    .map((r) => {
      const portsAllowed = r.protocol === 'tcp' || r.protocol === 'udp' || r.protocol === 'tcp+udp';
      const { localPorts, remotePorts, ...rest } = r;
      return {
        name,
        ...rest,
        ...(portsAllowed && localPorts ? { localPorts } : {}),
        ...(portsAllowed && remotePorts ? { remotePorts } : {}),
      } as Rule;
    });

const policyArb: fc.Arbitrary<Policy> = fc
  .record({
    mode: fc.constantFrom('enforce', 'learning', 'monitor'),
    incoming: fc.record(
      { action: fc.constantFrom('allow', 'deny', 'reject', 'ask'), log: fc.boolean() },
      { noNullPrototype: true },
    ),
    outgoing: fc.record(
      { action: fc.constantFrom('allow', 'deny', 'reject', 'ask'), log: fc.boolean() },
      { noNullPrototype: true },
    ),
    groups: fc.dictionary(fc.stringMatching(/^[a-z][a-z0-9_-]{0,10}$/), fc.array(spec, { maxLength: 3 }), {
      maxKeys: 3,
      noNullPrototype: true,
    }),
    ruleCount: fc.nat({ max: 6 }),
  })
  .chain(({ mode, incoming, outgoing, groups, ruleCount }) =>
    fc
      .tuple(...Array.from({ length: ruleCount }, (_, i) => ruleArb(`rule ${i + 1}`, Object.keys(groups))))
      .map((rules): Policy => ({ mode, defaults: { incoming, outgoing }, addressGroups: groups, rules })),
  );

describe('policy round trip (generated)', () => {
  test('parsePolicyText(serializePolicy(p)) deep-equals p, and serialising again gives the same text', () => {
    fc.assert(
      fc.property(policyArb, (policy) => {
        const text = serializePolicy(policy);
        const back = parsePolicyText(text);
        assert.deepEqual(back, policy);
        assert.equal(serializePolicy(back), text);
      }),
      { numRuns: 200 },
    );
  });
});

test('a text with thousands of errors names the first 100 and says there are more, at once', () => {
  const rules = Array.from(
    { length: 3000 },
    (_, i) => `  - { name: r${i}, direction: outgoing, action: allow, colour: red }`,
  );
  const t0 = performance.now();
  const err = invalid(`rules:\n${rules.join('\n')}\n`);
  assert.equal(err.problems.length, 101);
  assert.match(err.problems[0]!.message, /unknown field "colour"/);
  assert.match(err.problems[100]!.message, /only the first 100 are shown/);
  assert.ok(performance.now() - t0 < 5000);
});
