/**
 * What changed between two compiled rulesets, as one `nft -f` batch (one transaction: the kernel
 * takes all of it or none) that turns the table the first one loaded into the second: set elements
 * added and deleted, sets and chains added and deleted, and every chain whose rules differ flushed
 * and filled again in the same transaction. Base chains keep their hooks and dynamic sets (flood
 * buckets and counters, UDP flow owners) keep their elements, as with a full in-place load.
 *
 * Rules are rewritten per chain rather than one by one by handle: learning handles costs an
 * `nft --echo` or a listing, and nft 1.0.6 fetches every set element for either (about 30 ms with
 * 10,000 elements, more with full dynamic sets), while a chain holds a few dozen rules because the
 * policy's matches live in sets. Pure: no I/O.
 */
import type { TableModel } from './ruleset.js';
import { TABLE_FAMILY, TABLE_NAME } from './ruleset.js';
import type { ChainModel, SetModel } from './ruleset-sets.js';

/** How big the change is (for logs and the benchmark). */
export interface ChangeStats {
  readonly elementsAdded: number;
  readonly elementsDeleted: number;
  readonly setsAdded: number;
  readonly setsDeleted: number;
  readonly chainsRewritten: number;
  readonly chainsAdded: number;
  readonly chainsDeleted: number;
}

export interface Change {
  /** The batch for `nft -f -`; '' when the tables are the same. */
  readonly text: string;
  readonly stats: ChangeStats;
}

const T = `${TABLE_FAMILY} ${TABLE_NAME}`;

function byName<V extends { readonly name: string }>(items: readonly V[]): Map<string, V> {
  return new Map(items.map((i) => [i.name, i]));
}

function sameLines(a: readonly string[], b: readonly string[]): boolean {
  return a.length === b.length && a.every((l, i) => l === b[i]);
}

function setDeclaration(s: SetModel): string {
  const elements = s.elements.length > 0 ? ` elements = { ${s.elements.join(', ')} };` : '';
  return `add set ${T} ${s.name} { ${s.declaration.join('; ')};${elements} }`;
}

function chainDeclaration(c: ChainModel): string {
  return c.hook === null ? `add chain ${T} ${c.name}` : `add chain ${T} ${c.name} { ${c.hook} }`;
}

/**
 * The batch from `from` to `to`, or null when it cannot be a change: a dynamic set was added,
 * removed or declared differently, or a set or base chain kept its name but not its declaration
 * (the caller then loads the whole table in place, which handles those).
 */
export function changeBatch(from: TableModel, to: TableModel): Change | null {
  const fromDynamic = byName(from.dynamicSets);
  if (fromDynamic.size !== to.dynamicSets.length) return null;
  for (const s of to.dynamicSets) {
    const old = fromDynamic.get(s.name);
    if (old === undefined || !sameLines(old.declaration, s.declaration)) return null;
  }
  const fromSets = byName(from.sets);
  const toSets = byName(to.sets);
  const fromChains = byName(from.chains);
  const toChains = byName(to.chains);

  const addSets: string[] = [];
  const elements: string[] = [];
  let elementsAdded = 0;
  let elementsDeleted = 0;
  for (const s of to.sets) {
    const old = fromSets.get(s.name);
    if (old === undefined) {
      addSets.push(setDeclaration(s));
      continue;
    }
    if (!sameLines(old.declaration, s.declaration)) return null;
    if (sameLines(old.elements, s.elements)) continue; // most sets: no Set of 10,000 strings built
    const next = new Set(s.elements);
    const prev = new Set(old.elements);
    // Deleted first: an interval set must never hold an old and a new range that overlap.
    const gone = old.elements.filter((e) => !next.has(e));
    const come = s.elements.filter((e) => !prev.has(e));
    if (gone.length > 0) elements.push(`delete element ${T} ${s.name} { ${gone.join(', ')} }`);
    if (come.length > 0) elements.push(`add element ${T} ${s.name} { ${come.join(', ')} }`);
    elementsAdded += come.length;
    elementsDeleted += gone.length;
  }
  const deleteSets = from.sets.filter((s) => !toSets.has(s.name)).map((s) => `delete set ${T} ${s.name}`);
  // Counters of rules that stay keep their counts; new ones come first (map elements and rules name
  // them), those of rules gone go last (after the rules and elements that named them).
  const fromCounters = new Set(from.counters);
  const toCounters = new Set(to.counters);
  const addCounters = to.counters.filter((c) => !fromCounters.has(c)).map((c) => `add counter ${T} ${c}`);
  const deleteCounters = from.counters
    .filter((c) => !toCounters.has(c))
    .map((c) => `delete counter ${T} ${c}`);

  const addChains: string[] = [];
  const rules: string[] = [];
  let chainsRewritten = 0;
  for (const c of to.chains) {
    const old = fromChains.get(c.name);
    if (old === undefined) addChains.push(chainDeclaration(c));
    else if (old.hook !== c.hook) return null;
    else if (sameLines(old.rules, c.rules)) continue;
    else {
      rules.push(`flush chain ${T} ${c.name}`);
      chainsRewritten++;
    }
    for (const r of c.rules) rules.push(`add rule ${T} ${c.name} ${r}`);
  }
  // Emptied first, deleted after: a chain cannot go while a rule (of its own or another) jumps to it.
  const gone = from.chains.filter((c) => !toChains.has(c.name));
  const deleteChains = [
    ...gone.map((c) => `flush chain ${T} ${c.name}`),
    ...gone.map((c) => `delete chain ${T} ${c.name}`),
  ];

  const lines = [
    ...addCounters,
    ...addSets,
    ...addChains,
    ...elements,
    ...rules,
    ...deleteChains,
    ...deleteSets,
    ...deleteCounters,
  ];
  return {
    text: lines.length === 0 ? '' : `${lines.join('\n')}\n`,
    stats: {
      elementsAdded,
      elementsDeleted,
      setsAdded: addSets.length,
      setsDeleted: deleteSets.length,
      chainsRewritten,
      chainsAdded: addChains.length,
      chainsDeleted: gone.length,
    },
  };
}
