/**
 * Remote administration across a real network: a real AdminServer in the server namespace
 * (10.200.0.2 / fd00:200::2) and a real EngineClient in the client namespace, each in its own
 * Node process (test/kernel/fixtures), talking over the veth pair.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { fixture, type Line } from './fixture-process.js';
import {
  createNetnsPair,
  kernelTestsUnavailable,
  type NetnsPair,
  SERVER_ADDR,
  SERVER_ADDR6,
} from './netns.js';

const skip = kernelTestsUnavailable();

async function startEngine(pair: NetnsPair, remote: boolean) {
  const engine = fixture(pair, pair.server, 'admin-engine.js', [remote ? 'remote' : 'local']);
  const port = (await engine.next((l) => l.ready === true, 'ready line')).port as number;
  const counters = async () => {
    const n = engine.lines.length;
    engine.send('{"counters":true}');
    const l = await engine.next((x) => engine.lines.indexOf(x) >= n && 'counters' in x, 'counters');
    const c: Record<string, number> = { ...(l.counters as Record<string, number>) };
    c.consoles = l.consoles as number;
    return c;
  };
  return { engine, port, counters };
}

/** Every emitted `item-N` message the console delivered, in order. */
const delivered = (lines: Line[]) =>
  lines
    .filter((l) => l.event === 'items')
    .flatMap((l) => l.messages as string[])
    .filter((m) => m.startsWith('item-'));

test('remote administration disabled: the engine refuses a remote console itself', { skip }, async () => {
  const pair = createNetnsPair('ra');
  try {
    const { engine, port, counters } = await startEngine(pair, false);
    const console_ = fixture(pair, pair.client, 'admin-console.js', [SERVER_ADDR, String(port)]);
    const error = await console_.next((l) => l.event === 'error', 'login error');
    assert.equal(error.code, 'WARDEN_E_REMOTE_DISABLED');
    assert.match(error.message as string, /remote administration is disabled/);
    engine.send('{"emit":20}');
    const c = await counters();
    assert.equal(c.consoles, 0);
    assert.equal(c.sent, 0, 'nothing is pushed to a refused console');
    assert.equal(c.itemsSent, 0);
  } finally {
    pair.close();
  }
});

test('remote administration enabled: login, logs over UDP, gap backfill, end of identifier', {
  skip,
}, async () => {
  const pair = createNetnsPair('ra');
  try {
    const { engine, port, counters } = await startEngine(pair, true);
    // Datagram 1 is the registration's acknowledgement; dropping 3 makes a gap in the items.
    const console_ = fixture(pair, pair.client, 'admin-console.js', [
      SERVER_ADDR,
      String(port),
      '',
      JSON.stringify({ drop: [3] }),
    ]);
    await console_.next((l) => l.event === 'login', 'login');
    await console_.next((l) => l.event === 'transport' && l.transport === 'udp', 'UDP transport');
    engine.send('{"emit":100}');
    await console_.next(() => delivered(console_.lines).length === 100, '100 items');
    assert.deepEqual(
      delivered(console_.lines),
      Array.from({ length: 100 }, (_, i) => `item-${i + 1}`),
    );
    console_.send('counters');
    const cc = await console_.next((l) => l.event === 'counters', 'console counters');
    assert.equal(cc.transport, 'udp');
    assert.ok((cc.udpDatagrams as number) > 2, 'items came over UDP');
    assert.equal(cc.tcpBatches, 0);
    assert.ok((cc.backfilled as number) > 0, 'the dropped datagram was backfilled over TCP');
    assert.equal(cc.lost, 0);
    const before = await counters();
    assert.equal(before.consoles, 1);
    // The TCP connection ends: the identifier dies with it, and a registration from the same
    // UDP port with the old identifier and key is ignored.
    console_.send('replay');
    await console_.next((l) => l.event === 'replayed', 'replayed registration');
    await new Promise((r) => setTimeout(r, 200));
    const afterClose = await counters();
    assert.equal(afterClose.consoles, 0);
    assert.equal(afterClose.registrations, before.registrations);
    // At least the replayed registration; a keepalive re-registration racing the close may add one more.
    assert.ok(
      afterClose.unknownConnection! >= (before.unknownConnection ?? 0) + 1,
      JSON.stringify(afterClose),
    );
    engine.send('{"emit":5}');
    const last = await counters();
    assert.equal(last.sent, afterClose.sent, 'nothing is sent to the dead connection');
  } finally {
    pair.close();
  }
});

test('UDP from the engine blocked at the console: it falls back to TCP and says so', { skip }, async () => {
  const pair = createNetnsPair('ra');
  try {
    const { engine, port } = await startEngine(pair, true);
    pair.run(
      pair.client,
      'nft',
      ['-f', '-'],
      [
        'table inet wardentest {',
        '  chain input {',
        '    type filter hook input priority 0; policy accept;',
        `    udp sport ${port} drop`,
        '  }',
        '}',
        '',
      ].join('\n'),
    );
    const console_ = fixture(pair, pair.client, 'admin-console.js', [
      SERVER_ADDR,
      String(port),
      '',
      JSON.stringify({ ackTimeoutMs: 500 }),
    ]);
    await console_.next((l) => l.event === 'login', 'login');
    const fallback = await console_.next(
      (l) => l.event === 'transport' && l.transport === 'tcp',
      'fallback to TCP',
    );
    assert.match(fallback.reason as string, /no UDP datagrams arrive/);
    engine.send('{"emit":30}');
    await console_.next(() => delivered(console_.lines).length === 30, '30 items over TCP');
    console_.send('counters');
    const cc = await console_.next((l) => l.event === 'counters', 'console counters');
    assert.equal(cc.transport, 'tcp');
    assert.equal(cc.udpDatagrams, 0);
    assert.ok((cc.tcpBatches as number) > 0);
  } finally {
    pair.close();
  }
});

test('remote administration over IPv6', { skip }, async () => {
  const pair = createNetnsPair('ra');
  try {
    const { engine, port } = await startEngine(pair, true);
    const console_ = fixture(pair, pair.client, 'admin-console.js', [SERVER_ADDR6, String(port)]);
    await console_.next((l) => l.event === 'login', 'login');
    await console_.next((l) => l.event === 'transport' && l.transport === 'udp', 'UDP transport');
    engine.send('{"emit":10}');
    await console_.next(() => delivered(console_.lines).length === 10, '10 items');
    assert.ok(console_.lines.filter((l) => l.event === 'items').every((l) => l.transport === 'udp'));
  } finally {
    pair.close();
  }
});
