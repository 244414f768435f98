/**
 * Rule subscriptions (docs/policy.md, "Included rules"): the text of an included rules file is
 * parsed and validated here with the policy's own rule schema and located errors (the file or URL,
 * line, rule, field); withIncludes joins the included rules to the policy, named `<subscription>/<rule>`,
 * after the policy's own rules, with the policy's `disabled` list applied. Pure: the engine fetches.
 */
import { z } from 'zod';
import {
  type LocatedDocument,
  parseYaml,
  problemAt,
  throwIfProblems,
  validateDocument,
} from '../document.js';
import { ErrorCode, type Problem } from '../errors.js';
import { checkRule } from './parse.js';
import type { IncludeSource, Policy, Rule } from './rule.js';
import { ruleSchema } from './schema.js';

/** The most rules one subscription may bring (a server cannot make every decision slow). */
export const MAX_INCLUDED_RULES = 5000;

/** What an included file may hold: its rules (and the format version), nothing else. */
const includedSchema = z.strictObject({
  version: z.literal(1, { error: 'version must be 1 (the only policy format so far)' }).default(1),
  rules: z
    .array(ruleSchema, { error: 'rules must be a list' })
    .max(MAX_INCLUDED_RULES, `an included file holds at most ${MAX_INCLUDED_RULES} rules`),
});

/** Top-level keys of a policy an included file may not have, and why. */
const REFUSED_KEYS: Record<string, string> = {
  include: 'an included file may not include further files (subscriptions do not nest)',
  lists: 'an included file may not define lists: define them in the policy itself',
  addressGroups: 'an included file may not define address groups: write the addresses in its rules',
  mode: 'an included file holds rules only: the mode is the policy’s',
  defaults: 'an included file holds rules only: the defaults are the policy’s',
  disabled: 'an included file holds rules only: the disabled list is the policy’s',
};

/** Where a subscription's text comes from, for messages: its file path or URL. */
export function includeLabel(source: IncludeSource): string {
  return source.url ?? source.file;
}

/**
 * Parses and validates the text of an included rules file. Throws WARDEN_E_YAML_SYNTAX or
 * WARDEN_E_POLICY_INVALID with every problem located in `label` (the file path or URL). The rules
 * keep their own names; withIncludes prefixes them.
 */
export function parseIncludedRules(text: string, label: string): Rule[] {
  const doc = parseYaml(text, label);
  const value = doc.value ?? {};
  const rulesOf = (value as { rules?: unknown }).rules;
  const ruleNameAt = (path: readonly PropertyKey[]): string | undefined => {
    if (path[0] !== 'rules' || typeof path[1] !== 'number' || !Array.isArray(rulesOf)) return undefined;
    const raw = rulesOf[path[1]] as { name?: unknown } | undefined;
    return typeof raw?.name === 'string' ? raw.name : `#${path[1] + 1}`;
  };
  if (value !== null && typeof value === 'object' && !Array.isArray(value)) {
    const refused = Object.keys(value)
      .filter((k) => REFUSED_KEYS[k] !== undefined)
      .map((k) => problemAt(doc, label, [k], REFUSED_KEYS[k]!));
    throwIfProblems(ErrorCode.POLICY_INVALID, label, refused);
  }
  const parsed = validateDocument(
    includedSchema,
    value,
    {
      code: ErrorCode.POLICY_INVALID,
      what: 'included rules',
      notAMapping: 'an included file is a mapping with a rules: list',
      ruleNameAt,
    },
    label,
    doc,
  );
  const rules = parsed.rules.map(
    (r) => Object.fromEntries(Object.entries(r).filter(([, v]) => v !== undefined)) as unknown as Rule,
  );
  throwIfProblems(ErrorCode.POLICY_INVALID, label, crossCheckIncluded(rules, doc, label));
  return rules;
}

