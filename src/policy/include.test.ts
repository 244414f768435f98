import assert from 'node:assert/strict';
import { test } from 'node:test';
import { WardenError } from '../errors.js';
import { MAX_INCLUDED_RULES, parseIncludedRules, subscriptionOf, withIncludes } from './include.js';
import { parsePolicyText } from './parse.js';
import { serializePolicy } from './serialize.js';

/** The formatted problems of a refused text. */
function problems(f: () => unknown): string[] {
  try {
    f();
  } catch (e) {
    assert.ok(e instanceof WardenError, String(e));
    return e.problems.map(
      (p) => `${p.file}:${p.line}: ${p.path.join('.')}${p.rule ? ` [${p.rule}]` : ''}: ${p.message}`,
    );
  }
  assert.fail('expected a refusal');
}

test('include and disabled parse, serialize back, and are checked against each other', () => {
  const text = `rules:
  - { name: mine, direction: outgoing, action: allow }
include:
  - { name: corp, url: "https://rules.example.com/r.yaml", refresh: 12h }
  - { name: local, file: /etc/warden/rules.d/x.yaml, maxBytes: 1000 }
disabled: [corp/allow-web]
`;
  const p = parsePolicyText(text);
  assert.deepEqual(p.include, [
    { name: 'corp', url: 'https://rules.example.com/r.yaml', refreshSeconds: 43200, maxBytes: 4 << 20 },
    { name: 'local', file: '/etc/warden/rules.d/x.yaml', maxBytes: 1000 },
  ]);
  assert.deepEqual(p.disabled, ['corp/allow-web']);
  assert.deepEqual(parsePolicyText(serializePolicy(p)), p);
  assert.match(serializePolicy(p), /refresh: 12h/);
});

test('a bad include section is refused with located errors', () => {
  const found = problems(() =>
    parsePolicyText(
      `rules:
  - { name: corp/x, direction: outgoing, action: allow }
include:
  - { name: corp, url: "http://rules.example.com/r.yaml" }
  - { name: corp, file: relative.yaml }
  - { name: "a/b", file: /x.yaml }
  - { name: both, file: /x.yaml, url: "https://x.example/" }
  - { name: r, url: "https://x.example/", refresh: 1m }
  - { name: f, file: /x.yaml, refresh: 1h }
disabled: []
`,
      { file: 'p.yaml' },
    ),
  );
  const expect = [
    /p\.yaml:4: include\.0\.url: .*is not https/,
    /p\.yaml:5: include\.1\.file: "relative\.yaml" is not an absolute file path/,
    /p\.yaml:6: include\.2\.name: subscription name may hold/,
    /p\.yaml:7: include\.3: a subscription has either file/,
    /p\.yaml:8: include\.4\.refresh: refresh must be between 5m and 30d/,
    /p\.yaml:9: include\.5\.refresh: refresh is for url subscriptions/,
  ];
  for (const re of expect)
    assert.ok(
      found.some((f) => re.test(f)),
      `${re} in\n${found.join('\n')}`,
    );
  // Cross checks run once the fields are valid.
  const cross = problems(() =>
    parsePolicyText(
      `rules:
  - { name: corp/x, direction: outgoing, action: allow }
include:
  - { name: corp, url: "https://rules.example.com/r.yaml" }
  - { name: corp, file: /x.yaml }
disabled: [nobody/rule, corp]
`,
      { file: 'p.yaml' },
    ),
  );
  for (const re of [
    /p\.yaml:5: include\.1\.name: subscription name is already used by include #1/,
    /p\.yaml:2: rules\.0\.name \[corp\/x\]: rule names starting with "corp\/" belong to the subscription "corp"/,
    /p\.yaml:6: disabled\.0: "nobody\/rule": no subscription "nobody" \(known: corp\)/,
    /p\.yaml:6: disabled\.1: "corp" is not an included rule name/,
  ])
    assert.ok(
      cross.some((f) => re.test(f)),
      `${re} in\n${cross.join('\n')}`,
    );
});

