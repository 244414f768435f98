/**
 * Lint findings about the policy's lists (docs/policy.md, "Lists"): a list that is empty, one
 * that could not be loaded (no copy, or the last refresh failed), and two lists that share
 * entries. Each finding names the first rule that uses the list.
 */
import type { CompiledPolicy, CompiledRule } from './compile.js';
import { type Finding, type ListLintFacts, rangesMeeting } from './lint.js';
import type { ListContent } from './list-format.js';

/** The list findings; none without the engine's facts about its lists. */
export function listFindings(
  policy: CompiledPolicy,
  facts: ReadonlyMap<string, ListLintFacts> | undefined,
): Finding[] {
  if (facts === undefined) return [];
  const firstUse = new Map<string, CompiledRule>();
  for (const r of policy.rules.slice(policy.internalCount))
    for (const name of r.remote?.lists ?? []) if (!firstUse.has(name)) firstUse.set(name, r);
  const out: Finding[] = [];
  const at = (r: CompiledRule, kind: Finding['kind'], severity: Finding['severity'], message: string) =>
    out.push({ kind, severity, rule: r.rule.name, ruleIndex: r.index, message });
  const loaded: [string, ListContent, CompiledRule][] = [];
  for (const [name, rule] of firstUse) {
    const f = facts.get(name);
    if (f === undefined) continue;
    if (f.content === undefined) {
      at(
        rule,
        'list-unreachable',
        'error',
        `list "${name}" has never been loaded${f.error === undefined ? '' : ` (${f.error})`}: rule "${rule.rule.name}" and every rule using it match nothing from it`,
      );
      continue;
    }
    if (f.error !== undefined)
      at(
        rule,
        'list-unreachable',
        'warning',
        `list "${name}" could not be refreshed (${f.error}); its last good copy (${f.content.entries} entries) is in force`,
      );
    if (f.content.entries === 0)
      at(
        rule,
        'list-empty',
        'warning',
        `list "${name}" is empty: rule "${rule.rule.name}" matches nothing from it`,
      );
    else loaded.push([name, f.content, rule]);
  }
  for (let i = 0; i < loaded.length; i++) {
    for (let j = i + 1; j < loaded.length; j++) {
      const [a, ca] = loaded[i]!;
      const [b, cb, rule] = loaded[j]!;
      const shared = sharedEntries(ca, cb);
      if (shared > 0)
        at(
          rule,
          'list-overlap',
          'warning',
          `lists "${a}" and "${b}" share ${shared} ${shared === 1 ? 'entry' : 'entries'} (names or address ranges); a rule using both decides them once`,
        );
    }
  }
  return out;
}

/** Names in both lists plus address ranges of one meeting a range of the other. */
export function sharedEntries(a: ListContent, b: ListContent): number {
  const [small, big] = a.names.size <= b.names.size ? [a.names, b.names] : [b.names, a.names];
  let n = 0;
  for (const name of small) if (big.has(name)) n++;
  return n + rangesMeeting(a.v4, b.v4) + rangesMeeting(a.v6, b.v6);
}
