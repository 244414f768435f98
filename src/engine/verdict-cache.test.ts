import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { compileRuleset } from '../kernel/ruleset.js';
import { DECIDED_FIRST_RULE, DECIDED_RULE } from '../kernel/ruleset-guards.js';
import type { RecordedProcess } from '../kernel/socket-lookup.js';
import { verdictCacheKey } from '../kernel/verdict-cache-key.js';
import { compilePolicy, decide, parsePolicyText } from '../policy/index.js';
import type { ConnectionFacts } from '../policy/rule.js';
import { facts, ip, LIST_CONTENTS, NOW, outgoingTcp, policy } from '../policy/testing/arbitraries.js';
import type { NewLogItem } from '../protocol/log-item.js';
import { defaultSettings } from '../settings/index.js';
import { cacheableApplication, VerdictCache, type VerdictCacheOptions } from './verdict-cache.js';

test('the key has the layout of struct vcache_key (native/bpf_attr.h)', () => {
  const id = '42:2049:123456789012:7:1700000000.123456789:deadbeefcafef00d';
  const k = verdictCacheKey(id, 1000, ip('10.200.0.2'), 443, 5)!;
  assert.equal(k.length, 80);
  assert.equal(k.readBigUInt64LE(0), 123456789012n, 'inode');
  assert.equal(k.readBigInt64LE(8), 1700000000n, 'ctime seconds');
  assert.equal(k.readBigUInt64LE(16), 0xdeadbeefcafef00dn, 'path fingerprint');
  assert.equal(k.readBigUInt64LE(24), 0n, 'everything was read');
  assert.equal(k.readUInt32LE(32), 123456789 & 0x3fffffff);
  assert.deepEqual([k.readUInt32LE(36), k.readUInt32LE(40), k.readInt32LE(44)], [2049, 7, 42]);
  assert.equal(k.readUInt32LE(48), 1000, 'euid');
  assert.deepEqual([...k.subarray(52, 56)], [1, 187, 0, 0], 'port 443 in network order, as user_port reads');
  assert.deepEqual(
    [...k.subarray(56, 72)],
    [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 255, 255, 10, 200, 0, 2],
    'v4 as ::ffff:',
  );
  assert.equal(k.readUInt32LE(72), 5, 'generation');
  const v6 = verdictCacheKey(id, 0, ip('fd00:200::2'), 80, 1)!;
  assert.deepEqual([...v6.subarray(56, 72)], [0xfd, 0, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2]);
  // A mapped address is the IPv4 one (an IPv6 socket connecting to it sends IPv4).
  assert.deepEqual(
    verdictCacheKey(id, 0, ip('::ffff:10.200.0.2'), 443, 5),
    verdictCacheKey(id, 0, ip('10.200.0.2'), 443, 5),
  );
  assert.equal(verdictCacheKey('not an id', 0, ip('10.0.0.1'), 443, 1), null);
  assert.equal(verdictCacheKey(id, 0, ip('10.0.0.1'), 0, 1), null);
});

test('an application is cacheable only when its rules and the any-application rules use key fields alone', () => {
  const cp = (rules: string) =>
    compilePolicy(
      parsePolicyText(`defaults:
  incoming: { action: deny, log: true }
  outgoing: { action: allow, log: true }
rules:
${rules}`),
    );
  const rule = (fields: string) => `  - name: r
    direction: outgoing
    protocol: tcp
    action: allow
${fields
  .split('\n')
  .map((l) => `    ${l}`)
  .join('\n')}
`;
  const plain = cp(rule('application: /usr/bin/curl\nremote: 10.0.0.1\nremotePorts: 443\nuser: 1000'));
  assert.equal(cacheableApplication(plain, '/usr/bin/curl'), true);
  for (const fields of [
    'application: /usr/bin/curl\nremote: example.com',
    'application: /usr/bin/curl\nremote: "*.example.com"',
    'application: /usr/bin/curl\nparent: /usr/bin/bash',
    'application: /usr/bin/curl\nancestor: /usr/bin/bash',
    'application: /usr/bin/curl\narguments: "curl *"',
    'application: /usr/bin/curl\nlocalPorts: 5000',
    'application: /usr/bin/curl\ninterface: [wg0]',
    `application: /usr/bin/curl\nsha256: ${'a'.repeat(64)}`,
    'application: /usr/bin/curl\nexpires: "2999-01-01T00:00:00Z"',
    'remote: example.com', // any application
  ])
    assert.equal(cacheableApplication(cp(rule(fields)), '/usr/bin/curl'), false, fields);
  const ask = cp(rule('application: /usr/bin/curl').replace('action: allow', 'action: ask'));
  assert.equal(cacheableApplication(ask, '/usr/bin/curl'), false, 'ask');
  // Another application's rules, incoming rules and UDP rules do not matter.
  assert.equal(
    cacheableApplication(cp(rule('application: /usr/bin/wget\nremote: example.com')), '/usr/bin/curl'),
    true,
  );
  const udp = cp(rule('remote: example.com').replace('protocol: tcp', 'protocol: udp'));
  assert.equal(cacheableApplication(udp, '/usr/bin/curl'), true);
});

