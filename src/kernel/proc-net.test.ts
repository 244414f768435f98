import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { type IpAddress, parseIp } from '../ip/index.js';
import {
  type AddressFamily,
  findSocketEntry,
  formatProcNet,
  type ProcNetEntry,
  parseProcNet,
  type SocketProtocol,
  type SocketQuery,
  TCP_LISTEN,
} from './proc-net.js';

const ip = (text: string): IpAddress => {
  const a = parseIp(text);
  if (a === null) throw new Error(text);
  return a;
};
/** IPv6 address kept as version 6 even when IPv4-mapped (as the tcp6 table holds it). */
const ip6 = (text: string): IpAddress => {
  const a = ip(text);
  return a.version === 6 ? a : { version: 6, value: (0xffffn << 32n) | BigInt(a.value) };
};

const address = (family: AddressFamily): fc.Arbitrary<IpAddress> =>
  family === 4
    ? fc.integer({ min: 0, max: 0xffffffff }).map((value) => ({ version: 4 as const, value }))
    : fc.bigInt({ min: 0n, max: (1n << 128n) - 1n }).map((value) => ({ version: 6 as const, value }));

const entry = (protocol: SocketProtocol, family: AddressFamily): fc.Arbitrary<ProcNetEntry> =>
  fc.record({
    protocol: fc.constant(protocol),
    family: fc.constant(family),
    localAddress: address(family),
    localPort: fc.integer({ min: 0, max: 0xffff }),
    remoteAddress: address(family),
    remotePort: fc.integer({ min: 0, max: 0xffff }),
    state: fc.integer({ min: 0, max: 0xff }),
    uid: fc.integer({ min: 0, max: 0xffffffff }),
    inode: fc.integer({ min: 0, max: 0xffffffff }),
  });

const table = fc
  .record({
    protocol: fc.constantFrom<SocketProtocol>('tcp', 'udp'),
    family: fc.constantFrom<AddressFamily>(4, 6),
    littleEndian: fc.boolean(),
  })
  .chain((o) => fc.record({ options: fc.constant(o), entries: fc.array(entry(o.protocol, o.family)) }));

/** Random text, some of it shaped like table rows so the field checks are reached. */
const noisyTable = fc
  .array(
    fc.oneof(
      fc.string({ unit: 'binary', maxLength: 80 }),
      fc
        .array(fc.oneof(fc.stringMatching(/^[0-9A-Fa-f:]{0,34}$/), fc.string({ maxLength: 6 })), {
          maxLength: 14,
        })
        .map((fields) => `   0: ${fields.join(' ')}`),
    ),
    { maxLength: 20 },
  )
  .map((lines) => lines.join('\n'));

describe('parseProcNet', () => {
  test('a table rendered in the kernel format parses back to the same entries (both byte orders)', () => {
    fc.assert(
      fc.property(table, ({ options, entries }) => {
        const parsed = parseProcNet(formatProcNet(entries, options), options);
        assert.deepEqual(parsed.problems, []);
        assert.deepEqual(
          parsed.entries,
          entries.map((e) => ({ ...e })),
        );
      }),
    );
  });

  test('random text never throws; unreadable lines are skipped with a problem', () => {
    fc.assert(
      fc.property(noisyTable, fc.constantFrom<AddressFamily>(4, 6), (text, family) => {
        const parsed = parseProcNet(text, { protocol: 'tcp', family });
        assert.ok(parsed.problems.length <= 20);
      }),
    );
    const parsed = parseProcNet('  sl  local\n   0: zz:1 00000000:0000 0A a b c d 0 0 1\nrubbish\n', {
      protocol: 'tcp',
      family: 4,
    });
    assert.deepEqual(parsed.entries, []);
    assert.equal(parsed.problems.length, 2);
    assert.match(parsed.problems[0]!, /^line 2: bad IPv4 endpoint "zz:1"/);
  });

  test('real little-endian lines: 127.0.0.1:8080, ::1 and ::ffff:127.0.0.1', () => {
    const v4 = parseProcNet(
      '   0: 0100007F:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1224 1 000000000bb4ce25 100 0 0 10 0',
      { protocol: 'tcp', family: 4 },
    );
    assert.deepEqual(v4.entries[0], {
      protocol: 'tcp',
      family: 4,
      localAddress: ip('127.0.0.1'),
      localPort: 8080,
      remoteAddress: ip('0.0.0.0'),
      remotePort: 0,
      state: TCP_LISTEN,
      uid: 0,
      inode: 1224,
    });
    const v6 = parseProcNet(
      [
        '   0: 00000000000000000000000001000000:0035 0000000000000000FFFF00000100007F:D431 01 00000000:00000000 00:00000000 00000000  65534        0 99 2 0000000000000000 0',
        '   1: 000080FE00000000FF005452123456FE:0016 00000000000000000000000000000000:0000 07 00000000:00000000 00:00000000 00000000  1000        0 7 2 0000000000000000 0',
      ].join('\n'),
      { protocol: 'udp', family: 6 },
    );
    assert.deepEqual(v6.problems, []);
    assert.deepEqual(v6.entries[0]!.localAddress, ip('::1'));
    assert.deepEqual(v6.entries[0]!.remoteAddress, ip6('::ffff:127.0.0.1'));
    assert.equal(v6.entries[0]!.remotePort, 0xd431);
    assert.deepEqual(v6.entries[1]!.localAddress, ip('fe80::5254:ff:fe56:3412'));
  });
});

