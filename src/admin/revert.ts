/**
 * Undoing one change when other changes came after it (an unconfirmed change whose deadline passed):
 * a three-way revert on plain configuration objects, like `git revert`. What the change did
 * (`before` -> `changed`) is undone in `current` wherever `current` still holds what the change made;
 * where a later change touched the same thing, the revert stops with the places that conflict.
 * Rule lists are matched by rule name, so later rules added or removed elsewhere do not conflict.
 */
import { isDeepStrictEqual } from 'node:util';

/** A place where a later change touched what the change to undo touched, e.g. "rules.ssh.action". */
export class RevertConflict extends Error {
  constructor(readonly paths: readonly string[]) {
    super(`changed again since: ${paths.join(', ')}`);
  }
}

type Plain = unknown;
type Named = { name: string } & Record<string, unknown>;

const isObject = (v: unknown): v is Record<string, unknown> =>
  v !== null && typeof v === 'object' && !Array.isArray(v);
const isNamedList = (v: unknown): v is Named[] =>
  Array.isArray(v) && v.every((x) => isObject(x) && typeof x.name === 'string');

/**
 * `current` with the change `before` -> `changed` undone. `undefined` stands for "absent" (a key or rule
 * that did not exist). Throws RevertConflict naming every conflicting place; returns nothing half-done.
 */
export function revertChange(before: Plain, changed: Plain, current: Plain): Plain {
  const conflicts: string[] = [];
  const out = revertAt(before, changed, current, '', conflicts);
  if (conflicts.length > 0) throw new RevertConflict(conflicts);
  return out;
}

function revertAt(before: Plain, changed: Plain, current: Plain, path: string, conflicts: string[]): Plain {
  if (isDeepStrictEqual(before, changed)) return current; // the change did not touch this
  if (isDeepStrictEqual(current, changed)) return before; // untouched since: undo it here
  if (isDeepStrictEqual(current, before)) return current; // undone already
  if (isObject(before) && isObject(changed) && isObject(current)) {
    const out: Record<string, unknown> = {};
    const keys = new Set([...Object.keys(current), ...Object.keys(before), ...Object.keys(changed)]);
    for (const k of keys) {
      const v = revertAt(before[k], changed[k], current[k], path === '' ? k : `${path}.${k}`, conflicts);
      if (v !== undefined) out[k] = v;
    }
    return out;
  }
  if (isNamedList(before) && isNamedList(changed) && isNamedList(current))
    return revertList(before, changed, current, path, conflicts);
  conflicts.push(path === '' ? '(all)' : path);
  return current;
}

const byName = (list: Named[]) => new Map(list.map((x) => [x.name, x]));
const names = (list: Named[], keep: (n: string) => boolean) => list.map((x) => x.name).filter(keep);

/** Rules by name: each rule reverted on its own; a move is undone only if the order was not changed since. */
function revertList(before: Named[], changed: Named[], current: Named[], path: string, conflicts: string[]) {
  const [b, c, now] = [byName(before), byName(changed), byName(current)];
  const result = new Map<string, Named>();
  const all = new Set([...now.keys(), ...b.keys(), ...c.keys()]);
  for (const name of all) {
    const v = revertAt(b.get(name), c.get(name), now.get(name), `${path}.${name}`, conflicts);
    if (v !== undefined) result.set(name, v as Named);
  }
  // Order: rules both before and after the change keep their order from `before` if the change moved them
  // and nothing moved them since; otherwise the current order stays.
  const common = (n: string) => b.has(n) && c.has(n);
  const moved = !isDeepStrictEqual(names(before, common), names(changed, common));
  let order = current.map((x) => x.name);
  if (moved) {
    const inNow = (n: string) => common(n) && now.has(n);
    if (isDeepStrictEqual(names(current, inNow), names(changed, inNow))) {
      const wanted = names(before, inNow);
      let i = 0;
      order = order.map((n) => (inNow(n) ? wanted[i++]! : n));
    } else conflicts.push(`${path} (order)`);
  }
  // Rules the change removed come back after the rule that preceded them before it.
  for (const [i, r] of before.entries()) {
    if (order.includes(r.name) || !result.has(r.name)) continue;
    const prev = before
      .slice(0, i)
      .map((x) => x.name)
      .findLast((n) => order.includes(n));
    order.splice(prev === undefined ? 0 : order.indexOf(prev) + 1, 0, r.name);
  }
  return order.filter((n) => result.has(n)).map((n) => result.get(n)!);
}
