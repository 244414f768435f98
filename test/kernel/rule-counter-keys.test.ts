/**
 * Per-rule kernel counters mapped back to rules by the element keys (issue 14 item 4, issue 12
 * goal 3): a set element carries no comment naming its rule; the engine decodes each dumped
 * element's key (src/kernel/ruleset-counters.ts) and looks it up in the compiled ruleset. Real
 * connections in a namespace pair hit every kind of counted set the compiler writes: hash sets of
 * concatenated points (IPv4, IPv6, a uid in host byte order, a local port), concatenated interval
 * sets (IPv4 and IPv6 port ranges), single-field interval sets (networks, where the kernel keeps
 * start and end elements apart) and a single-field hash set (addresses), and each rule must read exactly the connections it decided; the
 * counts stay across a one-rule change.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { fixture } from './fixture-process.js';
import {
  CLIENT_ADDR,
  createNetnsPair,
  kernelTestsUnavailable,
  listenOn,
  type NetnsPair,
  SERVER_ADDR,
  SERVER_ADDR6,
  tcpConnect,
} from './netns.js';

const skip = kernelTestsUnavailable();
const NOBODY = 65534;
/** A second address of the server namespace, for the rule of single addresses. */
const SECOND_ADDR = '10.200.0.3';

const out = { direction: 'outgoing', protocol: 'tcp', action: 'allow' };
const RULES = [
  { ...out, name: 'v4 points', remote: SERVER_ADDR, remotePorts: [8201, 8202] },
  { ...out, name: 'v6 points', remote: SERVER_ADDR6, remotePorts: [8203, 8204] },
  { ...out, name: 'v4 port ranges', remote: '10.200.0.0/24', remotePorts: ['8210-8219', '8230-8231'] },
  { ...out, name: 'nobody', user: NOBODY, remotePorts: [8240, 8241] },
  { direction: 'incoming', protocol: 'tcp', action: 'allow', name: 'local ports', localPorts: [8250, 8251] },
  { ...out, name: 'v6 port ranges', remote: 'fd00:200::/64', remotePorts: ['8260-8269', 8280] },
  { ...out, name: 'never', remote: SERVER_ADDR, remotePorts: [8298, 8299] },
  {
    direction: 'outgoing',
    action: 'allow',
    name: 'v4 networks',
    remote: ['10.200.0.0/25', '198.51.100.0/24'],
  },
  { direction: 'outgoing', action: 'allow', name: 'v6 networks', remote: ['fd00:200::/64', '2001:db8::/32'] },
  // Points of one field (a hash set keyed by the address alone), met before the networks' ranges.
  { direction: 'outgoing', action: 'allow', name: 'v4 hosts', remote: [SECOND_ADDR, '192.0.2.7'] },
];
const DEFAULTS = { incoming: { action: 'allow', log: false }, outgoing: { action: 'allow', log: false } };

describe('rule counters mapped back to rules by element keys, with real connections', { skip }, () => {
  let pair: NetnsPair;
  let agent: ReturnType<typeof fixture>;
  let id = 0;
  const ask = async (request: Record<string, unknown>) => {
    const n = ++id;
    agent.send(JSON.stringify({ id: n, ...request }));
    const answer = await agent.next((l) => l.id === n, `answer ${n}`, 20_000);
    assert.equal(answer.error, undefined, String(answer.error));
    return answer;
  };
  const counts = async () => (await ask({ read: true })).counts as Record<string, number>;
  const connect = (address: string, port: number) =>
    assert.equal(tcpConnect(pair, pair.client, address, port), 'connected', `${address} port ${port}`);
  const connectAsNobody = (port: number) =>
    assert.equal(
      pair.run(pair.client, process.execPath, [
        '-e',
        `process.setgid(${NOBODY}); process.setuid(${NOBODY});
         const s = require('node:net').connect(${port}, '${SERVER_ADDR}');
         s.setTimeout(1500, () => { process.stdout.write('timeout'); process.exit(0); });
         s.on('connect', () => { process.stdout.write('connected'); process.exit(0); });
         s.on('error', (e) => { process.stdout.write(e.code); process.exit(0); });`,
      ]),
      'connected',
      `port ${port} as uid ${NOBODY}`,
    );

  before(async () => {
    pair = createNetnsPair('ck');
    pair.run(pair.server, 'ip', ['addr', 'add', `${SECOND_ADDR}/24`, 'dev', 'wd1']);
    await listenOn(
      pair,
      pair.server,
      [8201, 8202, 8203, 8204, 8215, 8231, 8240, 8241, 8265, 8280, 8290, 8291],
    );
    await listenOn(pair, pair.client, [8250]);
    agent = fixture(pair, pair.client, 'ruleset-agent.js', []);
    await agent.next((l) => l.event === 'ready', 'ready');
  });
  after(() => {
    agent?.close();
    pair?.close();
  });

  test('every kind of counted set: each rule reads the connections it decided', async () => {
    assert.equal((await ask({ rules: RULES, defaults: DEFAULTS })).how, 'replaced');
    const table = pair.run(pair.client, 'nft', ['list', 'table', 'inet', 'warden']);
    assert.doesNotMatch(table, /comment/, 'no element names its rule');
    assert.equal(Object.keys(await counts()).length, 0, 'nothing counted yet');

    connect(SERVER_ADDR, 8201);
    connect(SERVER_ADDR, 8202);
    for (const port of [8203, 8204, 8203]) connect(SERVER_ADDR6, port);
    connect(SERVER_ADDR, 8215);
    connect(SERVER_ADDR, 8231);
    connectAsNobody(8240);
    connectAsNobody(8241);
    for (let i = 0; i < 2; i++)
      assert.equal(tcpConnect(pair, pair.server, CLIENT_ADDR, 8250), 'connected', 'incoming to 8250');
    connect(SERVER_ADDR6, 8265);
    connect(SERVER_ADDR6, 8280);
    connect(SERVER_ADDR, 8290);
    connect(SERVER_ADDR6, 8291);
    for (let i = 0; i < 3; i++) connect(SECOND_ADDR, 8290);

    assert.deepEqual(await counts(), {
      'user v4 points': 2,
      'user v6 points': 3,
      'user v4 port ranges': 2,
      'user nobody': 2,
      'user local ports': 2,
      'user v6 port ranges': 2,
      'user v4 networks': 1,
      'user v6 networks': 1,
      'user v4 hosts': 3,
    });
  });

  test('a one-rule change keeps the counters of the sets it leaves, and maps them by the new ruleset', async () => {
    const added = {
      direction: 'outgoing',
      protocol: 'udp',
      remotePorts: 7,
      action: 'deny',
      name: 'new first',
    };
    assert.equal((await ask({ rules: [added, ...RULES], defaults: DEFAULTS })).how, 'changed');
    connect(SERVER_ADDR, 8202);
    const after = await counts();
    assert.equal(after['user v4 points'], 3, 'counted on from 2 after the change');
    assert.equal(after['user v6 points'], 3);
    assert.equal(after['user v4 networks'], 1);
    assert.equal(after['user never'], undefined);
  });
});
