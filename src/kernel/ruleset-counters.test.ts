import assert from 'node:assert/strict';
import { endianness } from 'node:os';
import { test } from 'node:test';
import { compilePolicy, validatePolicy } from '../policy/index.js';
import { validateSettings } from '../settings/index.js';
import { compileRuleset } from './ruleset.js';
import { encodeKey, keyText, mapRuleCounters } from './ruleset-counters.js';

const settings = validateSettings({});
const compile = (rules: unknown[]) =>
  compileRuleset({ policy: compilePolicy(validatePolicy({ rules }), { settings }), settings, now: 0 });

/** A dump as native/nft_counters.c writes it: u16 set, u8 length, u8 0, f64 packets, data padded to 4. */
function dump(records: { set: number; data: Uint8Array; packets: number }[]): ArrayBuffer {
  const size = records.reduce((n, r) => n + 12 + ((r.data.length + 3) & ~3), 0);
  const buffer = new ArrayBuffer(size);
  const view = new DataView(buffer);
  const le = endianness() === 'LE';
  let at = 0;
  for (const r of records) {
    view.setUint16(at, r.set, le);
    view.setUint8(at + 2, r.data.length);
    view.setFloat64(at + 4, r.packets, le);
    new Uint8Array(buffer, at + 12, r.data.length).set(r.data);
    at += 12 + ((r.data.length + 3) & ~3);
  }
  return buffer;
}

test('key bytes: network order, the uid in host order, each field of a concatenation padded to 4', () => {
  const bytes = encodeKey(['proto', 'addr4', 'rport', 'uid'], [6, 0x0a000001, 443, 1000]);
  const le = endianness() === 'LE';
  assert.deepEqual(
    [...bytes],
    [6, 0, 0, 0, 10, 0, 0, 1, 1, 187, 0, 0, ...(le ? [232, 3, 0, 0] : [0, 0, 3, 232])],
  );
  // The padding is not part of the key: a dump with other bytes there names the same element.
  const dumped = Uint8Array.from(bytes);
  dumped[1] = 0xff;
  dumped[10] = 0xff;
  const fields = ['proto', 'addr4', 'rport', 'uid'] as const;
  assert.equal(keyText(fields, dumped, 0, dumped.length), keyText(fields, bytes, 0, bytes.length));
  assert.equal(keyText(fields, bytes, 0, 8), null, 'too short for its fields');
  const v6 = encodeKey(['addr6'], [0xfd00_0000_0000_0000_0000_0000_0000_0002n]);
  assert.deepEqual([...v6], [0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2]);
});

test('a dump maps to rules: objects by name, elements by key, summed per rule; strangers left out', async () => {
  const compiled = compile([
    { name: 'web', direction: 'outgoing', protocol: 'tcp', remotePorts: [80, 443], action: 'allow' },
    { name: 'dns', direction: 'outgoing', protocol: 'udp', remotePorts: 53, action: 'deny' },
  ]);
  const sets = compiled.model.countedSets;
  assert.equal(sets.length, 1);
  const counted = compiled.countedElements.get(sets[0]!)!;
  // One protocol: tested in the rule (meta l4proto tcp), not in the key (ElementGroup.proto).
  assert.deepEqual(counted.fields, ['rport']);
  const [object] = Object.keys(compiled.counters);
  assert.equal(compiled.counters[object!], 'user dns');
  const name = new TextEncoder().encode(object);
  const key = (port: number) => encodeKey(counted.fields, [port]);
  const buffer = dump([
    { set: 0xffff, data: name, packets: 4 },
    { set: 0, data: key(80), packets: 2 },
    { set: 0, data: key(443), packets: 3 },
    { set: 0, data: key(8080), packets: 9 }, // no such element
    { set: 7, data: key(80), packets: 9 }, // no such set
    { set: 0xffff, data: new TextEncoder().encode('c_0000000000000000'), packets: 9 }, // no such object
    { set: 0, data: key(80).subarray(0, 1), packets: 9 }, // a key too short
  ]);
  const counts = await mapRuleCounters(buffer, sets, compiled);
  assert.deepEqual(Object.fromEntries(counts), { 'user dns': 4, 'user web': 5 });
  // A buffer cut inside a record ends the walk there.
  const cut = await mapRuleCounters(buffer.slice(0, 12 + 20 + 6), sets, compiled);
  assert.deepEqual(Object.fromEntries(cut), { 'user dns': 4 });
});
