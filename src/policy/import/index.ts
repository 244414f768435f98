/**
 * Import of rules from OpenSnitch, ufw and firewalld into a Warden policy.
 * Every rule is checked against the policy schema; what cannot be imported
 * faithfully is listed in `problems` (file, line or field, rule, reason),
 * what was imported with a caveat in `notes`.
 */
import { type Problem, WardenError } from '../../errors.js';
import { validatePolicy, validateRule } from '../parse.js';
import type { Policy, Rule } from '../rule.js';
import { listsToPlain, ruleToPlain } from '../serialize.js';
import type { ImportResult, SourceFile, Tool } from './common.js';
import { importFirewalld } from './firewalld.js';
import { importOpenSnitch } from './opensnitch.js';
import { importUfw } from './ufw.js';

export { type ImportResult, type SourceFile, TOOLS, type Tool } from './common.js';
export { importFirewalld } from './firewalld.js';
export { importOpenSnitch } from './opensnitch.js';
export { importUfw } from './ufw.js';

/** What importPolicy returns: a valid policy and what did not make it (or made it with a caveat). */
export interface ImportedPolicy {
  readonly policy: Policy;
  readonly problems: readonly Problem[];
  readonly notes: readonly Problem[];
}

export interface ImportOptions {
  /** firewalld service XML files, overriding the built-in service table. */
  readonly services?: readonly SourceFile[];
  /** Milliseconds since the epoch, to say which imported temporary rules have already expired. */
  readonly now?: number;
}

/** Runs one tool's importer and turns its result into a validated Warden policy. */
export function importPolicy(
  from: Tool,
  files: readonly SourceFile[],
  options: ImportOptions = {},
): ImportedPolicy {
  const result =
    from === 'opensnitch'
      ? importOpenSnitch(files, options.now)
      : from === 'ufw'
        ? importUfw(files)
        : importFirewalld(files, options.services ?? []);
  return toPolicy(result);
}

/** Validates each rule on its own (a rule the schema refuses is reported, not fatal) and builds the policy. */
export function toPolicy(result: ImportResult): ImportedPolicy {
  const problems = [...result.problems];
  const rules: Rule[] = [];
  for (const rule of result.rules) {
    try {
      rules.push(validateRule(ruleToPlain(rule), { lists: result.lists ?? {} }));
    } catch (e) {
      const why = e instanceof WardenError ? e.problems.map((p) => p.message).join('; ') : String(e);
      problems.push({
        path: [],
        rule: rule.name,
        message: `not imported: Warden's policy schema refuses it: ${why}`,
      });
    }
  }
  const policy = validatePolicy({
    version: 1,
    mode: 'enforce',
    defaults: {
      incoming: result.defaults.incoming ?? { action: 'deny', log: true },
      outgoing: result.defaults.outgoing ?? { action: 'allow', log: true },
    },
    addressGroups: {},
    ...(result.lists !== undefined ? { lists: listsToPlain(result.lists) } : {}),
    rules: rules.map(ruleToPlain),
  });
  return { policy, problems, notes: result.notes };
}
