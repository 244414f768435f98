/** packet.ts: headers built here parse back to what was put in; random bytes never throw. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { formatIpv4, formatIpv6 } from '../ip/address.js';
import { type PacketHeader, parsePacket, TCP_FLAGS } from './packet.js';

interface Spec {
  version: 4 | 6;
  protocolNumber: number;
  source: Uint8Array;
  destination: Uint8Array;
  sourcePort: number;
  destinationPort: number;
  flags: number;
  options: number; // IPv4 option words, or IPv6 hop-by-hop headers
}

/** Builds the bytes of a packet header the way the kernel would copy them. */
function build(s: Spec): Uint8Array {
  const transport = new Uint8Array(20);
  transport.set([s.sourcePort >> 8, s.sourcePort & 255, s.destinationPort >> 8, s.destinationPort & 255]);
  transport[12] = 0x50;
  transport[13] = s.flags;
  if (s.version === 4) {
    const ip = new Uint8Array(20 + 4 * s.options);
    ip[0] = 0x40 | (5 + s.options);
    ip[9] = s.protocolNumber;
    ip.set(s.source, 12);
    ip.set(s.destination, 16);
    return new Uint8Array([...ip, ...transport]);
  }
  const ip = new Uint8Array(40);
  ip[0] = 0x60;
  ip.set(s.source, 8);
  ip.set(s.destination, 24);
  const extensions: number[] = [];
  for (let i = 0; i < s.options; i++) {
    const next = i === s.options - 1 ? s.protocolNumber : 0;
    extensions.push(next, 0, 0, 0, 0, 0, 0, 0);
  }
  ip[6] = s.options > 0 ? 0 : s.protocolNumber;
  return new Uint8Array([...ip, ...extensions, ...transport]);
}

const text = (b: Uint8Array) =>
  b.length === 4
    ? formatIpv4(Buffer.from(b).readUInt32BE(0))
    : formatIpv6(BigInt(`0x${Buffer.from(b).toString('hex')}`));

const spec = fc.oneof(fc.constant(4 as const), fc.constant(6 as const)).chain((version) =>
  fc.record({
    version: fc.constant(version),
    protocolNumber: fc.constantFrom(6, 17, 1, 58, 47),
    source: fc.uint8Array({ minLength: version === 4 ? 4 : 16, maxLength: version === 4 ? 4 : 16 }),
    destination: fc.uint8Array({ minLength: version === 4 ? 4 : 16, maxLength: version === 4 ? 4 : 16 }),
    sourcePort: fc.integer({ min: 0, max: 65535 }),
    destinationPort: fc.integer({ min: 0, max: 65535 }),
    flags: fc.integer({ min: 0, max: 255 }),
    options: fc.integer({ min: 0, max: 3 }),
  }),
);

test('a built header parses back to its fields (IPv4 options, IPv6 extension headers)', () => {
  fc.assert(
    fc.property(spec, (s) => {
      const parsed = parsePacket(build(s));
      assert.ok(parsed.ok, parsed.ok ? '' : parsed.reason);
      const p: PacketHeader = parsed.packet;
      assert.equal(p.version, s.version);
      assert.equal(p.protocolNumber, s.protocolNumber);
      assert.equal(p.source, text(s.source));
      assert.equal(p.destination, text(s.destination));
      const ports = s.protocolNumber === 6 || s.protocolNumber === 17;
      assert.equal(p.sourcePort, ports ? s.sourcePort : 0);
      assert.equal(p.destinationPort, ports ? s.destinationPort : 0);
      assert.equal(p.tcpFlags, s.protocolNumber === 6 ? s.flags : undefined);
    }),
  );
});

test('random bytes and every truncation give a result, never an exception', () => {
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 120 }), (bytes) => {
      const r = parsePacket(bytes);
      assert.ok(r.ok || r.reason.length > 0);
    }),
    { numRuns: 2000 },
  );
  fc.assert(
    fc.property(spec, fc.nat(), (s, cut) => {
      const bytes = build(s);
      const r = parsePacket(bytes.subarray(0, cut % (bytes.length + 1)));
      assert.ok(r.ok || r.reason.length > 0);
    }),
  );
});

test('a TCP SYN to 10.200.0.2:80 and clear reasons for bad input', () => {
  const syn = build({
    version: 4,
    protocolNumber: 6,
    source: new Uint8Array([10, 200, 0, 1]),
    destination: new Uint8Array([10, 200, 0, 2]),
    sourcePort: 40000,
    destinationPort: 80,
    flags: TCP_FLAGS.SYN,
    options: 0,
  });
  assert.deepEqual(parsePacket(syn), {
    ok: true,
    packet: {
      version: 4,
      protocol: 'tcp',
      protocolNumber: 6,
      source: '10.200.0.1',
      destination: '10.200.0.2',
      sourcePort: 40000,
      destinationPort: 80,
      tcpFlags: TCP_FLAGS.SYN,
    },
  });
  assert.deepEqual(parsePacket(new Uint8Array()), { ok: false, reason: 'empty packet' });
  assert.deepEqual(parsePacket(syn.subarray(0, 10)), {
    ok: false,
    reason: 'IPv4 header truncated: 10 of 20 bytes',
  });
  assert.deepEqual(parsePacket(new Uint8Array([0x45 & 0x0f])), {
    ok: false,
    reason: 'not an IP packet: version 0',
  });
  assert.equal(parsePacket(syn.subarray(0, 22)).ok, false);
});
