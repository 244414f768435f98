/**
 * Which of a policy's domain lists a remote's names are in, computed once per learned name rather
 * than at every decision. A compiled policy numbers its domain lists in a DomainListTable (one bit
 * each); the engine keeps one LearnedName per name it learned (host-names.ts), which remembers its
 * bits for the table it last saw. A connection then carries the bits of its names (HostLists), and
 * a rule with a domain list tests one bit. A new table (the policy or a list's content changed)
 * makes every name compute its bits again on its next connection, so a refreshed list decides the
 * next connection; bits for another table are ignored and the names looked up in the lists.
 */
import type { NameTable } from './list-format.js';

/** The membership of a connection's names in a table's lists: bit i set when a name is in list i. */
export interface HostLists {
  readonly table: DomainListTable;
  readonly bits: number;
}

/** Lists beyond this many in one policy have no bit and are looked up by name (nameInList). */
const MAX_BITS = 31;

/** The domain lists of one compiled policy, numbered. */
export class DomainListTable {
  readonly #lists: { readonly names: NameTable; readonly subdomains: boolean }[] = [];
  readonly #byName = new Map<string, number>();
  /** Bits 0: no name in any list (shared, so a connection without names allocates nothing). */
  readonly none: HostLists = { table: this, bits: 0 };

  /** The bit of the list (the same for every rule naming it); 0 when the table has no bit left. */
  bitOf(name: string, names: NameTable, subdomains: boolean): number {
    const known = this.#byName.get(name);
    if (known !== undefined) return known;
    const bit = this.#lists.length < MAX_BITS ? 1 << this.#lists.length : 0;
    if (bit !== 0) this.#lists.push({ names, subdomains });
    this.#byName.set(name, bit);
    return bit;
  }

  /** Number of lists with a bit. */
  get size(): number {
    return this.#lists.length;
  }

  /** The bits of one name: every list it is in (exactly, or below a listed domain for `domains` lists). */
  bitsOf(name: string): number {
    let bits = 0;
    for (let i = 0; i < this.#lists.length; i++) {
      const l = this.#lists[i]!;
      if (l.names.lookUp(name, l.subdomains)) bits |= 1 << i;
    }
    return bits;
  }

  /** The HostLists of these bits (no allocation for none, the most frequent answer). */
  withBits(bits: number): HostLists {
    return bits === 0 ? this.none : { table: this, bits };
  }
}

/** A name the engine learned (forward-resolved or a PTR answer), with its bits for the last table seen. */
export class LearnedName {
  /** The table the bits are for (fields of this object: no second object to load per connection). */
  #table: DomainListTable | null = null;
  #bits = 0;

  constructor(readonly name: string) {}

  /** This name's bits in the table: computed on the first call for a table, then remembered. */
  bitsIn(table: DomainListTable): number {
    if (this.#table === table) return this.#bits;
    const bits = table.bitsOf(this.name);
    this.#bits = bits;
    this.#table = table;
    return bits;
  }
}

/**
 * What a connection carries for its names under the policy's table: undefined when the policy has
 * no domain list, or when a name was not learned (a plain string: nothing remembered for it).
 */
export function hostListsOf(
  table: DomainListTable | null,
  names: readonly (string | LearnedName)[],
): HostLists | undefined {
  if (table === null) return undefined;
  if (names.length === 0) return table.none;
  let bits = 0;
  for (let i = 0; i < names.length; i++) {
    const n = names[i]!;
    if (typeof n === 'string') return undefined;
    bits |= n.bitsIn(table);
  }
  return table.withBits(bits);
}

/** The names as strings (the same array when they are strings already). */
export function nameStrings(names: readonly (string | LearnedName)[]): readonly string[] {
  let learned = false;
  for (let i = 0; i < names.length; i++) if (typeof names[i] !== 'string') learned = true;
  if (!learned) return names as readonly string[];
  return names.map((n) => (typeof n === 'string' ? n : n.name));
}
