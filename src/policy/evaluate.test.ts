import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { validateSettings } from '../settings/index.js';
import { LearnedHost, remoteFactsOf } from './address-lists.js';
import { applicationIdOf } from './application-ids.js';
import { compilePolicy } from './compile.js';
import { hostListsOf, LearnedName } from './domain-lists.js';
import { decide, findFirstMatchLinear } from './evaluate.js';
import { explain } from './explain.js';
import { findMismatch, matches } from './match.js';
import { parsePolicyText } from './parse.js';
import type { AddressSpec, ConnectionFacts, Policy, Rule } from './rule.js';
import { findFirstMatchIndexed, type RuleIndex } from './rule-index.js';
import {
  facts,
  ip,
  LIST_CONTENTS,
  NOW,
  OTHER_LIST_CONTENTS,
  outgoingTcp,
  policy,
} from './testing/arbitraries.js';

const settingsSyslogOn = validateSettings({ syslog: { enabled: true } });

/**
 * The application numbered as the engine numbers it, and numbered wrongly (another path's number,
 * numbers never given): the index answers `expected` all the same.
 */
function assertNumberedAlike(index: RuleIndex, f: ConnectionFacts, expected: number): void {
  if (f.application === null) return;
  const numbers = [
    applicationIdOf(f.application),
    applicationIdOf('/usr/bin/numbered-elsewhere'),
    -1,
    2 ** 31,
    0.5,
  ];
  for (const applicationId of numbers)
    assert.equal(findFirstMatchIndexed(index, { ...f, applicationId }), expected, `number ${applicationId}`);
}