describe('findSocketEntry', () => {
  const row = (
    protocol: SocketProtocol,
    family: AddressFamily,
    local: string,
    localPort: number,
    remote: string,
    remotePort: number,
    state: number,
    inode: number,
  ): ProcNetEntry => ({
    protocol,
    family,
    localAddress: family === 4 ? ip(local) : ip6(local),
    localPort,
    remoteAddress: family === 4 ? ip(remote) : ip6(remote),
    remotePort,
    state,
    uid: 1000,
    inode,
  });
  const q = (
    protocol: SocketProtocol,
    direction: 'incoming' | 'outgoing',
    local: string,
    localPort: number,
    remote: string,
    remotePort: number,
  ): SocketQuery => ({
    protocol,
    direction,
    localAddress: ip(local),
    localPort,
    remoteAddress: ip(remote),
    remotePort,
  });
  const inodeOf = (entries: ProcNetEntry[], query: SocketQuery) =>
    findSocketEntry(entries, query)?.inode ?? null;

  test('outgoing TCP: the exact 4-tuple, never a listener on the same port', () => {
    const entries = [
      row('tcp', 4, '0.0.0.0', 5000, '0.0.0.0', 0, TCP_LISTEN, 1),
      row('tcp', 4, '10.0.0.1', 5000, '10.0.0.2', 80, 2, 2),
    ];
    assert.equal(inodeOf(entries, q('tcp', 'outgoing', '10.0.0.1', 5000, '10.0.0.2', 80)), 2);
    assert.equal(inodeOf(entries, q('tcp', 'outgoing', '10.0.0.1', 5000, '10.0.0.3', 80)), null);
  });

  test('incoming TCP: specific listener before 0.0.0.0 before a dual-stack :: listener; inode 0 never', () => {
    const wildcard6 = row('tcp', 6, '::', 22, '::', 0, TCP_LISTEN, 3);
    const wildcard4 = row('tcp', 4, '0.0.0.0', 22, '0.0.0.0', 0, TCP_LISTEN, 2);
    const specific = row('tcp', 4, '10.0.0.1', 22, '0.0.0.0', 0, TCP_LISTEN, 1);
    const timeWait = row('tcp', 4, '10.0.0.1', 22, '10.0.0.9', 4000, 6, 0);
    const syn = q('tcp', 'incoming', '10.0.0.1', 22, '10.0.0.9', 4000);
    assert.equal(inodeOf([timeWait, wildcard6, wildcard4, specific], syn), 1);
    assert.equal(inodeOf([timeWait, wildcard6, wildcard4], syn), 2);
    assert.equal(inodeOf([timeWait, wildcard6], syn), 3);
    assert.equal(inodeOf([wildcard6], q('tcp', 'incoming', '::1', 22, '::1', 4000)), 3);
    assert.equal(inodeOf([row('tcp', 4, '0.0.0.0', 22, '0.0.0.0', 0, 7, 4)], syn), null, 'not listening');
  });

  test('IPv4-mapped accepted sockets in tcp6 match IPv4 connections exactly', () => {
    const entries = [
      row('tcp', 6, '::', 8080, '::', 0, TCP_LISTEN, 1),
      row('tcp', 6, '::ffff:127.0.0.1', 8080, '::ffff:127.0.0.1', 41000, 1, 2),
    ];
    assert.equal(inodeOf(entries, q('tcp', 'incoming', '127.0.0.1', 8080, '127.0.0.1', 41000)), 2);
    assert.equal(inodeOf(entries, q('tcp', 'incoming', '127.0.0.1', 8080, '127.0.0.1', 41001)), 1);
  });

  test('UDP: connected socket first, else the unconnected socket bound to the port, both directions', () => {
    const unconnected = row('udp', 4, '0.0.0.0', 5353, '0.0.0.0', 0, 7, 1);
    const connected = row('udp', 4, '10.0.0.1', 5353, '10.0.0.2', 53, 1, 2);
    assert.equal(
      inodeOf([unconnected, connected], q('udp', 'outgoing', '10.0.0.1', 5353, '10.0.0.2', 53)),
      2,
    );
    assert.equal(
      inodeOf([unconnected, connected], q('udp', 'outgoing', '10.0.0.1', 5353, '10.0.0.3', 53)),
      1,
    );
    assert.equal(inodeOf([unconnected], q('udp', 'incoming', '10.0.0.1', 5353, '10.0.0.7', 9)), 1);
    assert.equal(inodeOf([unconnected], q('udp', 'incoming', '10.0.0.1', 5354, '10.0.0.7', 9)), null);
  });
});
