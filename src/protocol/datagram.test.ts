import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { DatagramType, openDatagram, readHeader, sealDatagram } from './datagram.js';

const key = randomBytes(32);
const id = randomBytes(16);
const body = Buffer.from('{"items":[]}');

describe('sealDatagram', () => {
  test('a sequence number given as a number seals the same bytes as the same bigint', () => {
    fc.assert(
      fc.property(
        fc.oneof(fc.integer({ min: 1, max: 2 ** 32 + 5 }), fc.constant(Number.MAX_SAFE_INTEGER)),
        fc.constantFrom(DatagramType.REGISTER, DatagramType.REGISTERED, DatagramType.LOGS),
        (seq, type) => {
          const asNumber = sealDatagram(type, id, seq, key, body);
          assert.deepEqual(asNumber, sealDatagram(type, id, BigInt(seq), key, body));
          const header = readHeader(asNumber);
          assert.equal(header?.seq, BigInt(seq));
          assert.deepEqual(openDatagram(asNumber, header!, key), body);
        },
      ),
    );
  });

  test('refuses a sequence number that is not a safe unsigned integer', () => {
    for (const seq of [-1, 1.5, 2 ** 53, Number.NaN, Number.POSITIVE_INFINITY])
      assert.throws(() => sealDatagram(DatagramType.LOGS, id, seq, key, body), /sequence number/);
  });
});