describe('indexed and linear evaluators', () => {
  test('always pick the same deciding rule and give the same decision (property)', () => {
    const outcomes = { rule: 0, default: 0 };
    let remembered = 0;
    fc.assert(
      fc.property(policy, fc.array(facts, { minLength: 1, maxLength: 20 }), fc.boolean(), (p, fs, syslog) => {
        const cp = compilePolicy(p, {
          lists: LIST_CONTENTS,
          ...(syslog ? { settings: settingsSyslogOn } : {}),
        });
        // The same policy over other list contents: its bits are for another table (a stale refresh).
        const other = compilePolicy(p, { lists: OTHER_LIST_CONTENTS });
        for (const f of fs) {
          const linear = findFirstMatchLinear(cp, f);
          outcomes[linear >= 0 ? 'rule' : 'default']++;
          const indexed = findFirstMatchIndexed(cp.index, f);
          assert.equal(indexed, linear);
          assertNumberedAlike(cp.index, f, linear);
          assert.deepEqual(decide(cp, f, 'indexed'), decide(cp, f, 'linear'));
          assert.deepEqual(explain(cp, f).decision, decide(cp, f));
          // The names as the engine learned them: their lists' bits, current or stale, change nothing.
          const learned = f.remoteHosts.map((n) => new LearnedName(n));
          for (const table of [cp.domainLists, other.domainLists]) {
            const bits = hostListsOf(table, learned);
            if (bits === undefined) continue;
            const g: ConnectionFacts = { ...f, remoteHostLists: bits };
            assert.equal(findFirstMatchLinear(cp, g), linear);
            assert.equal(findFirstMatchIndexed(cp.index, g), linear);
          }
          // The remote as the engine keeps it (one LearnedHost per address): the address's large
          // sets' bits and the names' bits, for this policy or a stale one (a refresh), with the
          // host learned for this address or another one: the same answers, through the bits.
          const host = new LearnedHost(f.remoteAddress);
          host.setNames(learned);
          const elsewhere = new LearnedHost(ip(f.remoteAddress?.version === 6 ? '2001:db8::7' : '10.0.0.2'));
          elsewhere.setNames(learned);
          // The same address parsed apart (the enforcer's parse of an address not remembered).
          const copy = new LearnedHost(f.remoteAddress === null ? null : { ...f.remoteAddress });
          copy.setNames(learned);
          for (const tables of [cp, other]) {
            for (const h of [host, copy, elsewhere]) {
              const g: ConnectionFacts = { ...f, ...remoteFactsOf(tables, h, f.remoteAddress) };
              assert.equal(findFirstMatchLinear(cp, g), linear);
              assert.equal(findFirstMatchIndexed(cp.index, g), linear);
              if (g.remoteAddressLists !== undefined) remembered++;
            }
          }
        }
      }),
      { numRuns: 600 },
    );
    // The generators are tuned so that rules really decide; a test where defaults decide everything proves little.
    const share = outcomes.rule / (outcomes.rule + outcomes.default);
    assert.ok(share > 0.3, `only ${(share * 100).toFixed(1)}% of generated connections matched a rule`);
    assert.ok(remembered > 0, 'no connection carried remembered address-list bits');
  });

  test('find rules of applications whose paths are also names of object properties', () => {
    // Application ids are looked up in a dictionary object: paths such as these must be plain keys.
    const apps = ['__proto__', 'constructor', 'toString', 'hasOwnProperty', '0', '/usr/bin/curl'];
    const p: Policy = {
      mode: 'enforce',
      defaults: { incoming: { action: 'deny', log: true }, outgoing: { action: 'allow', log: false } },
      addressGroups: {},
      rules: apps.map(
        (application, i): Rule => ({
          name: `app-${i}`,
          enabled: true,
          direction: 'outgoing',
          protocol: 'tcp',
          application,
          action: 'deny',
          log: false,
        }),
      ),
    };
    const cp = compilePolicy(p);
    for (const application of [...apps, 'valueOf', '/usr/bin/wget', null]) {
      const f = outgoingTcp({ application });
      const expected = application === null ? -1 : apps.indexOf(application);
      assert.equal(findFirstMatchLinear(cp, f), expected, String(application));
      assert.equal(findFirstMatchIndexed(cp.index, f), expected, String(application));
    }
  });

  test('rules beside the index are decided through the remembered list bits, and searched when not all is lists', () => {
    const p = parsePolicyText(`lists:
  ads: { file: /etc/warden/lists/ads.txt, format: domains }
  many: { file: /etc/warden/lists/many.txt, format: ips }
rules:
  - { name: mixed, direction: outgoing, remote: ["list:ads", "10.0.0.1"], action: deny }
  - { name: nets, direction: outgoing, remote: "list:many", action: reject }
  - { name: rest, direction: outgoing, action: allow }
`);
    const onlyLists = { ...p, rules: p.rules.slice(1) };
    for (const [policyOf, guarded] of [
      [p, false],
      [onlyLists, true],
    ] as const) {
      const cp = compilePolicy(policyOf, { lists: LIST_CONTENTS });
      assert.notEqual(cp.addressLists, null);
      // The tcp outgoing bucket's side rules: one guard for all when each is lists with bits only.
      assert.equal(cp.index.sideGuards[4] !== null, guarded);
      const cases: [string, string[], string][] = [
        ['10.0.0.1', [], guarded ? 'rest' : 'mixed'],
        ['10.0.0.2', [], 'nets'],
        ['2001:db8::7', [], 'nets'],
        ['10.0.0.9', ['example.com'], guarded ? 'rest' : 'mixed'],
        ['10.0.0.9', ['other.org'], 'rest'],
      ];
      for (const [address, names, expected] of cases) {
        const host = new LearnedHost(ip(address));
        host.setNames(names.map((n) => new LearnedName(n)));
        const base: ConnectionFacts = {
          direction: 'outgoing',
          protocol: 'tcp',
          application: null,
          uid: 1000,
          user: 'alice',
          localAddress: ip('10.0.0.5'),
          localPort: 40000,
          remoteAddress: host.address,
          remotePort: 443,
          remoteHosts: names,
          now: NOW,
        };
        const f: ConnectionFacts = { ...base, ...remoteFactsOf(cp, host, base.remoteAddress) };
        assert.equal(f.remoteAddressLists?.table, cp.addressLists);
        for (const g of [base, f]) {
          const at = findFirstMatchIndexed(cp.index, g);
          assert.equal(cp.rules[at]?.rule.name, expected, `${address} ${names.join(',')}`);
          assert.equal(findFirstMatchLinear(cp, g), at);
        }
      }
    }
  });

  test('matches() and findMismatch() agree on every rule (property)', () => {
    fc.assert(
      fc.property(policy, facts, (p, f) => {
        const cp = compilePolicy(p, { lists: LIST_CONTENTS });
        for (const r of cp.rules) assert.equal(matches(r, f), findMismatch(r, f) === null);
      }),
      { numRuns: 400 },
    );
  });

  test('agree on large policies whose port and address segments use jump tables (property)', () => {
    // Hundreds of rules over narrow port and address spaces overlap into hundreds of segments per
    // node, so the jump tables (rule-index.ts) are built and searched, edges of the key spaces included;
    // a few wide ranges cover whole buckets, whose jump entries then name a leaf directly.
    const V4_BASES = [0, 0x0a000000, 0x7fffff00, 0xfffff000];
    const port = fc.oneof(
      fc.integer({ min: 0, max: 2000 }),
      fc.integer({ min: 65000, max: 65535 }),
      fc.integer({ min: 0, max: 65535 }),
    );
    const v4 = fc
      .tuple(
        fc.constantFrom(...V4_BASES),
        fc.oneof(fc.integer({ min: 0, max: 4095 }), fc.integer({ min: 0, max: 0x3ffffff })),
      )
      .map(([b, o]) => Math.min(0xffffffff, b + o));
    const anyV4 = fc.oneof(v4, fc.integer({ min: 0, max: 0xffffffff }));
    const span = <T>(a: fc.Arbitrary<number>, max: number, mk: (from: number, to: number) => T) =>
      fc
        .tuple(a, fc.oneof(fc.integer({ min: 0, max: 300 }), fc.integer({ min: 0, max: max >>> 3 })))
        .map(([from, w]) => mk(from, Math.min(max, from + w)));
    const portRange = span(port, 65535, (from, to) => ({ from, to }));
    const v4Range = span(
      anyV4,
      0xffffffff,
      (first, last): AddressSpec => ({
        kind: 'ip',
        range: { version: 4, first, last },
      }),
    );
    // curl has rules enough for trees of its own; the others a few each, found through one leaf
    // per application (APP_LEAF_MAX in rule-index.ts).
    const fewRuleApps = Array.from({ length: 40 }, (_, i) => `/usr/bin/few${i}`);
    const app = fc.oneof(
      { arbitrary: fc.constantFrom('any', '/usr/bin/curl'), weight: 3 },
      { arbitrary: fc.constantFrom(...fewRuleApps), weight: 1 },
    );
    const bigRule = fc.record({
      direction: fc.constantFrom('incoming', 'outgoing', 'both'),
      protocol: fc.constantFrom('tcp', 'udp', 'tcp+udp'),
      application: app,
      remotePorts: fc.option(fc.array(portRange, { minLength: 1, maxLength: 2 }), { nil: undefined }),
      localPorts: fc.option(fc.array(portRange, { minLength: 1, maxLength: 2 }), { nil: undefined }),
      remote: fc.option(fc.array(v4Range, { minLength: 1, maxLength: 2 }), { nil: undefined }),
      action: fc.constantFrom('allow', 'deny'),
    });
    const bigPolicy = fc.array(bigRule, { minLength: 150, maxLength: 400 }).map(
      (rules): Policy => ({
        mode: 'enforce',
        defaults: { incoming: { action: 'deny', log: true }, outgoing: { action: 'allow', log: false } },
        addressGroups: {},
        rules: rules.map((r, i) => {
          const out: Record<string, unknown> = { name: `big-${i}`, enabled: true, log: false, ...r };
          for (const k of Object.keys(out)) if (out[k] === undefined) delete out[k];
          return out as unknown as Rule;
        }),
      }),
    );
    const bigFacts = fc
      .record({
        direction: fc.constantFrom('incoming', 'outgoing'),
        protocol: fc.constantFrom('tcp', 'udp'),
        application: fc.constantFrom(null, '/usr/bin/curl', ...fewRuleApps.slice(0, 10)),
        localPort: port,
        remotePort: port,
        remote: anyV4,
      })
      .map(
        ({ remote, ...f }): ConnectionFacts => ({
          ...f,
          uid: 1000,
          user: 'alice',
          localAddress: ip('10.0.0.100'),
          remoteAddress: { version: 4, value: remote },
          remoteHosts: [],
          now: NOW,
        }),
      );
    let matched = 0;
    let total = 0;
    fc.assert(
      fc.property(bigPolicy, fc.array(bigFacts, { minLength: 20, maxLength: 60 }), (p, fs) => {
        const cp = compilePolicy(p);
        for (const f of fs) {
          const linear = findFirstMatchLinear(cp, f);
          assert.equal(findFirstMatchIndexed(cp.index, f), linear);
          assertNumberedAlike(cp.index, f, linear);
          total++;
          if (linear >= 0) matched++;
        }
      }),
      { numRuns: 60 },
    );
    assert.ok(matched / total > 0.2, `only ${matched} of ${total} connections matched a rule`);
  });

  test('agree at every edge of the address slices a jump table and its occupancy bitmap cut', () => {
    // Single addresses spread over the space make a jump table with a sparse occupancy bitmap; a
    // range over a quarter of the space fills whole words of it; a few ranges end mid-word.
    const rules: Rule[] = [];
    const add = (first: number, last: number) =>
      rules.push({
        name: `r${rules.length}`,
        enabled: true,
        direction: 'outgoing',
        protocol: 'tcp',
        application: 'any',
        remote: [{ kind: 'ip', range: { version: 4, first, last } }],
        action: 'deny',
        log: false,
      });
    for (let i = 0; i < 60; i++) add(i * 0x04000000 + 0x1234, i * 0x04000000 + 0x1234);
    add(0x40000000, 0x7fffffff);
    add(0x80000000 + 0x00100000, 0x80000000 + 0x05ffffff);
    add(0xfff00000, 0xffffffff);
    const cp = compilePolicy({
      mode: 'enforce',
      defaults: { incoming: { action: 'deny', log: true }, outgoing: { action: 'allow', log: false } },
      addressGroups: {},
      rules,
    });
    const f = (value: number): ConnectionFacts => ({
      ...BASE,
      remoteHosts: [],
      remoteAddress: { version: 4, value },
    });
    let matched = 0;
    for (let edge = 0; edge <= 2 ** 32; edge += 2 ** 20) {
      for (const v of [edge - 1, edge, edge + 0x1234]) {
        if (v < 0 || v > 0xffffffff) continue;
        const linear = findFirstMatchLinear(cp, f(v));
        assert.equal(findFirstMatchIndexed(cp.index, f(v)), linear, `address ${v}`);
        if (linear >= 0) matched++;
      }
    }
    assert.ok(matched > 1000, `only ${matched} addresses matched a rule`);
  });
});

const BASE: ConnectionFacts = outgoingTcp({
  remoteAddress: ip('93.184.215.14'),
  remoteHosts: ['example.com'],
});

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
