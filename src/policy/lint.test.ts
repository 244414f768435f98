import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { defaultSettings } from '../settings/index.js';
import { compilePolicy } from './compile.js';
import { internalRules } from './internal-rules.js';
import { covers, lint, mayOverlap } from './lint.js';
import { matches } from './match.js';
import { parsePolicyText } from './parse.js';
import { facts, NOW, policy } from './testing/arbitraries.js';

const findings = (yaml: string) =>
  lint(compilePolicy(parsePolicyText(yaml)), { now: NOW }).map((f) => [f.kind, f.rule, f.other ?? null]);

describe('lint', () => {
  test('shadowed: an earlier rule covers all traffic with another action', () => {
    assert.deepEqual(
      findings(`rules:
  - { name: lan, direction: outgoing, remote: 10.0.0.0/8, action: deny }
  - { name: host, direction: outgoing, protocol: tcp, remotePorts: 22, remote: 10.1.2.3, action: allow }`),
      [['shadowed', 'host', 'lan']],
    );
  });

  test('redundant: an earlier rule does the same, or the default would', () => {
    assert.deepEqual(
      findings(`rules:
  - { name: web, direction: outgoing, protocol: tcp, remotePorts: "1-1024", action: deny }
  - { name: https, direction: outgoing, protocol: tcp, remotePorts: 443, action: reject }
  - { name: ssh, direction: outgoing, protocol: tcp, remotePorts: 22, action: deny }
  - { name: out ok, direction: outgoing, action: allow, log: true }`),
      [
        ['shadowed', 'https', 'web'],
        ['redundant', 'ssh', 'web'],
        // "out ok" is the default anyway; it also overlaps "web" (but not the dead rules below web).
        ['conflict', 'out ok', 'web'],
        ['redundant', 'out ok', null],
      ],
    );
  });

  test('not redundant when a later rule would decide otherwise', () => {
    assert.deepEqual(
      findings(`rules:
  - { name: allow dns, direction: outgoing, protocol: udp, remotePorts: 53, action: allow, log: true }
  - { name: no udp, direction: outgoing, protocol: udp, action: deny }`),
      [['conflict', 'no udp', 'allow dns']],
    );
    // A host name may resolve to an address a later rule names: keep the earlier rule.
    assert.deepEqual(
      findings(`rules:
  - { name: by name, direction: outgoing, remote: example.com, action: allow, log: true }
  - { name: by address, direction: outgoing, remote: 93.184.215.0/24, action: deny }`),
      [],
    );
  });

  test('conflict: overlapping allow and block, neither covering the other', () => {
    assert.deepEqual(
      findings(`rules:
  - { name: curl, direction: outgoing, application: /usr/bin/curl, action: deny }
  - { name: https, direction: outgoing, protocol: tcp, remotePorts: 443, action: allow }`),
      [['conflict', 'https', 'curl']],
    );
  });

  test('deny and reject do not conflict: both block', () => {
    assert.deepEqual(
      findings(`rules:
  - { name: a, direction: outgoing, application: /usr/bin/curl, action: deny }
  - { name: b, direction: outgoing, protocol: tcp, remotePorts: 443, action: reject }`),
      [],
    );
  });

  test('never-matches: expired rules and empty groups', () => {
    assert.deepEqual(
      findings(`addressGroups: { nothing: [] }
rules:
  - { name: old, direction: outgoing, action: deny, expires: "2020-01-01T00:00:00Z" }
  - { name: void, direction: outgoing, remote: "@nothing", action: deny }`),
      [
        ['never-matches', 'old', null],
        ['never-matches', 'void', null],
      ],
    );
  });

  test('internal rules can shadow user rules', () => {
    const host = {
      executables: { engine: '/e', console: '/c', assistant: '/a' },
      environment: {},
      etcEnvironment: '',
    };
    const p = parsePolicyText(
      'rules: [{ name: no engine dns, direction: outgoing, protocol: udp, application: /e, remotePorts: 53, action: deny }]',
    );
    const cp = compilePolicy(p, { internalRules: internalRules(defaultSettings(), host, p) });
    const [f] = lint(cp, { now: NOW });
    assert.equal(f?.kind, 'shadowed');
    assert.equal(f?.other, 'internal: DNS queries (engine)');
  });

  test('covers() is sound: when A covers B, every connection B matches, A matches too (property)', () => {
    fc.assert(
      fc.property(policy, fc.array(facts, { minLength: 30, maxLength: 30 }), (p, fs) => {
        const rules = compilePolicy(p).rules.filter((r) => r.active && !r.expires);
        for (const a of rules) {
          for (const b of rules) {
            if (a === b || !covers(a, b)) continue;
            for (const f of fs)
              if (matches(b, f)) assert.ok(matches(a, f), `${a.rule.name} covers ${b.rule.name}`);
          }
        }
      }),
      { numRuns: 150 },
    );
  });

  test('mayOverlap() is sound: rules it calls disjoint never match the same connection (property)', () => {
    fc.assert(
      fc.property(policy, fc.array(facts, { minLength: 30, maxLength: 30 }), (p, fs) => {
        const rules = compilePolicy(p).rules.filter((r) => r.active);
        for (const a of rules) {
          for (const b of rules) {
            if (mayOverlap(a, b)) continue;
            for (const f of fs)
              assert.ok(!(matches(a, f) && matches(b, f)), `${a.rule.name} and ${b.rule.name} both match`);
          }
        }
      }),
      { numRuns: 150 },
    );
  });

  test('program context: a glob of only stars, a narrower context is not covered', () => {
    assert.deepEqual(
      findings(`rules:
  - { name: all args, direction: outgoing, arguments: "**", action: allow, log: true }
  - { name: from bash, direction: outgoing, parent: /usr/bin/bash, action: deny }
  - { name: from bash too, direction: outgoing, parent: /usr/bin/bash, protocol: tcp, action: allow, log: true }
  - { name: from zsh, direction: outgoing, parent: /usr/bin/zsh, action: allow, log: true }`),
      [
        ['any-arguments', 'all args', null],
        ['conflict', 'from bash', 'all args'],
        ['shadowed', 'from bash too', 'from bash'],
        ['redundant', 'from zsh', null],
      ],
    );
  });
});
