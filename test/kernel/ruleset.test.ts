/**
 * The ruleset compiler against golden files (test/fixtures/kernel/NAME.yaml → NAME.nft; regenerate with
 * UPDATE_GOLDEN=1), every golden syntax-checked by the kernel's own nft (`nft -c`) inside a throwaway
 * namespace, and a property: random policies always compile to text nft accepts.
 */
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { parse } from 'yaml';
import { MARK_MASK, MARK_QUEUE, MARK_REJECT, withWardenBits } from '../../src/kernel/marks.js';
import { type CompiledRuleset, compileRuleset } from '../../src/kernel/ruleset.js';
import { compilePolicy, internalRules, validatePolicy } from '../../src/policy/index.js';
import { NOW, policy as policyArb } from '../../src/policy/testing/arbitraries.js';
import { validateSettings } from '../../src/settings/index.js';
import { repoRoot } from '../repo-root.js';
import { createNetnsPair, kernelTestsUnavailable } from './netns.js';

const FIXTURES = join(repoRoot(import.meta.url), 'test', 'fixtures', 'kernel');
const HOST = {
  environment: {},
  etcEnvironment: '',
  executables: {
    engine: '/usr/sbin/wardend',
    console: '/usr/bin/warden',
    assistant: '/usr/libexec/warden-assist',
  },
};

interface Fixture {
  policy?: unknown;
  settings?: unknown;
  internal?: boolean;
  now?: string;
  features?: { nativeQueue: boolean };
}

export function compileFixture(text: string): CompiledRuleset {
  const f = (parse(text) ?? {}) as Fixture;
  const settings = validateSettings(f.settings ?? {});
  const policy = compilePolicy(validatePolicy(f.policy ?? {}), {
    settings,
    internalRules: f.internal ? internalRules(settings, HOST, undefined) : [],
  });
  return compileRuleset({
    policy,
    settings,
    now: f.now === undefined ? NOW : Date.parse(f.now),
    ...(f.features ? { features: f.features } : {}),
  });
}

const fixtures = readdirSync(FIXTURES)
  .filter((n) => n.endsWith('.yaml'))
  .sort();
const skip = kernelTestsUnavailable();

describe('ruleset goldens', () => {
  for (const name of fixtures) {
    test(name, () => {
      const out = compileFixture(readFileSync(join(FIXTURES, name), 'utf8'));
      const golden = join(FIXTURES, name.replace(/\.yaml$/, '.nft'));
      if (process.env.UPDATE_GOLDEN === '1') writeFileSync(golden, out.nft);
      assert.equal(
        out.nft,
        readFileSync(golden, 'utf8'),
        `${name}: run with UPDATE_GOLDEN=1 to accept changes`,
      );
    });
  }

  test('every golden passes nft -c in a throwaway namespace', { skip }, () => {
    const pair = createNetnsPair('rs');
    try {
      for (const name of fixtures) {
        if (name.startsWith('native-')) continue; // this kernel has no native queue (kernel-notes.md)
        const text = readFileSync(join(FIXTURES, name.replace(/\.yaml$/, '.nft')), 'utf8');
        pair.run(pair.client, 'nft', ['-c', '-f', '-'], text);
      }
    } finally {
      pair.close();
    }
  });
});

