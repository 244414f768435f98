import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { EncodedLogItem, packLogBodies } from './log-bodies.js';
import { LOG_KINDS, type LogItem } from './log-item.js';

/** The packer before items were encoded once: JSON.stringify per item, parts joined per datagram. */
function packLikeBefore(
  items: readonly LogItem[],
  bodyLimit: number,
): { bodies: Buffer[]; tooLarge: number } {
  const bodies: Buffer[] = [];
  let tooLarge = 0;
  let parts: string[] = [];
  let size = 11;
  const flush = () => {
    if (parts.length === 0) return;
    bodies.push(Buffer.from(`{"items":[${parts.join(',')}]}`));
    parts = [];
    size = 11;
  };
  for (const item of items) {
    const json = JSON.stringify(item);
    const bytes = Buffer.byteLength(json) + 1;
    if (11 + bytes > bodyLimit) {
      tooLarge++;
      continue;
    }
    if (size + bytes > bodyLimit) flush();
    parts.push(json);
    size += bytes;
  }
  flush();
  return { bodies, tooLarge };
}

// Text with multi-byte characters, escapes and lone surrogates, so byte and character counts differ.
const text = (maxLength: number) =>
  fc.oneof(
    fc.string({ maxLength }),
    fc.string({ maxLength, unit: 'binary' }),
    fc.constant('é"\\\n\u{1F600}'),
  );

const logItem: fc.Arbitrary<LogItem> = fc.record(
  {
    seq: fc.integer({ min: 1, max: 2 ** 40 }),
    time: fc.constant('2025-01-02T03:04:05.678Z'),
    kind: fc.constantFrom(...LOG_KINDS),
    verdict: fc.constantFrom('allow', 'deny', 'reject', 'ask'),
    application: text(80),
    remote: text(40),
    message: text(600),
  },
  { requiredKeys: ['seq', 'time', 'kind', 'message'] },
);

describe('packLogBodies', () => {
  test('makes byte-identical bodies to the previous packer for any items and body limit', () => {
    fc.assert(
      fc.property(
        fc.array(logItem, { maxLength: 60 }),
        fc.integer({ min: 12, max: 1190 }),
        (items, limit) => {
          const packed = packLogBodies(
            items.map((i) => new EncodedLogItem(i)),
            limit,
          );
          const before = packLikeBefore(items, limit);
          assert.equal(packed.tooLarge, before.tooLarge);
          assert.deepEqual(
            packed.bodies.map((b) => b.toString('hex')),
            before.bodies.map((b) => b.toString('hex')),
          );
          for (const body of packed.bodies) assert.ok(body.length <= limit);
        },
      ),
      { numRuns: 300 },
    );
  });

  test('keeps every item that fits, in order, and skips only the ones too large for an empty body', () => {
    const item = (seq: number, message: string): LogItem => ({ seq, time: 't', kind: 'system', message });
    const items = [item(1, 'a'), item(2, 'x'.repeat(2000)), item(3, 'b'), item(4, 'c')];
    const { bodies, tooLarge } = packLogBodies(
      items.map((i) => new EncodedLogItem(i)),
      1190,
    );
    assert.equal(tooLarge, 1);
    assert.equal(bodies.length, 1);
    const parsed = JSON.parse(bodies[0]!.toString('utf8')) as { items: LogItem[] };
    assert.deepEqual(
      parsed.items.map((i) => i.seq),
      [1, 3, 4],
    );
  });

  test('no items, no bodies', () => {
    assert.deepEqual(packLogBodies([], 1190), { bodies: [], tooLarge: 0 });
  });
});

describe('EncodedLogItem', () => {
  test('encodes once and counts UTF-8 bytes, not characters', () => {
    const item: LogItem = { seq: 1, time: 't', kind: 'system', message: 'é\u{1F600}' };
    const encoded = new EncodedLogItem(item);
    assert.equal(encoded.bytes, Buffer.byteLength(JSON.stringify(item)));
    assert.equal(encoded.json, JSON.stringify(item));
    assert.equal(encoded.json, encoded.json);
  });
});
