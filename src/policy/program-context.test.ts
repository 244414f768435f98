/** The program-context rule fields (parent, ancestor, arguments): schema, matching, explain, early decisions. */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { decidingRuleWithoutProcess } from '../engine/early-decision.js';
import { formatPath, WardenError } from '../errors.js';
import { parseIp } from '../ip/index.js';
import { compilePolicy } from './compile.js';
import { decide, findFirstMatchLinear } from './evaluate.js';
import { explain } from './explain.js';
import { parsePolicyText, validateRule } from './parse.js';
import type { ConnectionFacts } from './rule.js';
import { serializePolicy } from './serialize.js';

const CURL: ConnectionFacts = {
  direction: 'outgoing',
  protocol: 'tcp',
  application: '/usr/bin/curl',
  uid: 1000,
  user: 'alice',
  localAddress: parseIp('10.0.0.2'),
  localPort: 40000,
  remoteAddress: parseIp('93.184.215.14'),
  remotePort: 443,
  remoteHosts: [],
  now: Date.parse('2026-12-06T12:00:00Z'),
  parent: '/usr/bin/bash',
  ancestors: ['/usr/bin/bash', '/usr/sbin/sshd', '/usr/lib/systemd/systemd'],
  arguments: 'curl -s https://example.com/x',
};

const POLICY = `defaults: { outgoing: { action: deny } }
rules:
  - { name: from bash, direction: outgoing, application: /usr/bin/curl, parent: /usr/bin/bash, arguments: "curl -s *", action: allow }
  - { name: under sshd, direction: outgoing, ancestor: /usr/sbin/sshd, arguments: "*--upload*", action: reject }
`;

function problems(yaml: string): { path: string; line: number | undefined; message: string }[] {
  try {
    parsePolicyText(yaml, { file: 'p.yaml' });
  } catch (e) {
    assert.ok(e instanceof WardenError);
    return e.problems.map((p) => ({ path: formatPath(p.path), line: p.line, message: p.message }));
  }
  return [];
}

describe('program context rule fields', () => {
  test('the schema refuses relative paths and bad globs, naming field and line', () => {
    const got = problems(`rules:
  - name: a
    direction: outgoing
    parent: bin/bash
    ancestor: ""
    arguments: "curl [x"
    action: allow
  - { name: b, direction: outgoing, arguments: "", action: allow }
`);
    assert.deepEqual(
      got.map((p) => [p.path, p.line]),
      [
        ['rules[0].parent', 4],
        ['rules[0].ancestor', 5],
        ['rules[0].arguments', 6],
        ['rules[1].arguments', 8],
      ],
    );
    assert.match(got[0]!.message, /"bin\/bash" is not an absolute path/);
    assert.match(got[1]!.message, /ancestor path is empty/);
    assert.match(got[2]!.message, /\[ at column 6 is never closed/);
    assert.match(got[3]!.message, /glob is empty/);
    assert.throws(
      () => validateRule({ name: 'x', direction: 'outgoing', action: 'allow', parent: 7 }),
      /parent/,
    );
  });

  test('parent, ancestor and arguments decide; the indexed and linear evaluators agree', () => {
    const p = compilePolicy(parsePolicyText(POLICY));
    const cases: [Partial<ConnectionFacts>, string][] = [
      [{}, 'from bash'],
      [{ parent: '/usr/bin/zsh' }, 'default outgoing'],
      [{ arguments: 'curl -v https://example.com' }, 'default outgoing'],
      [{ parent: '/usr/bin/zsh', arguments: 'curl --upload x' }, 'under sshd'],
      [{ parent: null, ancestors: [], arguments: 'curl --upload x' }, 'default outgoing'],
      // Not gathered (undefined): a rule on the context does not match.
      [{ parent: undefined, ancestors: undefined, arguments: undefined }, 'default outgoing'],
    ];
    for (const [change, expected] of cases) {
      const f = { ...CURL, ...change } as ConnectionFacts;
      const d = decide(p, f);
      assert.equal(d.ruleName, expected, JSON.stringify(change));
      assert.equal(decide(p, f, 'linear').ruleName, expected);
      assert.equal(findFirstMatchLinear(p, f), d.ruleIndex);
    }
    assert.deepEqual(p.needs, { parent: true, ancestors: true, arguments: true });
    const plain = compilePolicy(parsePolicyText('rules: [{ name: x, direction: outgoing, action: allow }]'));
    assert.deepEqual(plain.needs, { parent: false, ancestors: false, arguments: false });
  });

  test('explain says what the rule wants and what the connection has', () => {
    const p = compilePolicy(parsePolicyText(POLICY));
    const e = explain(p, { ...CURL, parent: '/usr/bin/zsh', ancestors: ['/usr/bin/zsh', '/sbin/init'] });
    assert.deepEqual(
      e.skipped.map((s) => [s.field, s.reason]),
      [
        ['parent', "rule wants parent /usr/bin/bash; this connection's parent is /usr/bin/zsh"],
        [
          'ancestor',
          "rule wants ancestor /usr/sbin/sshd; this connection's ancestors are /usr/bin/zsh < /sbin/init",
        ],
      ],
    );
    const args = explain(p, { ...CURL, arguments: 'curl -v x' }).skipped[0]!;
    assert.equal(
      args.reason,
      'rule wants arguments "curl -s *"; this connection\'s command line is "curl -v x"',
    );
  });

  test('a rule on the program context keeps the connection waiting for attribution', () => {
    const p = compilePolicy(
      parsePolicyText(`rules:
  - { name: ctx, direction: outgoing, parent: /usr/bin/bash, action: deny }
  - { name: rest, direction: outgoing, action: allow }`),
    );
    const bare: ConnectionFacts = { ...CURL, application: null, uid: null, user: null };
    delete (bare as { parent?: unknown }).parent;
    delete (bare as { ancestors?: unknown }).ancestors;
    delete (bare as { arguments?: unknown }).arguments;
    assert.equal(decidingRuleWithoutProcess(p, bare), undefined);
    const other = compilePolicy(
      parsePolicyText(`rules:
  - { name: ctx, direction: incoming, parent: /usr/bin/bash, action: deny }
  - { name: rest, direction: outgoing, action: allow }`),
    );
    assert.equal(decidingRuleWithoutProcess(other, bare), 1);
  });

  test('serialize and parse round trip', () => {
    const p = parsePolicyText(POLICY);
    assert.deepEqual(parsePolicyText(serializePolicy(p)), p);
    assert.equal(p.rules[0]!.arguments, 'curl -s *');
  });
});