test('a cacheable decision is the same whatever the fields outside the key are (property)', () => {
  const outside = fc.record({
    localPort: fc.constantFrom(null, 22, 5000, 40000),
    remoteHosts: fc.subarray(['a.example.com', 'nas.lan', 'x.a.example.com', 'tracker.example']),
    interface: fc.constantFrom(undefined, null, 'eth0', 'wg0', 'lo'),
    parent: fc.constantFrom(undefined, null, '/usr/bin/bash', '/usr/bin/sshd'),
    ancestors: fc.constantFrom(undefined, [], ['/usr/bin/bash', '/usr/lib/systemd/systemd']),
    arguments: fc.constantFrom(undefined, null, '', 'curl https://x'),
    applicationSha256: fc.constantFrom(undefined, null, 'a'.repeat(64)),
  });
  let compared = 0;
  fc.assert(
    fc.property(policy, facts, outside, (p, f0, other) => {
      const cp = compilePolicy(p, { lists: LIST_CONTENTS });
      if (f0.application === null || f0.remoteAddress === null) return;
      const f: ConnectionFacts = {
        ...f0,
        direction: 'outgoing',
        protocol: 'tcp',
        remotePort: f0.remotePort ?? 443,
      };
      if (!cacheableApplication(cp, f.application!)) return;
      const d = decide(cp, f);
      if (d.verdict !== 'allow' || d.action !== 'allow' || d.proposal !== undefined) return;
      const changed: Record<string, unknown> = { ...f, ...other, now: NOW };
      for (const k of Object.keys(changed)) if (changed[k] === undefined) delete changed[k];
      const again = decide(cp, changed as unknown as ConnectionFacts);
      compared++;
      assert.deepEqual([again.verdict, again.action, again.ruleIndex], [d.verdict, d.action, d.ruleIndex]);
    }),
    { numRuns: 400 },
  );
  assert.ok(compared > 10, `only ${compared} cacheable allows were drawn`);
});

