import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { parseIp } from '../ip/index.js';
import { validateSettings } from '../settings/index.js';
import { compilePolicy } from './compile.js';
import { decide, findFirstMatchLinear } from './evaluate.js';
import { explain } from './explain.js';
import { findMismatch, matches } from './match.js';
import { parsePolicyText } from './parse.js';
import type { AddressSpec, ConnectionFacts, Policy, PortRange, Rule } from './rule.js';
import { findFirstMatchIndexed } from './rule-index.js';

const NOW = Date.parse('2026-11-23T12:00:00Z');

// ---- generators over small pools, so that rules and connections collide often ----

const APPS = ['/usr/bin/curl', '/usr/bin/firefox', '/usr/sbin/sshd'];
const PORTS = [22, 53, 80, 443, 8080, 8443];
const V4 = ['10.0.0.1', '10.0.0.2', '10.0.0.5', '192.168.1.9', '127.0.0.1', '8.8.8.8'];
const V6 = ['::1', '2001:db8::1', '2001:db8::7', 'fe80::1'];
const HOSTS = ['a.example.com', 'b.example.com', 'example.com', 'other.org'];

const ip = (text: string) => parseIp(text)!;
const single = (text: string): AddressSpec => {
  const a = ip(text);
  return a.version === 4
    ? { kind: 'ip', range: { version: 4, first: a.value, last: a.value } }
    : { kind: 'ip', range: { version: 6, first: a.value, last: a.value } };
};
const range4 = (a: string, b: string): AddressSpec => ({
  kind: 'ip',
  range: { version: 4, first: ip(a).value as number, last: ip(b).value as number },
});

const addressSpec: fc.Arbitrary<AddressSpec> = fc.oneof(
  fc.constantFrom(...V4, ...V6).map(single),
  fc.constant(range4('10.0.0.0', '10.0.0.3')),
  fc.constant(range4('10.0.0.0', '10.255.255.255')),
  fc.constant<AddressSpec>({
    kind: 'ip',
    range: { version: 6, first: ip('2001:db8::').value as bigint, last: ip('2001:db8::ff').value as bigint },
  }),
  fc.constant<AddressSpec>({ kind: 'localhost' }),
  fc.constantFrom(...HOSTS, '*.example.com').map((name): AddressSpec => ({ kind: 'host', name })),
  fc.constant<AddressSpec>({ kind: 'group', name: 'lan' }),
);

const portList: fc.Arbitrary<readonly PortRange[]> = fc.oneof<fc.Arbitrary<readonly PortRange[]>[]>(
  fc
    .uniqueArray(fc.constantFrom(...PORTS), { minLength: 1, maxLength: 3 })
    .map((ps) => ps.map((p) => ({ from: p, to: p }))),
  fc.constant([{ from: 8000, to: 8100 }]),
  fc.constant([{ from: 1, to: 1024 }]),
  fc.constant([
    { from: 80, to: 80 },
    { from: 440, to: 450 },
  ]),
);

/** `arb` about `percent` of the time, otherwise undefined (the field is left out). */
function sometimes<T>(arb: fc.Arbitrary<T>, percent: number): fc.Arbitrary<T | undefined> {
  return fc.oneof(
    { arbitrary: fc.constant(undefined), weight: 100 - percent },
    { arbitrary: arb, weight: percent },
  );
}

const rule: fc.Arbitrary<Rule> = fc
  .record(
    {
      enabled: fc.constantFrom(true, true, true, true, false),
      direction: fc.constantFrom('incoming', 'outgoing', 'both'),
      protocol: fc.constantFrom('tcp', 'udp', 'tcp+udp', 'icmp', 'any'),
      application: fc.constantFrom('any', 'any', 'any', ...APPS),
      user: sometimes(fc.constantFrom<number | string>(0, 1000, 'alice'), 15),
      localPorts: sometimes(portList, 20),
      remotePorts: sometimes(portList, 35),
      remote: sometimes(fc.array(addressSpec, { minLength: 1, maxLength: 3 }), 40),
      action: fc.constantFrom('allow', 'deny', 'reject', 'ask'),
      log: fc.boolean(),
      conditional: fc.constantFrom(0, 0, 0, 0, 0, 0, 1, 2),
      expires: fc.constantFrom(
        undefined,
        undefined,
        undefined,
        '2026-11-23T11:00:00.000Z',
        '2026-11-23T13:00:00.000Z',
      ),
    },
    { requiredKeys: ['enabled', 'direction', 'protocol', 'application', 'action', 'log', 'conditional'] },
  )
  .map(({ conditional, ...r }): Rule => {
    const ports = r.protocol === 'tcp' || r.protocol === 'udp' || r.protocol === 'tcp+udp';
    const out: Record<string, unknown> = { name: 'r', ...r };
    if (!ports) {
      delete out.localPorts;
      delete out.remotePorts;
    }
    for (const k of Object.keys(out)) if (out[k] === undefined) delete out[k];
    if (conditional > 0) out.condition = { setting: 'syslog.enabled', equals: conditional === 1 };
    return out as unknown as Rule;
  });

