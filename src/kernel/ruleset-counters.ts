/**
 * The kernel's rule counters mapped back to rules (issue 14 item 4). The counter dump
 * (native/nft_counters.c, on a thread of the libuv pool) hands over one buffer of records: a named
 * counter object's name, or a counted set's element key (the start of an interval) with its
 * packets. The compiled ruleset says which rule each counter object counts (CompiledRuleset.counters)
 * and which rule each set element stands for (countedElements): each element's low ends are encoded
 * as the kernel holds them (encodeKey: network byte order, the uid in host order, a concatenation's
 * fields each padded to 4 bytes), and a dumped key is looked up by its value bytes (keyText).
 *
 * The buffer is walked in slices of about a millisecond, the event loop served between them, so a
 * read of 100,000 matched elements never blocks it for long; the index of an interval set (built
 * only when one of its elements counted something, once per ruleset) is built in slices as well.
 */
import { endianness } from 'node:os';
import { performance } from 'node:perf_hooks';
import type { CompiledRuleset, CountedSet } from './ruleset.js';
import type { Field } from './ruleset-sets.js';

/** The set index of a record that is a named counter object (nft_counters.c OBJECT_SET). */
const OBJECT_SET = 0xffff;
const RECORD_HEADER = 12;
/** How long a slice may run before the event loop gets a turn (ms). */
const SLICE_MS = 0.5;
const HOST_LE = endianness() === 'LE';

/** Bytes a field takes in a key (nft's datatype sizes); a concatenation pads each to 4. */
const FIELD_SIZE: Record<Field, number> = { proto: 1, addr4: 4, addr6: 16, rport: 2, lport: 2, uid: 4 };

/** One character per byte value: a key's bytes as a string, the cheapest Map key JS offers. */
const CHARS = Array.from({ length: 256 }, (_, i) => String.fromCharCode(i));

/**
 * A key's value bytes as a string, the padding of a concatenation left out (whatever it holds):
 * what both a dumped key and an encoded element are reduced to. Null when the key is too short.
 */
export function keyText(
  fields: readonly Field[],
  bytes: Uint8Array,
  at: number,
  length: number,
): string | null {
  let key = '';
  let off = at;
  for (let i = 0; i < fields.length; i++) {
    const size = FIELD_SIZE[fields[i]!];
    if (off + size > at + length) return null;
    for (let j = off; j < off + size; j++) key += CHARS[bytes[j]!];
    off += (size + 3) & ~3;
  }
  return key;
}

/** The key bytes the kernel holds for an element (the low end of each field): the inverse of a dump. */
export function encodeKey(fields: readonly Field[], lo: readonly (number | bigint)[]): Uint8Array {
  let length = 0;
  for (const f of fields) length += (FIELD_SIZE[f] + 3) & ~3;
  const bytes = new Uint8Array(length);
  const view = new DataView(bytes.buffer);
  let off = 0;
  for (let i = 0; i < fields.length; i++) {
    const f = fields[i]!;
    const v = lo[i]!;
    switch (f) {
      case 'proto':
        view.setUint8(off, Number(v));
        break;
      case 'addr4':
        view.setUint32(off, Number(v), false);
        break;
      case 'addr6':
        view.setBigUint64(off, BigInt(v) >> 64n, false);
        view.setBigUint64(off + 8, BigInt(v) & 0xffff_ffff_ffff_ffffn, false);
        break;
      case 'rport':
      case 'lport':
        view.setUint16(off, Number(v), false);
        break;
      case 'uid':
        // meta skuid is in host byte order.
        view.setUint32(off, Number(v), HOST_LE);
        break;
    }
    off += (FIELD_SIZE[f] + 3) & ~3;
  }
  return bytes;
}

/** Yields to the event loop when the slice that began at `since` ran out; returns the new slice start. */
async function pace(since: number): Promise<number> {
  if (performance.now() - since < SLICE_MS) return since;
  await new Promise<void>((resolve) => setImmediate(resolve));
  return performance.now();
}

/**
 * A counted set's rules by element key (keyText of the encoded element), built the first time one
 * of its elements counted something, once per compiled ruleset, in slices.
 */
const indexes = new WeakMap<CountedSet, ReadonlyMap<string, string | undefined>>();

async function indexOf(
  set: CountedSet,
  since: { t: number },
): Promise<ReadonlyMap<string, string | undefined>> {
  const index = indexes.get(set);
  if (index !== undefined) return index;
  const built = new Map<string, string | undefined>();
  const elements = set.elements;
  for (let i = 0; i < elements.length; i++) {
    const e = elements[i]!;
    const bytes = encodeKey(set.fields, e.lo);
    built.set(keyText(set.fields, bytes, 0, bytes.length)!, e.rule);
    if ((i & 255) === 255) since.t = await pace(since.t);
  }
  indexes.set(set, built);
  return built;
}

/**
 * Packets per rule (by ruleIdentity) in a counter dump of `compiled`'s table: the counters of a
 * rule's objects and elements added up. Records that name nothing of `compiled` (a table changed
 * behind the engine's back) are left out. `sets` is the list the dump was asked for.
 */
export async function mapRuleCounters(
  buffer: ArrayBuffer,
  sets: readonly string[],
  compiled: Pick<CompiledRuleset, 'counters' | 'countedElements'>,
): Promise<Map<string, number>> {
  const out = new Map<string, number>();
  const view = new DataView(buffer);
  const bytes = new Uint8Array(buffer);
  const since = { t: performance.now() };
  let n = 0;
  for (let at = 0; at + RECORD_HEADER <= buffer.byteLength; ) {
    const set = view.getUint16(at, HOST_LE);
    const length = view.getUint8(at + 2);
    const packets = view.getFloat64(at + 4, HOST_LE);
    const data = at + RECORD_HEADER;
    at = data + ((length + 3) & ~3);
    if (at > buffer.byteLength) break;
    let rule: string | undefined;
    if (set === OBJECT_SET) {
      rule = compiled.counters[String.fromCharCode(...bytes.subarray(data, data + length))];
    } else {
      const counted = compiled.countedElements.get(sets[set] ?? '');
      if (counted === undefined) continue;
      const key = keyText(counted.fields, bytes, data, length);
      if (key === null) continue;
      rule = (indexes.get(counted) ?? (await indexOf(counted, since))).get(key);
    }
    if (rule !== undefined) out.set(rule, (out.get(rule) ?? 0) + packets);
    if ((++n & 63) === 0) since.t = await pace(since.t);
  }
  return out;
}
