/** The sha256 pin of a rule: schema errors, cross-field check, round trip, matching and explain. */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { formatPath, WardenError } from '../errors.js';
import { exportOpenSnitch } from './export/opensnitch.js';
import { compilePolicy, explain, parsePolicyText, serializePolicy, validateRule } from './index.js';
import type { ConnectionFacts } from './rule.js';
import { ip, NOW } from './testing/arbitraries.js';

const A = 'ab'.repeat(32);
const B = 'cd'.repeat(32);

const policyWith = (sha: string, app = '/usr/bin/curl') =>
  [
    'rules:',
    '  - name: curl pinned',
    '    direction: outgoing',
    `    application: ${app}`,
    `    sha256: "${sha}"`,
    '    action: deny',
    '',
  ].join('\n');

function refused(text: string): { path: string; line: number | undefined; message: string } {
  try {
    parsePolicyText(text, { file: 'policy.yaml' });
  } catch (e) {
    assert.ok(e instanceof WardenError, String(e));
    assert.equal(e.problems.length, 1, JSON.stringify(e.problems));
    const p = e.problems[0]!;
    assert.equal(p.rule, 'curl pinned');
    return { path: formatPath(p.path), line: p.line, message: p.message };
  }
  assert.fail('expected a refusal');
}

describe('sha256 in the schema', () => {
  test('not hex: names the first bad character, the field and the line', () => {
    const p = refused(policyWith(`${A.slice(0, 63)}g`));
    assert.equal(p.path, 'rules[0].sha256');
    assert.equal(p.line, 5);
    assert.match(p.message, /not hexadecimal: "g"/);
  });
  test('wrong length: says how many digits it has and that SHA-256 has 64 (MD5 32, SHA-1 40)', () => {
    const p = refused(policyWith('d41d8cd98f00b204e9800998ecf8427e'));
    assert.equal(p.path, 'rules[0].sha256');
    assert.match(p.message, /32 hex digits; a SHA-256 has 64 \(an MD5 has 32/);
  });
  test('sha256 without an application is refused at the sha256 field', () => {
    const p = refused(policyWith(A, 'any'));
    assert.equal(p.path, 'rules[0].sha256');
    assert.match(p.message, /application "any"/);
    assert.throws(
      () => validateRule({ name: 'x', direction: 'outgoing', sha256: A, action: 'allow' }),
      /application "any"/,
    );
  });
  test('upper case is taken and stored lower case; the pin survives a round trip', () => {
    const p = parsePolicyText(policyWith(A.toUpperCase()));
    assert.equal(p.rules[0]!.sha256, A);
    assert.deepEqual(parsePolicyText(serializePolicy(p)), p);
    assert.match(serializePolicy(p), /sha256: a/);
  });
});

describe('a pinned rule matches only the pinned file', () => {
  const compiled = compilePolicy(parsePolicyText(policyWith(A)));
  const facts = (sha: string | null | undefined): ConnectionFacts => ({
    direction: 'outgoing',
    protocol: 'tcp',
    application: '/usr/bin/curl',
    ...(sha === undefined ? {} : { applicationSha256: sha }),
    uid: 1000,
    user: 'alice',
    localAddress: ip('10.0.0.100'),
    localPort: 40000,
    remoteAddress: ip('10.0.0.1'),
    remotePort: 443,
    remoteHosts: [],
    now: NOW,
  });
  test('same hash: the rule decides; another hash or none: what follows decides, and explain says why', () => {
    const user = (f: ConnectionFacts) => explain(compiled, f);
    assert.equal(user(facts(A)).decision.ruleName, 'curl pinned');
    for (const other of [B, null, undefined]) {
      const e = user(facts(other));
      assert.equal(e.decision.ruleName, 'default outgoing');
      const skipped = e.skipped.find((s) => s.name === 'curl pinned');
      assert.equal(skipped?.field, 'sha256');
      assert.match(
        skipped!.reason,
        other === B
          ? /^pinned sha256 abababababab… but \/usr\/bin\/curl is now cdcdcdcdcdcd…$/
          : /hash of \/usr\/bin\/curl is not known/,
      );
    }
  });
});

describe('export of a pinned rule', () => {
  test('OpenSnitch has no SHA-256 condition: the rule is not exported (without its pin it would match any file)', () => {
    const r = exportOpenSnitch(parsePolicyText(policyWith(A)), '2026-11-23T12:00:00Z');
    assert.equal(r.skipped.length, 1);
    assert.match(r.skipped[0]!.message, /MD5 or SHA-1, not SHA-256/);
    assert.ok(!r.files.some((f) => f.text.includes('/usr/bin/curl')));
  });
});
