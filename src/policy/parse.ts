/** Policy files in, validated Policy values out; every problem names file, line, rule and field. */
import {
  issuesToProblems,
  type LocatedDocument,
  parseYaml,
  problemAt,
  throwIfProblems,
  validateDocument,
} from '../document.js';
import { ErrorCode, type Problem } from '../errors.js';
import { SETTING_PATHS } from '../settings/schema.js';
import { checkIncludes } from './include.js';
import type { Policy, Rule } from './rule.js';
import { policySchema, ruleSchema } from './schema.js';

/** Where a policy came from, for error messages. */
export interface SourceInfo {
  readonly file?: string;
}

/** Parses the text of a policy file (YAML). Throws WARDEN_E_YAML_SYNTAX or WARDEN_E_POLICY_INVALID. */
export function parsePolicyText(text: string, source: SourceInfo = {}): Policy {
  const doc = parseYaml(text, source.file);
  return validatePolicy(doc.value ?? {}, source, doc);
}

/** Validates a policy given as a plain value (e.g. from JSON). Throws WARDEN_E_POLICY_INVALID listing every problem. */
export function validatePolicy(value: unknown, source: SourceInfo = {}, doc?: LocatedDocument): Policy {
  const file = source.file;
  const ruleNameAt = (path: readonly PropertyKey[]): string | undefined => {
    if (path[0] !== 'rules' || typeof path[1] !== 'number') return undefined;
    const rules = (value as { rules?: unknown })?.rules;
    const raw = Array.isArray(rules) ? (rules[path[1]] as { name?: unknown } | undefined) : undefined;
    return typeof raw?.name === 'string' ? raw.name : `#${path[1] + 1}`;
  };
  const parsed = validateDocument(
    policySchema,
    value,
    {
      code: ErrorCode.POLICY_INVALID,
      what: 'policy',
      notAMapping: 'a policy is a mapping with mode, defaults, addressGroups and rules',
      ruleNameAt,
    },
    file,
    doc,
  );
  const policy: Policy = {
    mode: parsed.mode,
    defaults: parsed.defaults,
    addressGroups: parsed.addressGroups,
    ...(parsed.lists !== undefined ? { lists: parsed.lists } : {}),
    rules: parsed.rules.map(stripUndefined),
    ...(parsed.include !== undefined ? { include: parsed.include } : {}),
    ...(parsed.disabled !== undefined ? { disabled: parsed.disabled } : {}),
  };
  throwIfProblems(ErrorCode.POLICY_INVALID, file ?? 'policy', crossCheck(policy, doc, file));
  return policy;
}

/** Validates one rule on its own (for an API adding or updating a single rule) against a policy's groups. */
export function validateRule(
  value: unknown,
  context: { addressGroups?: Policy['addressGroups']; lists?: Policy['lists'] } = {},
): Rule {
  const result = ruleSchema.safeParse(value, { reportInput: true });
  if (!result.success) {
    const name =
      typeof (value as { name?: unknown })?.name === 'string' ? (value as { name: string }).name : undefined;
    throwIfProblems(
      ErrorCode.POLICY_INVALID,
      'rule',
      issuesToProblems(result.error.issues, undefined, undefined, () => name, ruleSchema),
    );
  }
  const rule = stripUndefined(result.data!);
  const problems: Problem[] = [];
  checkRule(rule, [], context.addressGroups ?? {}, context.lists ?? {}, (path, message) =>
    problems.push({ path, rule: rule.name, message }),
  );
  throwIfProblems(ErrorCode.POLICY_INVALID, 'rule', problems);
  return rule;
}

function stripUndefined<T extends object>(o: T): T {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(o)) if (v !== undefined) out[k] = v;
  return out as T;
}

function crossCheck(policy: Policy, doc: LocatedDocument | undefined, file: string | undefined): Problem[] {
  const problems: Problem[] = [];
  const seen = new Map<string, number>();
  policy.rules.forEach((rule, i) => {
    const report = (path: readonly (string | number)[], message: string) =>
      problems.push(problemAt(doc, file, ['rules', i, ...path], message, rule.name));
    const earlier = seen.get(rule.name);
    if (earlier !== undefined)
      report(['name'], `rule name is already used by rule #${earlier + 1}; names must be unique`);
    else seen.set(rule.name, i);
    checkRule(rule, [], policy.addressGroups, policy.lists ?? {}, report);
  });
  problems.push(...checkIncludes(policy, doc, file));
  for (const [group, specs] of Object.entries(policy.addressGroups))
    specs.forEach((spec, j) => {
      const missing = spec.kind === 'list' ? missingList(spec.name, policy.lists ?? {}) : undefined;
      if (missing !== undefined) problems.push(problemAt(doc, file, ['addressGroups', group, j], missing));
    });
  return problems;
}

export function checkRule(
  rule: Rule,
  base: readonly (string | number)[],
  groups: Policy['addressGroups'],
  lists: NonNullable<Policy['lists']>,
  report: (path: readonly (string | number)[], message: string) => void,
): void {
  const portsAllowed = rule.protocol === 'tcp' || rule.protocol === 'udp' || rule.protocol === 'tcp+udp';
  for (const field of ['localPorts', 'remotePorts'] as const) {
    if (rule[field] !== undefined && !portsAllowed) {
      report(
        [...base, field],
        `ports need protocol tcp, udp or tcp+udp (this rule's protocol is ${rule.protocol})`,
      );
    }
  }
  if (rule.sha256 !== undefined && rule.application === 'any') {
    report(
      [...base, 'sha256'],
      'sha256 pins the executable of an application, but this rule has application "any": name the application (an absolute path)',
    );
  }
  rule.remote?.forEach((spec, j) => {
    if (spec.kind === 'group' && groups[spec.name] === undefined) {
      const known = Object.keys(groups);
      const hint =
        known.length === 0 ? 'the policy defines no addressGroups' : `known groups: ${known.join(', ')}`;
      report(
        [...base, 'remote', ...(rule.remote!.length > 1 ? [j] : [])],
        `address group "${spec.name}" is not defined (${hint})`,
      );
    }
    const missing = spec.kind === 'list' ? missingList(spec.name, lists) : undefined;
    if (missing !== undefined) report([...base, 'remote', ...(rule.remote!.length > 1 ? [j] : [])], missing);
  });
  if (rule.condition !== undefined) {
    const { setting, equals } = rule.condition;
    const known = SETTING_PATHS.find((p) => p.path === setting);
    if (known === undefined) {
      report(
        [...base, 'condition', 'setting'],
        `unknown setting "${setting}"; conditions can test ${SETTING_PATHS.map((p) => p.path).join(', ')}`,
      );
    } else if (typeof equals !== known.type) {
      report(
        [...base, 'condition', 'equals'],
        `setting "${setting}" holds a ${known.type}, not a ${typeof equals}`,
      );
    } else if (known.values !== undefined && !known.values.includes(String(equals))) {
      report([...base, 'condition', 'equals'], `setting "${setting}" is one of ${known.values.join(', ')}`);
    }
  }
}

/** The problem with a `list:name` reference, or undefined when the list is defined. */
function missingList(name: string, lists: NonNullable<Policy['lists']>): string | undefined {
  if (lists[name] !== undefined) return undefined;
  const known = Object.keys(lists);
  const hint = known.length === 0 ? 'the policy defines no lists' : `known lists: ${known.join(', ')}`;
  return `list "${name}" is not defined (${hint})`;
}
