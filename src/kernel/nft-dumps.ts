/**
 * What table inet `table` holds in this process's network namespace, read by the addon's netlink
 * dumps (native.ts dumpNftTable, native/nft_counters.c) instead of by nft, which fetches every set
 * element before it lists anything (0.5 s at 100,000, even tersely): the rule counters
 * (ruleset-counters.ts maps them to rules), the elements each set holds, and the names of the
 * table's chains, sets, maps and counter objects.
 */
import { endianness } from 'node:os';
import { dumpNftTable } from './native.js';

/**
 * The rule counters as one buffer of records (the `c_...` counter objects and the per-element
 * counters of `sets`, those above 0; the layout is in native/nft_counters.c, ruleset-counters.ts
 * reads it); empty when there is no such table.
 */
export function dumpRuleCounters(table: string, sets: readonly string[]): Promise<ArrayBuffer> {
  return dumpNftTable(table, sets);
}

/** How many elements each of `sets` holds (an interval once); 0 for a set that is not there. */
export async function countSetElements(table: string, sets: readonly string[]): Promise<Uint32Array> {
  return new Uint32Array(await dumpNftTable(table, sets, 'counts'));
}

/** What the table holds, by name. */
export interface TableNames {
  readonly exists: boolean;
  readonly chains: readonly string[];
  readonly sets: readonly string[];
  readonly maps: readonly string[];
  readonly counters: readonly string[];
}

/** The kinds of name records: nft_counters.c NAME_TABLE, NAME_CHAIN, NAME_SET, NAME_MAP and OBJECT_SET. */
const NAME_KINDS: Record<number, 'exists' | 'chains' | 'sets' | 'maps' | 'counters'> = {
  [0xfff0]: 'exists',
  [0xfff1]: 'chains',
  [0xfff2]: 'sets',
  [0xfff3]: 'maps',
  [0xffff]: 'counters',
};
const RECORD_HEADER = 12;
const HOST_LE = endianness() === 'LE';

/** The table's chains, sets (anonymous ones left out), maps and counter objects: milliseconds. */
export async function readTableNames(table: string): Promise<TableNames> {
  const bytes = new Uint8Array(await dumpNftTable(table, [], 'names'));
  const view = new DataView(bytes.buffer);
  const out = {
    exists: false,
    chains: [] as string[],
    sets: [] as string[],
    maps: [] as string[],
    counters: [] as string[],
  };
  for (let at = 0; at + RECORD_HEADER <= bytes.length; ) {
    const kind = NAME_KINDS[view.getUint16(at, HOST_LE)];
    const length = bytes[at + 2]!;
    const name = Buffer.from(bytes.buffer, at + RECORD_HEADER, length).toString('latin1');
    if (kind === 'exists') out.exists = true;
    else if (kind !== undefined) out[kind].push(name);
    at += RECORD_HEADER + ((length + 3) & ~3);
  }
  return out;
}
