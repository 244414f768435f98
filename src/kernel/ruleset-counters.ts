/**
 * The kernel's rule counters mapped back to rules (issue 14 item 4). The counter dump
 * (native/nft_counters.c, on a thread of the libuv pool) hands over one buffer of records: a named
 * counter object's name, or a counted set's element key (the start of an interval) with its
 * packets. The compiled ruleset says which rule each counter object counts (CompiledRuleset.counters)
 * and which rule each set element stands for (countedElements): an element's key bytes are decoded
 * into the compiler's own key (pointKey: the low end of every field, joined by `|`) and looked up.
 *
 * The buffer is walked in slices of about a millisecond, the event loop served between them, so a
 * read of 100,000 matched elements never blocks it for long; the index of an interval set (built
 * only when one of its elements counted something, once per ruleset) is built in slices as well.
 */
import { endianness } from 'node:os';
import { performance } from 'node:perf_hooks';
import type { CompiledRuleset, CountedSet } from './ruleset.js';
import { type Element, type Field, pointKey } from './ruleset-sets.js';

/** The set index of a record that is a named counter object (nft_counters.c OBJECT_SET). */
const OBJECT_SET = 0xffff;
const RECORD_HEADER = 12;
/** How long a slice may run before the event loop gets a turn (ms). */
const SLICE_MS = 1;
const HOST_LE = endianness() === 'LE';

/** Bytes a field takes in a key (nft's datatype sizes); a concatenation pads each to 4. */
const FIELD_SIZE: Record<Field, number> = { proto: 1, addr4: 4, addr6: 16, rport: 2, lport: 2, uid: 4 };

/** The compiler's key of an element from the key bytes the kernel holds; null when they do not fit the fields. */
export function decodeKey(
  fields: readonly Field[],
  view: DataView,
  at: number,
  length: number,
): string | null {
  let key = '';
  let off = at;
  for (let i = 0; i < fields.length; i++) {
    const f = fields[i]!;
    const size = FIELD_SIZE[f];
    if (off + size > at + length) return null;
    let value: number | bigint;
    switch (f) {
      case 'proto':
        value = view.getUint8(off);
        break;
      case 'addr4':
        value = view.getUint32(off, false);
        break;
      case 'addr6':
        value = (view.getBigUint64(off, false) << 64n) | view.getBigUint64(off + 8, false);
        break;
      case 'rport':
      case 'lport':
        value = view.getUint16(off, false);
        break;
      case 'uid':
        // meta skuid is in host byte order.
        value = view.getUint32(off, HOST_LE);
        break;
    }
    key += i === 0 ? String(value) : `|${value}`;
    off += (size + 3) & ~3;
  }
  return key;
}

/** Yields to the event loop when the slice that began at `since` ran out; returns the new slice start. */
async function pace(since: number): Promise<number> {
  if (performance.now() - since < SLICE_MS) return since;
  await new Promise<void>((resolve) => setImmediate(resolve));
  return performance.now();
}

/** Elements by key of the counted sets that have no such map from the compiler, built once per set. */
const indexes = new WeakMap<CountedSet, ReadonlyMap<string, Element>>();

async function indexOf(set: CountedSet, since: { t: number }): Promise<ReadonlyMap<string, Element>> {
  if (set.byKey !== undefined) return set.byKey;
  const index = indexes.get(set);
  if (index !== undefined) return index;
  const built = new Map<string, Element>();
  const elements = set.elements;
  for (let i = 0; i < elements.length; i++) {
    const e = elements[i]!;
    built.set(pointKey(e), e);
    if ((i & 1023) === 1023) since.t = await pace(since.t);
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
      const key = decodeKey(counted.fields, view, data, length);
      if (key === null) continue;
      rule = (await indexOf(counted, since)).get(key)?.rule;
    }
    if (rule !== undefined) out.set(rule, (out.get(rule) ?? 0) + packets);
    if ((++n & 255) === 0) since.t = await pace(since.t);
  }
  return out;
}