const policy: fc.Arbitrary<Policy> = fc
  .record({
    rules: fc.array(rule, { minLength: 3, maxLength: 40 }),
    mode: fc.constantFrom('enforce', 'learning', 'monitor'),
    incoming: fc.constantFrom('allow', 'deny', 'reject', 'ask'),
    outgoing: fc.constantFrom('allow', 'deny', 'reject', 'ask'),
  })
  .map(({ rules, mode, incoming, outgoing }) => ({
    mode,
    defaults: { incoming: { action: incoming, log: true }, outgoing: { action: outgoing, log: false } },
    addressGroups: { lan: [range4('192.168.0.0', '192.168.255.255'), { kind: 'host', name: '*.lan' }] },
    rules: rules.map((r, i) => ({ ...r, name: `rule-${i}` })),
  }));

const facts: fc.Arbitrary<ConnectionFacts> = fc
  .record({
    direction: fc.constantFrom('incoming', 'outgoing'),
    protocol: fc.constantFrom('tcp', 'tcp', 'udp', 'udp', 'icmp', 'other'),
    application: fc.constantFrom(null, ...APPS, '/usr/bin/python3'),
    uid: fc.constantFrom(null, 0, 1000, 1001),
    user: fc.constantFrom(null, 'root', 'alice', 'bob'),
    localPort: fc.constantFrom(null, ...PORTS, 8050, 500, 40000),
    remoteAddress: fc.constantFrom(null, ...V4, ...V6, '192.168.4.4', '10.0.0.3', '2001:db8::80'),
    remotePort: fc.constantFrom(null, ...PORTS, 8050, 445, 60000),
    remoteHosts: fc.subarray([...HOSTS, 'x.a.example.com', 'nas.lan']),
    now: fc.constant(NOW),
  })
  .map((f) => {
    const isPorts = f.protocol === 'tcp' || f.protocol === 'udp';
    return {
      ...f,
      localPort: isPorts ? f.localPort : null,
      remotePort: isPorts ? f.remotePort : null,
      localAddress: ip('10.0.0.100'),
      remoteAddress: f.remoteAddress === null ? null : ip(f.remoteAddress),
    } as ConnectionFacts;
  });

const settingsSyslogOn = validateSettings({ syslog: { enabled: true } });

describe('indexed and linear evaluators', () => {
  test('always pick the same deciding rule and give the same decision (property)', () => {
    const outcomes = { rule: 0, default: 0 };
    fc.assert(
      fc.property(policy, fc.array(facts, { minLength: 1, maxLength: 20 }), fc.boolean(), (p, fs, syslog) => {
        const cp = compilePolicy(p, syslog ? { settings: settingsSyslogOn } : {});
        for (const f of fs) {
          const linear = findFirstMatchLinear(cp, f);
          outcomes[linear >= 0 ? 'rule' : 'default']++;
          const indexed = findFirstMatchIndexed(cp.index, f);
          assert.equal(indexed, linear);
          assert.deepEqual(decide(cp, f, 'indexed'), decide(cp, f, 'linear'));
          assert.deepEqual(explain(cp, f).decision, decide(cp, f));
        }
      }),
      { numRuns: 600 },
    );
    // The generators are tuned so that rules really decide; a test where defaults decide everything proves little.
    const share = outcomes.rule / (outcomes.rule + outcomes.default);
    assert.ok(share > 0.3, `only ${(share * 100).toFixed(1)}% of generated connections matched a rule`);
  });

  test('matches() and findMismatch() agree on every rule (property)', () => {
    fc.assert(
      fc.property(policy, facts, (p, f) => {
        const cp = compilePolicy(p);
        for (const r of cp.rules) assert.equal(matches(r, f), findMismatch(r, f) === null);
      }),
      { numRuns: 400 },
    );
  });
});

const BASE: ConnectionFacts = {
  direction: 'outgoing',
  protocol: 'tcp',
  application: '/usr/bin/curl',
  uid: 1000,
  user: 'alice',
  localAddress: ip('10.0.0.2'),
  localPort: 40000,
  remoteAddress: ip('93.184.215.14'),
  remotePort: 443,
  remoteHosts: ['example.com'],
  now: NOW,
};

function compiled(yaml: string) {
  return compilePolicy(parsePolicyText(yaml));
}