test('the ruleset accepts connections the cache decided before the policy, only with the cache', () => {
  const chainsOf = (text: string, verdictCache: boolean) => {
    const chains = compileRuleset({
      policy: compilePolicy(parsePolicyText(text)),
      settings: defaultSettings(),
      now: NOW,
      verdictCache,
    }).model.chains;
    const rules = (name: string) => chains.find((c) => c.name === name)!.rules;
    return { output: rules('output'), queue: rules('queue_output') };
  };
  assert.match(
    DECIDED_RULE,
    /^meta l4proto tcp meta mark & 0x04000000 == 0x04000000 meta l4proto @warden_live accept$/,
  );
  // A hit leaves the output chain at its second rule (a new connection's): before the other
  // established tests, and before every set lookup of the policy.
  const rules =
    'rules:\n  - { name: web, direction: outgoing, protocol: tcp, remote: 10.9.0.0/16, remotePorts: "80,443", action: deny }\n';
  const on = chainsOf(rules, true);
  const off = chainsOf(rules, false);
  assert.equal(
    DECIDED_FIRST_RULE,
    DECIDED_RULE.replace('meta l4proto tcp ', 'meta l4proto tcp ct state new '),
  );
  assert.equal(on.output[0], 'ct state established meta l4proto != udp accept');
  assert.equal(on.output[1], DECIDED_FIRST_RULE);
  assert.ok(on.output.indexOf('ct state invalid drop') > 1);
  assert.equal(on.output.filter((r) => r.includes('0x04000000')).length, 1);
  assert.deepEqual(
    on.output.filter((r) => r !== DECIDED_FIRST_RULE),
    off.output,
  );
  assert.ok(!on.queue.includes(DECIDED_RULE));
  assert.deepEqual(on.queue, off.queue);
  assert.ok(!off.output.includes(DECIDED_RULE) && !off.queue.includes(DECIDED_RULE));
  // A rule the kernel decides by uid tests the socket's owner, not the key's uid: the bit is tested
  // after the kernel's rules, at the head of queue_output, as before.
  const byUid =
    'rules:\n  - { name: u, direction: outgoing, protocol: tcp, user: 1000, remotePorts: "25", action: deny }\n';
  const uid = chainsOf(byUid, true);
  assert.ok(uid.output.some((r) => r.includes('meta skuid')));
  assert.ok(!uid.output.some((r) => r.includes('0x04000000')));
  assert.equal(uid.queue[0], DECIDED_RULE);
  assert.deepEqual(uid.queue.slice(1), chainsOf(byUid, false).queue);
});

const BOOT_NS = 50e9;

/** struct vcache_event: pid_tgid, boot_ns, cookie, id, uid (little-endian). */
function hitEvent(tgid: number, ageMs: number, cookie: number, id: number, uid: number): Buffer {
  const b = Buffer.alloc(32);
  b.writeUInt32LE(tgid, 0);
  b.writeUInt32LE(tgid, 4);
  b.writeBigUInt64LE(BigInt(BOOT_NS - ageMs * 1e6), 8);
  b.writeBigUInt64LE(BigInt(cookie), 16);
  b.writeUInt32LE(id, 24);
  b.writeUInt32LE(uid, 28);
  return b;
}

/** The cache's maps, their ring holding `ring.events` (which the test sets) as the kernel's would. */
function ringMaps(ring: { events: Buffer }, hits: number): VerdictCacheOptions['maps'] {
  return {
    insert: () => true,
    setGeneration: () => {},
    stats: () => ({ generation: 1, hits, misses: 0, dropped: 0 }),
    drain: (max) => {
      const events = ring.events.subarray(0, Math.min(max, ring.events.length / 32) * 32);
      ring.events = ring.events.subarray(events.length);
      return { events, bootNs: BOOT_NS };
    },
  };
}

test("the hits of one entry in a drain are one item with their count, at most a second's apart", () => {
  // Entry 7 is unknown here (an earlier engine's): its hits are grouped by entry and real uid.
  const ring = {
    events: Buffer.concat([
      hitEvent(100, 2000, 4001, 7, 1000),
      hitEvent(101, 1990, 4002, 7, 1000),
      hitEvent(102, 1980, 4003, 7, 1000),
      hitEvent(103, 1970, 4004, 7, 1001),
      hitEvent(104, 500, 4005, 7, 1000), // 1.5 s after the first of its entry: another item
    ]),
  };
  const logged: NewLogItem[] = [];
  let decided = 0;
  const cache = new VerdictCache({
    maps: ringMaps(ring, 5),
    capacity: 16,
    node: '/usr/bin/node',
    parts: [],
    policy: () => compilePolicy(parsePolicyText('version: 1\nrules: []\n')),
    log: (item) => logged.push(item),
    metrics: { decidedByCache: (n) => (decided += n) },
  });
  const now = Date.now();
  assert.equal(cache.drain(), 5);
  assert.equal(decided, 5, 'every hit is a decision');
  assert.equal(cache.status().unknown, 5);
  assert.deepEqual(
    logged.map((i) => [i.user, i.count]),
    [
      ['1000', 3],
      ['1000', undefined],
      ['1001', undefined],
    ],
  );
  assert.equal(
    logged[0]!.message,
    'allow by the verdict cache, an entry of an earlier policy (3 connections in 20 ms, the first pid 100, socket 4001, the last pid 102, socket 4003)',
  );
  assert.match(logged[1]!.message, /\(pid 104, socket 4005\)$/);
  // Each item's time is its first hit's.
  const at = (item: NewLogItem) => Date.parse(item.time!);
  assert.ok(Math.abs(at(logged[0]!) - (now - 2000)) < 100, logged[0]!.time);
  assert.ok(Math.abs(at(logged[1]!) - (now - 500)) < 100, logged[1]!.time);
  assert.equal(cache.drain(), 0, 'the ring is empty');
  assert.equal(logged.length, 3);
});