describe('ruleset compiler', () => {
  const kernelRules = () => compileFixture(readFileSync(join(FIXTURES, 'kernel-rules.yaml'), 'utf8'));

  test('the table is replaced in one transaction and nothing else is named', () => {
    const { nft } = kernelRules();
    const lines = nft.split('\n').filter((l) => /^(table|delete|flush|add)\b/.test(l));
    assert.deepEqual(lines, ['table inet warden {}', 'delete table inet warden', 'table inet warden {']);
  });

  test('rule names never reach the nft text; prefixes name the run by a hash', () => {
    const { nft } = kernelRules();
    for (const name of ['block a', 'browser', 'web out', 'nobody']) assert.ok(!nft.includes(name), name);
    assert.match(nft, /log group 4334 prefix "warden [0-9a-f]{8} deny " drop/);
  });

  test('expired and disabled rules are left out; the next expiry is reported', () => {
    const out = kernelRules();
    assert.equal(out.nextChange, Date.parse('2026-11-23T13:00:00Z'));
    assert.ok(out.nft.includes('th dport 2222'));
    assert.ok(!out.nft.includes('2223'));
    assert.equal(out.stats.skippedRules, 2);
  });

  test('the queue rule matches MARK_QUEUE in Warden bits, bypass only when failing open', () => {
    const out = kernelRules();
    assert.deepEqual(out.queue?.ruleArgs, [
      ...['-m', 'mark', '--mark', '0x01000000/0x0f000000'],
      ...['-j', 'NFQUEUE', '--queue-num', '0', '--queue-bypass'],
    ]);
    const closed = compileFixture(readFileSync(join(FIXTURES, 'learning-closed.yaml'), 'utf8'));
    assert.ok(!closed.queue?.v4.includes('bypass'));
    assert.match(closed.queue?.v4 ?? '', /--queue-num 7/);
    assert.equal(compileFixture('policy: {}\nfeatures: { nativeQueue: true }').queue, null);
  });

  test('everything that needs the engine passes the flood limit; limits at 0 leave it out', () => {
    const { nft, expect } = kernelRules();
    assert.match(
      nft,
      /update @rate_out \{ meta skuid limit rate over 100\/second burst 200 packets \} goto flood_output/,
    );
    assert.match(nft, /update @rate_in6 \{ ip6 saddr & ffff:ffff:ffff:ffff:: limit rate over 50\/second/);
    assert.ok(expect.dynamicSets?.includes('flood_out'));
    const base = (text: string, chain: string) => text.split(`\tchain ${chain} {`)[1]!.split('\t}')[0]!;
    for (const chain of ['output', 'input'])
      assert.ok(
        !base(nft, chain).includes('0x01000000 accept'),
        `${chain} marks only through queue_${chain}`,
      );
    const off = compileFixture(
      'settings: { enforcement: { floodOutgoingPerUid: 0, floodIncomingPerSource: 0 } }\npolicy: {}',
    );
    assert.ok(!off.nft.includes('limit rate over'));
    assert.ok(!off.nft.includes('flood_'));
    assert.deepEqual(off.expect.dynamicSets, ['udp_owner4', 'udp_owner6']);
  });

  test('established UDP goes out only for a uid recorded as the owner of its flow', () => {
    const { nft } = kernelRules();
    const output = nft.split('\tchain output {')[1]!.split('\t}')[0]!;
    assert.ok(!output.includes('ct state established,related accept'), 'no blanket accept on output');
    assert.match(output, /ct state established meta l4proto != udp accept/);
    assert.match(output, /meta skuid @udp_owner4 accept/);
    // The owners are recorded after the reject rules, in the same base chain (after the queue's 150).
    const reject = nft.split('\tchain reject_output {')[1]!.split('\t}')[0]!.split('\n\t\t').slice(1);
    assert.match(reject[0]!, /^type filter hook output priority 200;/);
    // A packet neither to refuse nor UDP leaves it at once.
    assert.equal(reject[1], 'meta l4proto != udp meta mark & 0x0f000000 != 0x02000000 accept');
    assert.match(reject[2]!, /reject with tcp reset$/);
    assert.match(reject[3]!, /reject with icmpx admin-prohibited$/);
    assert.match(reject[4]!, /^ct direction original meta nfproto ipv4 update @udp_owner4 /);
    assert.match(reject[5]!, /^ct direction original meta nfproto ipv6 update @udp_owner6 /);
    const rejectIn = nft.split('\tchain reject_input {')[1]!.split('\n\t\t');
    assert.equal(rejectIn[2], 'meta mark & 0x0f000000 != 0x02000000 accept');
    assert.ok(!nft.includes('owner_output'), 'no base chain of its own');
    // Every established rule only accepts: the established TCP packet leaves at the first.
    const rules = output.split('\n\t\t').slice(2);
    assert.equal(rules[0], 'ct state established meta l4proto != udp accept');
  });

  test('marks: Warden bits are disjoint, and a verdict keeps the other bits', () => {
    assert.equal(MARK_QUEUE & MARK_REJECT, 0);
    assert.equal(MARK_QUEUE & ~MARK_MASK, 0);
    assert.equal(withWardenBits(0xf1000abc, MARK_REJECT), 0xf2000abc);
  });

  test('10,000 simple rules compile to a handful of nft rules', () => {
    const rules = Array.from({ length: 10_000 }, (_, i) => ({
      name: `r${i}`,
      direction: 'outgoing',
      protocol: 'tcp',
      remotePorts: 1000 + (i % 500),
      remote: `10.${(i >> 8) & 255}.${i & 255}.1`,
      action: i < 5000 ? 'deny' : 'allow',
    }));
    const settings = validateSettings({});
    const policy = compilePolicy(validatePolicy({ rules }), { settings });
    const started = performance.now();
    const out = compileRuleset({ policy, settings, now: NOW });
    const ms = performance.now() - started;
    // Compared with an empty policy: the guard chains (flood limits, UDP flow owners) are fixed.
    const empty = compileRuleset({
      policy: compilePolicy(validatePolicy({}), { settings }),
      settings,
      now: NOW,
    });
    const added = out.stats.nftRules - empty.stats.nftRules;
    assert.ok(added < 20, `${added} rules`);
    assert.equal(out.stats.elements, 10_000);
    assert.ok(ms < 3000, `${ms} ms`);
  });

  test('random policies compile, and a sample passes nft -c', () => {
    const settings = validateSettings({});
    const samples: string[] = [];
    fc.assert(
      fc.property(policyArb, fc.boolean(), (p, withInternal) => {
        const policy = compilePolicy(p, {
          settings,
          internalRules: withInternal ? internalRules(settings, HOST, undefined) : [],
        });
        const out = compileRuleset({ policy, settings, now: NOW });
        assert.ok(out.nft.endsWith('}\n'));
        if (samples.length < 30) samples.push(out.nft);
      }),
      { numRuns: 200 },
    );
    if (skip !== undefined) return;
    const pair = createNetnsPair('rp');
    try {
      for (const text of samples) pair.run(pair.client, 'nft', ['-c', '-f', '-'], text);
    } finally {
      pair.close();
    }
  });
});
