/**
 * The log store's dictionary (schema version 3): every string field of a log
 * item that repeats (application, host, rule, user, source, direction,
 * protocol, a local address, a message template) is stored once in the `dict`
 * table and referred to by its integer id in the rows. The whole dictionary is
 * kept in memory (it is small next to the items: its entries are distinct
 * strings), so encoding an item costs Map lookups, and a text search compares
 * the needle with the dictionary's strings rather than with every row's text.
 * Pure: the store writes `added()` entries in the transaction of their rows.
 */

/** Bits of `dict.fields`: in which columns an id has been used (the text search picks indexes by them). */
export const FIELD = {
  application: 1,
  host: 2,
  rule: 4,
  message: 8,
  /** direction, protocol, user, source, local address: columns the text search never reads. */
  other: 16,
} as const;

/** Stands for one run of ASCII digits in a message template (see log-row.ts splitMessage). */
export const ARG = '\x01';

/** More ids than this matching a needle's word: the word does not narrow (a scan compares it). */
export const MANY_IDS = 2000;

export class LogDictionary {
  readonly #ids = new Map<string, number>();
  /** Index = id; id 0 is never used. */
  readonly #values: string[] = [''];
  readonly #fields: number[] = [0];
  /** Lower-cased values, made on the first text search. */
  #lower: string[] = [];
  /** The first id not yet written to the table, and the ids whose `fields` changed since. */
  #written = 1;
  readonly #changed = new Set<number>();

  /** The entries of the `dict` table (id, value, fields), any order. */
  constructor(rows: Iterable<{ id: number; value: string; fields: number }> = []) {
    for (const r of rows) {
      this.#values[r.id] = r.value;
      this.#fields[r.id] = r.fields;
      this.#ids.set(r.value, r.id);
    }
    for (let id = 1; id < this.#values.length; id++) {
      if (this.#values[id] === undefined) throw new Error(`log dictionary: id ${id} is missing`);
    }
    this.#written = this.#values.length;
  }

  get size(): number {
    return this.#values.length - 1;
  }

  /** The id of `value` used in a column of kind `field`, given a new id when it has none. */
  idOf(value: string, field: number): number {
    let id = this.#ids.get(value);
    if (id === undefined) {
      id = this.#values.length;
      this.#values.push(value);
      this.#fields.push(field);
      this.#ids.set(value, id);
      if (this.#lower.length > 0) this.#lower.push(value.toLowerCase());
    } else if ((this.#fields[id]! & field) === 0) {
      this.#fields[id]! |= field;
      if (id < this.#written) this.#changed.add(id);
    }
    return id;
  }

  /** The id of `value`, undefined when the dictionary does not hold it. */
  find(value: string): number | undefined {
    return this.#ids.get(value);
  }

  valueOf(id: number): string {
    const v = this.#values[id];
    if (v === undefined || id === 0) throw new Error(`log dictionary: no entry ${id}`);
    return v;
  }

  fieldsOf(id: number): number {
    return this.#fields[id] ?? 0;
  }

  /** What to write with the rows encoded since the last `written()`: new entries, and old ones used in a new column. */
  pending(): {
    added: { id: number; value: string; fields: number }[];
    changed: { id: number; fields: number }[];
  } {
    const added = [];
    for (let id = this.#written; id < this.#values.length; id++)
      added.push({ id, value: this.#values[id]!, fields: this.#fields[id]! });
    return { added, changed: [...this.#changed].map((id) => ({ id, fields: this.#fields[id]! })) };
  }

  /** The pending entries are in the table now. */
  written(): void {
    this.#written = this.#values.length;
    this.#changed.clear();
  }

  /** The pending entries were not written (the transaction failed): forget the new ones. */
  forgetPending(): void {
    for (let id = this.#values.length - 1; id >= this.#written; id--) this.#ids.delete(this.#values[id]!);
    this.#values.length = this.#written;
    this.#fields.length = this.#written;
    if (this.#lower.length > this.#written) this.#lower.length = this.#written;
    // A `fields` bit set for an old id stays set: it only widens what a search reads.
    this.#changed.clear();
  }

  /**
   * The ids whose value, lower-cased, can hold `word` (lower-cased, no space): those containing it,
   * and message templates in which it fits with each of its digit runs standing for an argument.
   * Undefined when more than MANY_IDS do (the word does not narrow).
   */
  idsHolding(word: string): number[] | undefined {
    if (this.#lower.length === 0) this.#lower = this.#values.map((v) => v.toLowerCase());
    const abstract = word.replace(/[0-9]+/g, ARG);
    const out: number[] = [];
    for (let id = 1; id < this.#lower.length; id++) {
      const v = this.#lower[id]!;
      // A template holds no digits: a word's digit runs are (parts of) its arguments.
      if (v.includes(word) || (abstract !== word && v.includes(abstract))) {
        out.push(id);
        if (out.length > MANY_IDS) return undefined;
      }
    }
    return out;
  }
}
