/** The `interface` rule field: schema (located errors), matching, explain, lint and the serializer's round trip. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { formatPath, WardenError } from '../errors.js';
import { missingInterfaces } from '../host-programs.js';
import {
  type ConnectionFacts,
  compilePolicy,
  explain,
  lint,
  parsePolicyText,
  serializePolicy,
} from './index.js';

const policyWith = (iface: string) =>
  [
    'rules:',
    '  - name: vpn',
    '    direction: outgoing',
    `    interface: ${iface}`,
    '    action: allow',
    '',
  ].join('\n');

function refusal(text: string): { path: string; line: number | undefined; message: string }[] {
  try {
    parsePolicyText(text, { file: 'policy.yaml' });
  } catch (e) {
    assert.ok(e instanceof WardenError, String(e));
    return e.problems.map((p) => ({ path: formatPath(p.path), line: p.line, message: p.message }));
  }
  assert.fail('expected a refusal');
}

test('one name, a list and wg* globs are taken; "any" is no restriction', () => {
  assert.deepEqual(parsePolicyText(policyWith('eth0')).rules[0]!.interface, ['eth0']);
  assert.deepEqual(parsePolicyText(policyWith('[eth0, "wg*", eth0]')).rules[0]!.interface, ['eth0', 'wg*']);
  assert.equal(parsePolicyText(policyWith('any')).rules[0]!.interface, undefined);
});

test('globs other than one trailing *, bad names and empty lists are refused where they are', () => {
  const cases: [string, string, RegExp][] = [
    ['"*"', 'rules[0].interface', /every interface: leave the field out/],
    ['"*wg"', 'rules[0].interface', /only one \* at the end/],
    ['[eth0, "w*g*"]', 'rules[0].interface[1]', /only one \* at the end/],
    ['"eth?"', 'rules[0].interface', /\? and \[ \] are no interface globs/],
    ['averyveryverylongname0', 'rules[0].interface', /longer than 15 characters/],
    ['"eth 0"', 'rules[0].interface', /not an interface name/],
    ['"a/b"', 'rules[0].interface', /not an interface name/],
    ['[]', 'rules[0].interface', /interface list is empty/],
    ['[eth0, any]', 'rules[0].interface[1]', /"any" cannot be part of a list/],
    ['7', 'rules[0].interface', /expected an interface name such as eth0 or wg\*/],
  ];
  for (const [value, path, message] of cases) {
    const problems = refusal(policyWith(value));
    assert.equal(problems.length, 1, `${value}: ${JSON.stringify(problems)}`);
    assert.equal(problems[0]!.path, path, value);
    assert.equal(problems[0]!.line, 4, value);
    assert.match(problems[0]!.message, message, value);
  }
});

const facts = (iface: string | null | undefined): ConnectionFacts => ({
  direction: 'outgoing',
  protocol: 'tcp',
  application: null,
  uid: null,
  user: null,
  localAddress: null,
  localPort: null,
  remoteAddress: null,
  remotePort: null,
  remoteHosts: [],
  ...(iface === undefined ? {} : { interface: iface }),
  now: 0,
});

test('a rule matches its interfaces by name or prefix; an unknown interface matches no such rule', () => {
  const p = compilePolicy(parsePolicyText(policyWith('[eth0, "wg*"]')));
  const decided = (i: string | null | undefined) => explain(p, facts(i)).decision.ruleName;
  assert.equal(decided('eth0'), 'vpn');
  assert.equal(decided('wg0'), 'vpn');
  assert.equal(decided('wg-office'), 'vpn');
  assert.equal(decided('eth1'), 'default outgoing');
  assert.equal(decided(null), 'default outgoing');
  assert.equal(decided(undefined), 'default outgoing');
  const skipped = explain(p, facts('eth1')).skipped[0]!;
  assert.equal(skipped.field, 'interface');
  assert.match(skipped.reason, /rule wants interface eth0, wg\*; this connection's is eth1/);
});

test('lint: an interface rule covers only what its interfaces cover', () => {
  const text = [
    'rules:',
    '  - { name: wg, direction: outgoing, interface: "wg*", action: allow }',
    '  - { name: wg0, direction: outgoing, interface: wg0, action: deny }',
    '  - { name: eth, direction: outgoing, interface: eth0, action: deny }',
    '  - { name: all, direction: outgoing, action: deny }',
    '',
  ].join('\n');
  const findings = lint(compilePolicy(parsePolicyText(text)), { now: 0 });
  assert.deepEqual(
    findings.filter((f) => f.kind === 'shadowed').map((f) => [f.rule, f.other]),
    [['wg0', 'wg']],
  );
});

test('missing-interface: a warning for a name this host lacks, never for a glob', () => {
  const policy = parsePolicyText(policyWith('[eth0, nosuch0, "wg*"]'));
  const found = missingInterfaces(policy.rules, 0, ['lo', 'eth0']);
  assert.equal(found.length, 1);
  assert.equal(found[0]!.kind, 'missing-interface');
  assert.equal(found[0]!.severity, 'warning');
  assert.match(found[0]!.message, /interface "nosuch0" does not exist on this host .*here: lo, eth0/);
});

test('serialize: one interface is written as a name, several as a list, and read back the same', () => {
  for (const v of ['eth0', '[eth0, "wg*"]']) {
    const p = parsePolicyText(policyWith(v));
    assert.deepEqual(parsePolicyText(serializePolicy(p)), p);
  }
  assert.match(serializePolicy(parsePolicyText(policyWith('eth0'))), /interface: eth0/);
});