test("a hit's item names the remote by the names known when it is logged, not only the inserting decision's", () => {
  const ring: { events: Buffer } = { events: Buffer.alloc(0) };
  const compiled = compilePolicy(
    parsePolicyText(
      'rules:\n  - { name: web, direction: outgoing, protocol: tcp, application: /usr/bin/curl, remotePorts: "443", action: allow, log: true }\n',
    ),
  );
  const logged: NewLogItem[] = [];
  // What the engine's HostNames knows of each address now: a CDN address learned under a second name.
  const known = new Map<string, string[]>([['192.0.2.7', ['a.example']]]);
  const cache = new VerdictCache({
    maps: ringMaps(ring, 0),
    capacity: 16,
    node: '/usr/bin/node',
    parts: [],
    policy: () => compiled,
    log: (item) => logged.push(item),
    namesNow: (address) => known.get(address) ?? [],
  });
  const f = outgoingTcp({ remoteAddress: ip('192.0.2.7'), remoteHosts: ['a.example'] });
  const record = connectRecord();
  const d = decide(compiled, f);
  assert.equal(d.ruleName, 'web');
  const j = {
    verdict: 'accept' as const,
    decision: d,
    facts: f,
    process: { pid: 200, executable: '/usr/bin/curl' },
  };
  assert.ok(cache.offer(j, record, compiled), JSON.stringify(cache.status()));
  ring.events = hitEvent(200, 1, 9001, 1, 1000);
  cache.drain();
  assert.equal(logged.at(-1)!.host, 'a.example');
  known.set('192.0.2.7', ['a.example', 'b.example']);
  ring.events = hitEvent(200, 1, 9001, 1, 1000);
  cache.drain();
  assert.equal(logged.at(-1)!.host, 'a.example, b.example', 'the names known now');
  known.delete('192.0.2.7');
  ring.events = hitEvent(200, 1, 9001, 1, 1000);
  cache.drain();
  assert.equal(logged.at(-1)!.host, 'a.example', "none known now: the decision's");
  assert.equal(logged.length, 3);
});

const EXE_ID = '42:2049:123456789012:7:1700000000.123456789:deadbeefcafef00d';

/** A connect record of the executable EXE_ID by uid 1000, as the BPF programs give it. */
function connectRecord(): RecordedProcess {
  return {
    pid: 200,
    uid: 1000,
    bootNs: 1,
    comm: 'curl',
    hook: 'connect',
    euid: 1000,
    executable: { id: EXE_ID, mount: 42, inode: '123456789012', fsMagic: 0xef53 },
  };
}

/** A cache of up to 16 entries on `maps` for Warden's parts as none, deciding with `policy()`. */
function cacheOn(
  maps: VerdictCacheOptions['maps'],
  policy: () => ReturnType<typeof compilePolicy>,
  log: (item: NewLogItem) => void = () => {},
): VerdictCache {
  return new VerdictCache({ maps, capacity: 16, node: '/usr/bin/node', parts: [], policy, log });
}

/** A cache on keptMaps, deciding with `policy()`, and the items it logs. */
function keptCache(policy: () => ReturnType<typeof compilePolicy>) {
  const maps = keptMaps();
  const logged: NewLogItem[] = [];
  return { cache: cacheOn(maps, policy, (item) => logged.push(item)), maps, logged };
}

