import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { compilePolicy } from './compile.js';
import { hostListsOf, LearnedName } from './domain-lists.js';
import { decide } from './evaluate.js';
import { parseListText } from './list-format.js';
import { parsePolicyText } from './parse.js';
import type { ConnectionFacts } from './rule.js';
import { ip, outgoingTcp } from './testing/arbitraries.js';

const BOUNDS = { maxBytes: 1 << 24, maxEntries: 1_000_000 };

const POLICY = parsePolicyText(`lists:
  ads: { file: /etc/warden/lists/ads.txt, format: domains }
  nets: { file: /etc/warden/lists/nets.txt, format: ips }
rules:
  - { name: no ads, direction: outgoing, remote: "list:ads", action: deny }
  - { name: no bad nets, direction: both, remote: "list:nets", action: reject }
  - { name: web, direction: outgoing, protocol: tcp, remotePorts: 443, action: allow }
`);

/** A list of many networks (so it has a range set and its rule sits beside the index), holding `extra`. */
function nets(extra: string): string {
  const lines = Array.from({ length: 300 }, (_, i) => `198.18.${i % 256}.${i < 256 ? 0 : 128}/26`);
  return `${lines.join('\n')}\n${extra}\n2001:db8:${extra === '' ? 'ffff' : '1'}::/48\n`;
}

function compiled(ads: string, netsText: string) {
  return compilePolicy(POLICY, {
    lists: new Map([
      ['ads', parseListText(ads, 'domains', BOUNDS).content],
      ['nets', parseListText(netsText, 'ips', BOUNDS).content],
    ]),
  });
}

function connection(remote: string, names: readonly string[]): ConnectionFacts {
  return outgoingTcp({ remoteAddress: ip(remote), remoteHosts: names });
}

describe('a list refresh decides the next connection', () => {
  test('domain lists: a learned name computes its lists again under the new content', () => {
    const learned = [new LearnedName('cdn.tracker.example')];
    const facts = (table: Parameters<typeof hostListsOf>[0]) => ({
      ...connection('93.184.215.14', ['cdn.tracker.example']),
      remoteHostLists: hostListsOf(table, learned),
    });
    const before = compiled('tracker.example\n', nets(''));
    assert.equal(decide(before, facts(before.domainLists)).ruleName, 'no ads');
    // The list no longer holds the name: the same LearnedName, the new policy's table.
    const after = compiled('other.example\n', nets(''));
    const next = facts(after.domainLists);
    assert.equal(decide(after, next).ruleName, 'web');
    assert.equal(decide(after, next, 'linear').ruleName, 'web');
    // Bits computed before the refresh are for the old table: not used, the name is looked up.
    const stale = facts(before.domainLists);
    assert.equal(decide(after, stale).ruleName, 'web');
    // And back in the list.
    const again = compiled('example\n', nets(''));
    assert.equal(decide(again, facts(again.domainLists)).ruleName, 'no ads');
    assert.equal(decide(again, stale).ruleName, 'no ads');
  });

  test('address lists: the new ranges, IPv4 and IPv6', () => {
    const before = compiled('', nets('203.0.113.0/24'));
    const after = compiled('', nets(''));
    for (const addr of ['203.0.113.77', '2001:db8:1::5']) {
      assert.equal(decide(before, connection(addr, [])).ruleName, 'no bad nets', addr);
      assert.equal(decide(after, connection(addr, [])).ruleName, 'web', addr);
      assert.equal(decide(after, connection(addr, []), 'linear').ruleName, 'web', addr);
    }
    // An address listed in both stays listed.
    assert.equal(decide(after, connection('198.18.3.170', [])).ruleName, 'no bad nets');
    assert.ok(after.rules[1]!.remote!.v4Set !== null, 'the list has a range set');
  });
});
