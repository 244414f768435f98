/**
 * The log store's dictionary (schema version 5): every string field of a log
 * item that repeats (application, host, rule, user, source, direction,
 * protocol, a local address, a message template) is stored once in the `dict`
 * table and referred to by its integer id in the rows. The whole dictionary is
 * kept in memory (it is small next to the items: its entries are distinct
 * strings), so encoding an item costs Map lookups, and a text search compares
 * the needle with the dictionary's strings rather than with every row's text.
 * Each entry knows the newest epoch (log-schema.ts EPOCH_SHIFT) a row used it
 * in, `last`: retention deletes the entries whose `last` is older than the
 * oldest row's epoch (no row can use them), so the dictionary follows the rows.
 * Pure: the store writes `pending()` entries in the transaction of their rows.
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
  /** Index = id; id 0 is never used; undefined for an id free to be given again (retention deleted it). */
  readonly #values: (string | undefined)[] = [undefined];
  readonly #fields: number[] = [0];
  /** The newest epoch a row used each id in. */
  readonly #last: number[] = [0];
  /** Lower-cased values, made on the first text search. */
  #lower: (string | undefined)[] = [];
  /** Ids free to be given again (no row uses them: retention deleted their entries). */
  readonly #free: number[] = [];
  /** Ids given since the last `written()` (not in the table yet), and written ids whose `fields` or `last` changed. */
  #added: number[] = [];
  readonly #changed = new Set<number>();
  /** The epoch of the row being encoded (useEpoch). */
  #epoch = 0;
  #size = 0;

  /** The entries of the `dict` table (id, value, fields, last), any order. */
  constructor(rows: Iterable<{ id: number; value: string; fields: number; last?: number }> = []) {
    const list = [...rows];
    let max = 0;
    for (const r of list) {
      if (!Number.isSafeInteger(r.id) || r.id < 1) throw new Error(`log dictionary: bad id ${r.id}`);
      if (r.id > max) max = r.id;
    }
    for (let id = 1; id <= max; id++) {
      this.#values.push(undefined);
      this.#fields.push(0);
      this.#last.push(0);
    }
    for (const r of list) {
      if (this.#values[r.id] !== undefined) throw new Error(`log dictionary: repeated id ${r.id}`);
      this.#values[r.id] = r.value;
      this.#fields[r.id] = r.fields;
      this.#last[r.id] = r.last ?? 0;
      this.#ids.set(r.value, r.id);
      this.#size++;
    }
    for (let id = max; id >= 1; id--) if (this.#values[id] === undefined) this.#free.push(id);
  }

  /** The number of entries. */
  get size(): number {
    return this.#size;
  }

  /** The rows encoded from now on have seqs in `epoch` (or a newer one). */
  useEpoch(epoch: number): void {
    this.#epoch = epoch;
  }

  /** The id of `value` used in a column of kind `field`, given an id when it has none. */
  idOf(value: string, field: number): number {
    let id = this.#ids.get(value);
    if (id === undefined) {
      id = this.#free.pop() ?? this.#values.length;
      this.#values[id] = value;
      this.#fields[id] = field;
      this.#last[id] = this.#epoch;
      this.#ids.set(value, id);
      this.#added.push(id);
      this.#size++;
      if (this.#lower.length > 0) this.#lower[id] = value.toLowerCase();
    } else if ((this.#fields[id]! & field) === 0 || this.#last[id]! < this.#epoch) {
      this.#fields[id]! |= field;
      if (this.#last[id]! < this.#epoch) this.#last[id] = this.#epoch;
      this.#changed.add(id);
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

  /**
   * What to write with the rows encoded since the last `written()`: new entries, and old ones used
   * in a new column or a newer epoch.
   */
  pending(): {
    added: { id: number; value: string; fields: number; last: number }[];
    changed: { id: number; fields: number; last: number }[];
  } {
    const entry = (id: number) => ({ id, fields: this.#fields[id]!, last: this.#last[id]! });
    const added = this.#added.map((id) => ({ ...entry(id), value: this.#values[id]! }));
    const fresh = new Set(this.#added);
    const changed: { id: number; fields: number; last: number }[] = [];
    for (const id of this.#changed) if (!fresh.has(id)) changed.push(entry(id));
    return { added, changed };
  }

  /**
   * Up to `max` ids of written entries whose newest use is older than `epoch` (when no row of `epoch`
   * or later is stored, no row uses them), looking from id `from` on; `next` is where the next call
   * goes on, so pruning a large dictionary batch by batch reads each id once.
   */
  unusedBefore(epoch: number, max: number, from = 1): { ids: number[]; next: number } {
    const ids: number[] = [];
    const waiting = new Set(this.#added);
    let id = Math.max(1, from);
    for (; id < this.#values.length && ids.length < max; id++)
      if (this.#values[id] !== undefined && this.#last[id]! < epoch && !waiting.has(id)) ids.push(id);
    return { ids, next: id };
  }

  /** Forgets entries, deleted from the table in the same turn; their ids may be given again. */
  remove(ids: readonly number[]): void {
    for (const id of ids) {
      const value = this.#values[id];
      if (value === undefined) continue;
      this.#ids.delete(value);
      this.#values[id] = undefined;
      if (id < this.#lower.length) this.#lower[id] = undefined;
      this.#changed.delete(id);
      this.#free.push(id);
      this.#size--;
    }
  }

  /** The pending entries are in the table now. */
  written(): void {
    this.#added = [];
    this.#changed.clear();
  }

  /** The pending entries were not written (the transaction failed): forget the new ones. */
  forgetPending(): void {
    const added = this.#added;
    this.#added = [];
    this.remove(added);
    // A `fields` bit set or `last` raised for an old id stays: it only widens what a search reads, or
    // keeps the entry longer.
    this.#changed.clear();
  }

  /**
   * The ids whose value, lower-cased, can hold `word` (lower-cased, no space): those containing it,
   * and message templates in which it fits with each of its digit runs standing for an argument.
   * Undefined when more than MANY_IDS do (the word does not narrow).
   */
  idsHolding(word: string): number[] | undefined {
    if (this.#lower.length === 0) this.#lower = this.#values.map((v) => v?.toLowerCase());
    const abstract = word.replace(/[0-9]+/g, ARG);
    const out: number[] = [];
    for (let id = 1; id < this.#lower.length; id++) {
      const v = this.#lower[id];
      if (v === undefined) continue;
      // A template holds no digits: a word's digit runs are (parts of) its arguments.
      if (v.includes(word) || (abstract !== word && v.includes(abstract))) {
        out.push(id);
        if (out.length > MANY_IDS) return undefined;
      }
    }
    return out;
  }
}