test('an included file holds rules only, validated with the rule schema and located in its source', () => {
  const url = 'https://rules.example.com/r.yaml';
  const rules = parseIncludedRules(
    'version: 1\nrules:\n  - { name: web, direction: outgoing, protocol: tcp, remotePorts: 443, action: allow }\n',
    url,
  );
  assert.equal(rules[0]!.name, 'web');
  assert.deepEqual(rules[0]!.remotePorts, [{ from: 443, to: 443 }]);
  const found = problems(() =>
    parseIncludedRules(
      `rules:
  - { name: a, direction: outgoing, action: allow }
  - { name: a, direction: outgoing, action: deny }
  - { name: g, direction: outgoing, remote: "@lan", action: deny }
  - { name: l, direction: outgoing, remote: "list:ads", action: deny }
  - { name: p, direction: outgoing, protocol: icmp, remotePorts: 80, action: deny }
`,
      url,
    ),
  );
  for (const re of [
    /r\.yaml:3: rules\.1\.name \[a\]: rule name is already used by rule #1/,
    /r\.yaml:4: rules\.2\.remote \[g\]: included rules cannot use address groups/,
    /r\.yaml:5: rules\.3\.remote \[l\]: .*lists/,
    /r\.yaml:6: rules\.4\.remotePorts \[p\]: ports need protocol/,
  ])
    assert.ok(
      found.some((f) => re.test(f)),
      `${re} in\n${found.join('\n')}`,
    );
  const schema = problems(() =>
    parseIncludedRules('rules:\n  - name: t\n    direction: outgoing\n    acton: deny\n', url),
  );
  assert.ok(
    schema.some((f) =>
      /r\.yaml:4: rules\.0\.acton \[t\]: unknown field "acton"; did you mean "action"/.test(f),
    ),
    schema.join('\n'),
  );
  for (const [key, why] of [
    ['include', /may not include further/],
    ['lists', /may not define lists/],
    ['addressGroups', /may not define address groups/],
    ['mode', /rules only/],
  ] as const) {
    const p = problems(() => parseIncludedRules(`${key}: {}\nrules: []\n`, url));
    assert.ok(
      p.some((f) => f.includes(`${key}:`) && why.test(f)),
      p.join('\n'),
    );
  }
  assert.throws(() => parseIncludedRules('rules: [\n', url), /not valid YAML/);
  const many = Array.from(
    { length: MAX_INCLUDED_RULES + 1 },
    (_, i) => `  - { name: r${i}, direction: outgoing, action: deny }`,
  );
  const tooMany = problems(() => parseIncludedRules(`rules:\n${many.join('\n')}\n`, url));
  assert.ok(
    tooMany.some((f) => /r\.yaml:2: rules: .*at most 5000 rules/.test(f)),
    tooMany.join('\n'),
  );
});

test('included rules are named after the subscription, follow the own rules in include order, and can be disabled one by one', () => {
  const policy = parsePolicyText(`rules:
  - { name: mine, direction: outgoing, action: allow }
include:
  - { name: corp, file: /c.yaml }
  - { name: local, file: /l.yaml }
disabled: [corp/b]
`);
  const corp = parseIncludedRules(
    'rules:\n  - { name: a, direction: outgoing, action: deny }\n  - { name: b, direction: outgoing, action: deny }\n  - { name: c, enabled: false, direction: outgoing, action: deny }\n',
    '/c.yaml',
  );
  const local = parseIncludedRules(
    'rules:\n  - { name: a, direction: incoming, action: allow }\n',
    '/l.yaml',
  );
  const effective = withIncludes(
    policy,
    new Map([
      ['local', local],
      ['corp', corp],
    ]),
  );
  assert.deepEqual(
    effective.rules.map((r) => [r.name, r.enabled]),
    [
      ['mine', true],
      ['corp/a', true],
      ['corp/b', false],
      ['corp/c', false],
      ['local/a', true],
    ],
  );
  assert.equal(subscriptionOf(policy, 'corp/a'), 'corp');
  assert.equal(subscriptionOf(policy, 'mine'), undefined);
  assert.equal(subscriptionOf(policy, 'other/a'), undefined);
  // Nothing loaded yet: the policy itself.
  assert.equal(withIncludes(policy, new Map()), policy);
});