/** The cache's maps with the LRU as a Map (key bytes -> id): a key there already is refused, as the kernel's insert does. */
function keptMaps(): VerdictCacheOptions['maps'] & {
  readonly keys: Map<string, number>;
  generation: number;
  events: Buffer;
} {
  const keys = new Map<string, number>();
  const maps = {
    keys,
    generation: 0,
    events: Buffer.alloc(0),
    insert: (key: Buffer, id: number) => {
      const text = key.toString('hex');
      if (keys.has(text)) return false;
      keys.set(text, id);
      return true;
    },
    setGeneration: (generation: number) => {
      maps.generation = generation;
    },
    stats: () => ({ generation: maps.generation, hits: 0, misses: 0, dropped: 0 }),
    drain: () => {
      const events = maps.events;
      maps.events = Buffer.alloc(0);
      return { events, bootNs: BOOT_NS };
    },
  };
  return maps;
}

test('a change keeps the entries the new policy decides alike, once its ruleset is in force, and no other', () => {
  const curl = '/usr/bin/curl';

  const web = `  - { name: web, direction: outgoing, protocol: tcp, application: ${curl}, remotePorts: "443", action: allow, log: true }\n`;
  const cp = (rules: string) => compilePolicy(parsePolicyText(`rules:\n${rules}`));
  let inForce = cp(web);
  const { cache, maps, logged } = keptCache(() => inForce);
  const offer = (remote: string, port: number) => {
    const f = outgoingTcp({ remoteAddress: ip(remote), remotePort: port, uid: 1000 });
    const record = connectRecord();
    const j = {
      verdict: 'accept' as const,
      decision: decide(inForce, f),
      facts: f,
      process: { executable: curl },
    };
    return cache.offer(j, record, inForce);
  };
  const keyOf = (remote: string, port: number, generation: number) =>
    verdictCacheKey(EXE_ID, 1000, ip(remote), port, generation)!.toString('hex');
  // Two entries: port 443 by the rule `web`, port 80 by the default (allow).
  assert.ok(offer('192.0.2.7', 443));
  assert.ok(offer('192.0.2.7', 80));
  assert.equal(maps.generation, 1);
  const change = (rules: string) => {
    inForce = cp(rules);
    cache.clear();
    return inForce;
  };

  // A rule for another program: both entries are decided alike, and inserted under generation 2,
  // but only once the caller says this policy's ruleset is in force.
  const unrelated = change(
    `${web}  - { name: other, direction: outgoing, protocol: tcp, application: /usr/bin/wget, action: deny }\n`,
  );
  assert.equal(maps.generation, 2);
  assert.equal(maps.keys.has(keyOf('192.0.2.7', 443, 2)), false, 'nothing before the ruleset is in force');
  assert.equal(cache.carryOver(1, cp(web)), false, 'another policy than the one in force: nothing');
  assert.equal(cache.carryOver(1, unrelated), true, 'one of two: more are left');
  assert.equal(cache.carryOver(10, unrelated), false);
  assert.ok(maps.keys.has(keyOf('192.0.2.7', 443, 2)) && maps.keys.has(keyOf('192.0.2.7', 80, 2)));
  assert.deepEqual([cache.status().carried, cache.status().notCarried, cache.status().entries], [2, 0, 2]);
  // A hit of a kept entry is logged as the new policy's decision (its rule), like any other entry's.
  maps.events = hitEvent(300, 1, 9001, maps.keys.get(keyOf('192.0.2.7', 443, 2))!, 1000);
  cache.drain();
  assert.equal(logged.length, 1);
  assert.equal(logged[0]!.rule, 'web');
  assert.match(
    logged[0]!.message,
    /^allow by rule "web", decided by the verdict cache \(pid 300, socket 9001\)$/,
  );

  // `web` now refuses: its entry is not kept; the default's is.
  const refused = change(web.replace('action: allow', 'action: reject'));
  assert.equal(cache.carryOver(10, refused), false);
  assert.equal(maps.keys.has(keyOf('192.0.2.7', 443, 3)), false, 'a refused connection is not kept');
  assert.ok(maps.keys.has(keyOf('192.0.2.7', 80, 3)));
  assert.deepEqual([cache.status().carried, cache.status().notCarried], [3, 1]);

  // A rule of the program that uses a host name: none of its decisions may be cached any more.
  const named = change(
    `  - { name: h, direction: outgoing, protocol: tcp, application: ${curl}, remote: [example.org], action: deny }\n`,
  );
  assert.equal(cache.carryOver(10, named), false);
  assert.equal(maps.keys.has(keyOf('192.0.2.7', 80, 4)), false);
  assert.deepEqual([cache.status().carried, cache.status().notCarried], [3, 2]);

  // Two changes before the first one's ruleset: the entries wait for the second, decided under it.
  inForce = cp(web);
  cache.clear(); // generation 5: nothing to carry (the last change kept none)
  assert.ok(offer('192.0.2.8', 443));
  const first = change(web);
  const second = change(
    `${web}  - { name: other, direction: outgoing, protocol: tcp, application: /usr/bin/wget, action: deny }\n`,
  );
  assert.equal(cache.carryOver(10, first), false, 'a change came since: not under the first');
  assert.equal(maps.keys.has(keyOf('192.0.2.8', 443, 7)), false);
  assert.equal(cache.carryOver(10, second), false);
  assert.ok(maps.keys.has(keyOf('192.0.2.8', 443, 7)), 'kept under the second');
});