describe('decide', () => {
  const cases: {
    name: string;
    policy: string;
    facts?: Partial<ConnectionFacts>;
    verdict: string;
    rule: string;
    log: boolean;
  }[] = [
    {
      name: 'out of the box: outgoing allowed and logged',
      policy: 'rules: []',
      verdict: 'allow',
      rule: 'default outgoing',
      log: true,
    },
    {
      name: 'out of the box: incoming denied and logged',
      policy: 'rules: []',
      facts: { direction: 'incoming', localPort: 22, remotePort: 50000 },
      verdict: 'deny',
      rule: 'default incoming',
      log: true,
    },
    {
      name: 'first match wins',
      policy: `rules:
  - { name: a, direction: outgoing, protocol: tcp, remotePorts: 443, action: reject }
  - { name: b, direction: outgoing, action: allow }`,
      verdict: 'reject',
      rule: 'a',
      log: true,
    },
    {
      name: 'disabled rules are skipped',
      policy: `rules:
  - { name: a, enabled: false, direction: outgoing, action: deny }
  - { name: b, direction: outgoing, action: allow }`,
      verdict: 'allow',
      rule: 'b',
      log: false,
    },
    {
      name: 'host name rules match resolved names, wildcard below the domain',
      policy: `rules:
  - { name: apex, direction: outgoing, remote: "*.example.com", action: deny }
  - { name: exact, direction: outgoing, remote: example.com, action: reject }`,
      verdict: 'reject',
      rule: 'exact',
      log: true,
    },
    {
      name: 'expired temporary rules no longer match',
      policy: `rules:
  - { name: temp, direction: outgoing, action: deny, expires: "2026-11-23T11:59:59Z" }`,
      verdict: 'allow',
      rule: 'default outgoing',
      log: true,
    },
    {
      name: 'user by name',
      policy: `rules:
  - { name: bob only, direction: outgoing, user: bob, action: deny }
  - { name: alice, direction: outgoing, user: alice, action: reject }`,
      verdict: 'reject',
      rule: 'alice',
      log: true,
    },
    {
      name: 'IPv6 CIDR',
      policy: `rules:
  - { name: v6, direction: outgoing, remote: "2001:db8::/32", action: deny }`,
      facts: { remoteAddress: ip('2001:db8:1::5'), remoteHosts: [] },
      verdict: 'deny',
      rule: 'v6',
      log: true,
    },
  ];
  for (const c of cases) {
    test(c.name, () => {
      const d = decide(compiled(c.policy), { ...BASE, ...c.facts });
      assert.equal(d.verdict, c.verdict);
      assert.equal(d.ruleName, c.rule);
      assert.equal(d.log, c.log);
    });
  }

  test('monitor mode never blocks but records what the policy says', () => {
    const d = decide(
      compiled('mode: monitor\nrules: [{ name: no, direction: outgoing, action: deny }]'),
      BASE,
    );
    assert.equal(d.verdict, 'allow');
    assert.equal(d.action, 'deny');
    assert.equal(d.log, true);
  });

  test('learning mode allows what no rule decides and proposes a rule', () => {
    const p = compiled(
      'mode: learning\ndefaults: { outgoing: { action: deny } }\nrules: [{ name: no ssh, direction: outgoing, protocol: tcp, remotePorts: 22, action: deny }]',
    );
    const d = decide(p, BASE);
    assert.equal(d.verdict, 'allow');
    assert.equal(d.action, 'deny');
    assert.equal(d.proposal?.application, '/usr/bin/curl');
    assert.deepEqual(d.proposal?.remotePorts, [{ from: 443, to: 443 }]);
    assert.deepEqual(d.proposal?.remote, [{ kind: 'host', name: 'example.com' }]);
    // An explicit deny still denies in learning mode.
    const ssh = decide(p, { ...BASE, remotePort: 22 });
    assert.equal(ssh.verdict, 'deny');
    assert.equal(ssh.proposal, undefined);
  });

  test('conditional rules follow the settings', () => {
    const p = parsePolicyText(
      'rules: [{ name: via syslog, direction: outgoing, action: deny, condition: { setting: syslog.enabled, equals: true } }]',
    );
    assert.equal(decide(compilePolicy(p), BASE).verdict, 'allow');
    assert.equal(decide(compilePolicy(p, { settings: settingsSyslogOn }), BASE).verdict, 'deny');
  });
});

describe('explain', () => {
  test('names the deciding rule and the first failed condition of each earlier rule', () => {
    const p = compiled(`rules:
  - { name: in only, direction: incoming, action: deny }
  - { name: firefox, direction: outgoing, application: /usr/bin/firefox, action: deny }
  - { name: ssh, direction: outgoing, protocol: tcp, remotePorts: 22, action: deny }
  - { name: lan, direction: outgoing, remote: 10.0.0.0/8, action: deny }
  - { name: web, direction: outgoing, protocol: tcp, remotePorts: [80, 443], action: allow }
  - { name: after, direction: outgoing, action: deny }`);
    const e = explain(p, BASE);
    assert.equal(e.decision.ruleName, 'web');
    assert.deepEqual(
      e.skipped.map((s) => [s.name, s.field]),
      [
        ['in only', 'direction'],
        ['firefox', 'application'],
        ['ssh', 'remotePorts'],
        ['lan', 'remote'],
      ],
    );
    assert.match(e.skipped[1]!.reason, /\/usr\/bin\/firefox.*\/usr\/bin\/curl/);
  });
});
