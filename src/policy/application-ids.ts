/**
 * A number for each application path, given once for the engine's life: the engine gives it where
 * it learns an executable (the attribution's known executables and identity cache), so a decision
 * finds the application's rules by an array index (rule-index.ts, an `Int32Array` per compiled
 * policy) instead of looking the path string up. At 100,000 rules that string lookup (a V8
 * dictionary of tens of thousands of paths, reached through the megamorphic keyed-load stub) was
 * the largest single cost of a decision.
 *
 * A number is never given to another path, so what a compiled policy remembers per number stays
 * true. The table is bounded: a host that runs more distinct executables than MAX_APPLICATION_IDS
 * (a local program can make new paths at will) gets NO_APPLICATION_ID for the rest, and their
 * decisions look the path up as before: slower by tens of nanoseconds, never different.
 */

/** The most paths numbered; past it, NO_APPLICATION_ID. */
export const MAX_APPLICATION_IDS = 1 << 16;

/** No number: the path is looked up by its text. */
export const NO_APPLICATION_ID = -1;

const ids = new Map<string, number>();

/** The path's number (0 .. MAX_APPLICATION_IDS - 1), or NO_APPLICATION_ID once the table is full. */
export function applicationIdOf(path: string): number {
  const known = ids.get(path);
  if (known !== undefined) return known;
  if (ids.size >= MAX_APPLICATION_IDS) return NO_APPLICATION_ID;
  const id = ids.size;
  ids.set(path, id);
  return id;
}

/** The path's number if it has one (gives none). */
export function numberedAs(path: string): number {
  return ids.get(path) ?? NO_APPLICATION_ID;
}

/** From ApplicationKeys.known: nothing is remembered for this number and path. */
export const NOT_REMEMBERED = -2;

/**
 * What one compiled policy remembers per application number: the key (rule-index.ts) of the path
 * that came with it. The path is remembered with the key, and a number that comes with another
 * path is not answered: a caller's wrong number can cost time, never another application's rules.
 */
export class ApplicationKeys {
  /** By number; -1 where none came yet. */
  #keys = new Int32Array(0);
  /** By number; '' where none came yet (only strings here, so a compare is of pointers first). */
  readonly #paths: string[] = [];

  /**
   * The key remembered for this number and path, or NOT_REMEMBERED. `Object.is`, not `===`: the
   * compiled `===` of two strings first loads each one's map to check it is a string, and at
   * 100,000 rules the remembered path is most often cold, so that load was a cache miss on every
   * decision; `Object.is` is a call that compares the references first (the caller's path is most
   * often the very string remembered) and the characters only when they differ.
   */
  known(id: number, path: string): number {
    if (id >= 0 && id < this.#paths.length && Object.is(this.#paths[id], path)) return this.#keys[id]!;
    return NOT_REMEMBERED;
  }

  /** Remembers the path's key under its number, unless the number is not the path's or is taken. */
  remember(id: number, path: string, key: number): void {
    if (!(id >= 0 && id < MAX_APPLICATION_IDS) || numberedAs(path) !== id) return;
    if (id >= this.#paths.length) {
      // Numbers are given from 0 up and bounded: the arrays at most double, up to the bound.
      const size = Math.min(MAX_APPLICATION_IDS, Math.max(1024, this.#paths.length * 2, id + 1));
      const keys = new Int32Array(size).fill(-1);
      keys.set(this.#keys);
      this.#keys = keys;
      for (let i = this.#paths.length; i < size; i++) this.#paths.push('');
    }
    if (this.#paths[id] !== '') return;
    this.#keys[id] = key;
    this.#paths[id] = path;
  }
}