test('an entry is kept across a change exactly when the new policy would insert the same connection (property)', () => {
  const record = connectRecord();
  let kept = 0;
  let dropped = 0;
  fc.assert(
    fc.property(
      policy,
      policy,
      facts,
      fc.nat(),
      fc.constantFrom('drop', 'add', 'another'),
      (p0, other, f0, n, how) => {
        if (f0.application === null || f0.remoteAddress === null) return;
        // A change as an administrator makes one (a rule gone, a rule added), or another policy altogether.
        const at = n % p0.rules.length;
        const p1 =
          how === 'drop'
            ? { ...p0, rules: p0.rules.filter((_, i) => i !== at) }
            : how === 'add'
              ? { ...p0, rules: [...p0.rules.slice(0, at), other.rules[0]!, ...p0.rules.slice(at)] }
              : other;
        const f: ConnectionFacts = {
          ...f0,
          direction: 'outgoing',
          protocol: 'tcp',
          uid: 1000,
          remotePort: f0.remotePort ?? 443,
          applicationSha256: undefined,
        };
        const before = compilePolicy(p0, { lists: LIST_CONTENTS });
        const after = compilePolicy(p1, { lists: LIST_CONTENTS });
        const judge = (cp: typeof before) => {
          const d = decide(cp, f);
          return {
            verdict: d.verdict === 'allow' ? ('accept' as const) : ('drop' as const),
            decision: d,
            facts: f,
            process: { executable: f.application! },
          };
        };
        let inForce = before;
        const { cache, maps, logged } = keptCache(() => inForce);
        if (!cache.offer(judge(before), record, before)) return;
        inForce = after;
        cache.clear();
        while (cache.carryOver(8, after));
        // What a new decision under the new policy would do with the same connection, in a cache of its own.
        const fresh = cacheOn(keptMaps(), () => after);
        const insertable = fresh.offer(judge(after), record, after);
        assert.equal(cache.status().carried === 1, insertable, JSON.stringify(cache.status()));
        if (insertable) {
          // A hit of the kept entry is logged (or not) as the new policy's decision of the whole facts.
          const d = decide(after, f);
          const id = maps.keys.get(
            verdictCacheKey(EXE_ID, 1000, f.remoteAddress!, f.remotePort!, 2)!.toString('hex'),
          )!;
          maps.events = hitEvent(300, 1, 9001, id, 1000);
          cache.drain();
          assert.deepEqual(
            logged.map((i) => i.rule),
            d.log ? [d.ruleName] : [],
          );
        }
        assert.equal(
          maps.keys.has(verdictCacheKey(EXE_ID, 1000, f.remoteAddress!, f.remotePort!, 2)!.toString('hex')),
          insertable,
        );
        if (insertable) kept++;
        else dropped++;
      },
    ),
    { numRuns: 600 },
  );
  assert.ok(kept > 5 && dropped > 5, `kept ${kept}, dropped ${dropped}: too few of one kind drawn`);
});