function crossCheckIncluded(rules: readonly Rule[], doc: LocatedDocument, label: string): Problem[] {
  const problems: Problem[] = [];
  const seen = new Map<string, number>();
  rules.forEach((rule, i) => {
    const report = (path: readonly (string | number)[], message: string) =>
      problems.push(problemAt(doc, label, ['rules', i, ...path], message, rule.name));
    const earlier = seen.get(rule.name);
    if (earlier !== undefined)
      report(['name'], `rule name is already used by rule #${earlier + 1}; names must be unique`);
    else seen.set(rule.name, i);
    // Included rules stand on their own: a policy's group or list names are not their contract.
    const refs = (rule.remote ?? []).filter((s) => s.kind === 'group' || s.kind === 'list');
    if (refs.length > 0) {
      report(
        ['remote'],
        'included rules cannot use address groups (@name) or lists (list:name): write the addresses in the rule',
      );
      return;
    }
    checkRule(rule, [], {}, {}, report);
  });
  return problems;
}

/** Checks the policy's include and disabled sections against each other and the policy's rules. */
export function checkIncludes(
  policy: Policy,
  doc: LocatedDocument | undefined,
  file: string | undefined,
): Problem[] {
  const problems: Problem[] = [];
  const names = new Map<string, number>();
  (policy.include ?? []).forEach((inc, i) => {
    const earlier = names.get(inc.name);
    if (earlier !== undefined)
      problems.push(
        problemAt(
          doc,
          file,
          ['include', i, 'name'],
          `subscription name is already used by include #${earlier + 1}`,
        ),
      );
    else names.set(inc.name, i);
  });
  policy.rules.forEach((rule, i) => {
    const sub = rule.name.slice(0, rule.name.indexOf('/'));
    if (rule.name.includes('/') && names.has(sub))
      problems.push(
        problemAt(
          doc,
          file,
          ['rules', i, 'name'],
          `rule names starting with "${sub}/" belong to the subscription "${sub}"; rename the rule`,
          rule.name,
        ),
      );
  });
  (policy.disabled ?? []).forEach((entry, i) => {
    const slash = entry.indexOf('/');
    const sub = slash > 0 ? entry.slice(0, slash) : '';
    if (slash <= 0 || slash === entry.length - 1)
      problems.push(
        problemAt(doc, file, ['disabled', i], `"${entry}" is not an included rule name (subscription/rule)`),
      );
    else if (!names.has(sub)) {
      const known = [...names.keys()];
      problems.push(
        problemAt(
          doc,
          file,
          ['disabled', i],
          `"${entry}": no subscription "${sub}" (${known.length === 0 ? 'the policy includes nothing' : `known: ${known.join(', ')}`})`,
        ),
      );
    }
  });
  return problems;
}

/** The subscription an (included) rule name belongs to, or undefined for the policy's own rules. */
export function subscriptionOf(policy: Policy, ruleName: string): string | undefined {
  const slash = ruleName.indexOf('/');
  if (slash <= 0) return undefined;
  const sub = ruleName.slice(0, slash);
  return policy.include?.some((i) => i.name === sub) ? sub : undefined;
}

/** The name an included rule goes by in the policy. */
export function includedRuleName(subscription: string, rule: string): string {
  return `${subscription}/${rule}`;
}

/**
 * The policy in force: its own rules, then each subscription's rules in the order of `include`,
 * named `<subscription>/<rule>`; a rule named in `disabled` is kept but disabled. A subscription
 * without loaded rules (never fetched) adds nothing.
 */
export function withIncludes(policy: Policy, included: ReadonlyMap<string, readonly Rule[]>): Policy {
  if (policy.include === undefined || policy.include.length === 0) return policy;
  const disabled = new Set(policy.disabled ?? []);
  const extra: Rule[] = [];
  for (const inc of policy.include)
    for (const rule of included.get(inc.name) ?? []) {
      const name = includedRuleName(inc.name, rule.name);
      extra.push({ ...rule, name, enabled: rule.enabled && !disabled.has(name) });
    }
  if (extra.length === 0) return policy;
  return { ...policy, rules: [...policy.rules, ...extra] };
}
