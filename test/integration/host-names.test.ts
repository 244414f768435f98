/** Host names against a real DNS exchange with a stand-in server on loopback. */

import assert from 'node:assert/strict';
import { createSocket } from 'node:dgram';
import { after, before, test } from 'node:test';
import { HostNames } from '../../src/engine/host-names.js';
import { type DnsStandIn, reverseName, startDnsStandIn } from '../support/dns-server.js';

let dns: DnsStandIn;
before(async () => {
  dns = await startDnsStandIn();
});
after(() => dns.close());

test('exact names resolve to their addresses, IPv4 and IPv6, and map back', async () => {
  dns.records.set('example.org', [
    { type: 'A', value: '10.200.0.9', ttl: 300 },
    { type: 'AAAA', value: 'fd00:200::9', ttl: 300 },
  ]);
  dns.records.set('mirror.example.org', [{ type: 'A', value: '10.200.0.9', ttl: 300 }]);
  const names = new HostNames({ servers: [dns.address] });
  await names.watch(['Example.org', 'mirror.example.org', 'missing.example']);
  assert.deepEqual((await names.namesOf('10.200.0.9')).sort(), ['example.org', 'mirror.example.org']);
  assert.deepEqual(await names.namesOf('fd00:200::9'), ['example.org']);
  assert.deepEqual(await names.namesOf('10.200.0.8'), []);
  names.close();
});

test('names expire with their TTL and are resolved again; a moved name no longer maps to its old address', async () => {
  let now = 1_000_000;
  dns.records.set('moving.example', [{ type: 'A', value: '10.200.0.20', ttl: 60 }]);
  const names = new HostNames({ servers: [dns.address], now: () => now });
  await names.watch(['moving.example']);
  assert.deepEqual(await names.namesOf('10.200.0.20'), ['moving.example']);
  now += 61_000;
  assert.deepEqual(await names.namesOf('10.200.0.20'), [], 'expired with its TTL');
  dns.records.set('moving.example', [{ type: 'A', value: '10.200.0.21', ttl: 60 }]);
  await names.watch(['moving.example']);
  assert.deepEqual(await names.namesOf('10.200.0.21'), ['moving.example']);
  assert.deepEqual(await names.namesOf('10.200.0.20'), []);
  names.close();
});

test('a policy change re-resolves only the names that are new or due, not every name again', async () => {
  let now = 2_000_000;
  dns.records.set('kept.example', [{ type: 'A', value: '10.200.0.40', ttl: 300 }]);
  dns.records.set('added.example', [{ type: 'A', value: '10.200.0.41', ttl: 300 }]);
  const names = new HostNames({ servers: [dns.address], now: () => now });
  await names.watch(['kept.example']);
  const asked = (name: string) => dns.questions.filter((q) => q.endsWith(` ${name}`)).length;
  const keptBefore = asked('kept.example');
  now += 10_000;
  await names.watch(['kept.example', 'added.example']);
  assert.equal(asked('kept.example'), keptBefore, 'a name within its TTL is not asked again');
  assert.ok(asked('added.example') > 0);
  assert.deepEqual(await names.namesOf('10.200.0.41'), ['added.example']);
  assert.deepEqual(await names.namesOf('10.200.0.40'), ['kept.example']);
  names.close();
});

test('with a wildcard in the policy, the PTR name of an address is looked up once, confirmed forwards and cached', async () => {
  dns.records.set(reverseName('10.200.0.30'), [{ type: 'PTR', value: 'ads.tracker.example', ttl: 300 }]);
  dns.records.set('ads.tracker.example', [{ type: 'A', value: '10.200.0.30', ttl: 300 }]);
  const names = new HostNames({ servers: [dns.address] });
  await names.watch(['*.tracker.example']);
  const before = dns.questions.length;
  assert.deepEqual(await names.namesOf('10.200.0.30'), ['ads.tracker.example']);
  assert.deepEqual(await names.namesOf('10.200.0.30'), ['ads.tracker.example']);
  assert.equal(dns.questions.length - before, 2, 'one PTR and one A question for two lookups');
  names.close();
});

test("an address's PTR name is not believed unless that name resolves back to it (the reverse zone is the address owner's)", async () => {
  // The owner of 10.200.0.66 names it under a domain a rule allows; that domain's DNS says otherwise.
  dns.records.set(reverseName('10.200.0.66'), [
    { type: 'PTR', value: 'www.bank.example', ttl: 300 },
    { type: 'PTR', value: 'own.attacker.example', ttl: 300 },
  ]);
  dns.records.set('www.bank.example', [{ type: 'A', value: '10.200.0.67', ttl: 300 }]);
  dns.records.set('own.attacker.example', [{ type: 'A', value: '10.200.0.66', ttl: 300 }]);
  const names = new HostNames({ servers: [dns.address] });
  await names.watch(['*.bank.example', '*.attacker.example']);
  assert.deepEqual(await names.namesOf('10.200.0.66'), ['own.attacker.example']);
  names.close();
});

test('a flood of new addresses does not flood DNS: reverse lookups under way are bounded', async () => {
  // A server that never answers: every lookup stays under way until the resolver gives up.
  const silent = createSocket('udp4');
  let questions = 0;
  silent.on('message', () => questions++);
  await new Promise<void>((r) => silent.bind(0, '127.0.0.1', r));
  const names = new HostNames({ servers: [`127.0.0.1:${silent.address().port}`], reverseTimeoutMs: 20 });
  try {
    await names.watch(['*.example.org']);
    await Promise.all(Array.from({ length: 200 }, (_, i) => names.namesOf(`10.200.${i >> 8}.${i & 255}`)));
    await new Promise((r) => setTimeout(r, 300));
    assert.ok(questions > 0 && questions <= 64, `${questions} questions for 200 addresses`);
  } finally {
    names.close();
    silent.close();
  }
});

test('a flood of new addresses does not take the names of an address known before when they are due again', async () => {
  let now = 3_000_000;
  dns.records.set(reverseName('10.200.0.31'), [{ type: 'PTR', value: 'cdn.known.example', ttl: 300 }]);
  dns.records.set('cdn.known.example', [{ type: 'A', value: '10.200.0.31', ttl: 300 }]);
  const names = new HostNames({ servers: [dns.address], now: () => now, reverseTimeoutMs: 20 });
  try {
    await names.watch(['*.known.example']);
    assert.deepEqual(await names.namesOf('10.200.0.31'), ['cdn.known.example']);
    // New addresses whose reverse lookups never end hold every lookup slot...
    const flood = Array.from({ length: 100 }, (_, i) => `10.200.2.${i}`);
    for (const a of flood) dns.unanswered.add(reverseName(a));
    await Promise.all(flood.map((a) => names.namesOf(a)));
    // ...when the known address's names are due: it keeps them until DNS can be asked again.
    now += 24 * 3_600_000;
    assert.deepEqual(await names.namesOf('10.200.0.31'), ['cdn.known.example']);
  } finally {
    names.close();
  }
});
