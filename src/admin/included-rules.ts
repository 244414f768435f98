/**
 * Rules included from a subscription (docs/policy.md, "Included rules") in the rules.* methods:
 * read-only (update, remove and move refused with WARDEN_E_RULE_INCLUDED naming the subscription),
 * except that an update changing only `enabled` puts the rule in, or takes it out of, the policy's
 * `disabled:` list, which a refresh of the subscription keeps. Also the errors of rules.* on names and positions.
 */
import { isDeepStrictEqual } from 'node:util';
import { ErrorCode, WardenError } from '../errors.js';
import { type Policy, ruleToPlain, subscriptionOf, validateRule } from '../policy/index.js';
import type { ConfigStore } from './config-store.js';
import type { Caller, Confirm } from './handler-context.js';

/** A rule name that names no rule. */
export function notFound(name: string): WardenError {
  return new WardenError(ErrorCode.NOT_FOUND, `no rule is named "${name}"`, {
    suggestion: 'List the rules with `warden rules list` (or the Rules page).',
  });
}

/** A position outside 0..last is refused, not clamped: `rules move X 99` with 5 rules must not quietly mean "last". */
export function checkPosition(at: number, last: number, verb: 'add' | 'move', lastExample: string): void {
  if (at >= 0 && at <= last) return;
  throw new WardenError(
    ErrorCode.PARAMS_INVALID,
    `position ${at + 1} is out of range: valid positions are 1..${last + 1} (the protocol counts from 0: ${at} is not in 0..${last})`,
    {
      suggestion:
        `In the CLI positions count from 1: use 1..${last + 1}, e.g. \`warden rules ${verb} ${lastExample}\`; ` +
        '`warden rules list` shows the current order.',
    },
  );
}

export interface IncludedRuleKit {
  readonly config: ConfigStore;
  /** The policy in force (with included rules). */
  readonly inForce: () => Policy;
  readonly savePolicy: (policy: Policy, caller: Caller, confirm?: Confirm) => Promise<number>;
  readonly audit: (caller: Caller, message: string) => void;
  readonly probation: (version: number, caller: Caller, confirm: Confirm) => Promise<object>;
}

export function includedRuleHandlers(kit: IncludedRuleKit) {
  const { config: cfg, inForce, savePolicy, audit, probation } = kit;
  /** Refuses a change to an included rule, naming its subscription. */
  const refuseIncluded = (name: string, verb: string) => {
    const sub = subscriptionOf(cfg.policy(), name);
    if (sub === undefined) return;
    throw new WardenError(
      ErrorCode.RULE_INCLUDED,
      `rule "${name}" is included from the subscription "${sub}" and read-only here: it cannot be ${verb}`,
      {
        suggestion:
          `Change it at the subscription's source, or switch it off: rules.update "${name}" with only enabled: false ` +
          `puts it in the policy's disabled list (a refresh keeps that). Remove "${sub}" from include: to drop all its rules.`,
      },
    );
  };
  /** An update of an included rule that changes only `enabled`: its name joins or leaves `disabled`. */
  const toggleIncluded = async (
    name: string,
    raw: Record<string, unknown>,
    caller: Caller,
    confirm?: Confirm,
  ) => {
    const current = inForce().rules.find((r) => r.name === name);
    if (current === undefined) throw notFound(name);
    const policy = cfg.policy();
    // What rules.list and rules.get add to a rule (its subscription, counters) may come back: no rule fields.
    const { subscription: _s, readOnly: _r, matches: _m, lastMatch: _l, ...fields } = raw;
    const wanted = validateRule({ ...fields, name: 'x' });
    const { name: _a, enabled: _b, ...restWanted } = ruleToPlain(wanted);
    const { name: _c, enabled: _d, ...restNow } = ruleToPlain(current);
    if (raw.name !== undefined && raw.name !== name) refuseIncluded(name, 'renamed');
    if (!isDeepStrictEqual(restWanted, restNow)) refuseIncluded(name, 'changed (only enabled may be)');
    const disabled = (policy.disabled ?? []).filter((n) => n !== name);
    if (!wanted.enabled) disabled.push(name);
    const { disabled: _e, ...rest } = policy;
    const version = await savePolicy(
      { ...rest, ...(disabled.length > 0 ? { disabled } : {}) },
      caller,
      confirm,
    );
    audit(caller, `included rule "${name}" ${wanted.enabled ? 'enabled' : 'disabled'}`);
    return {
      rule: {
        ...ruleToPlain({ ...current, enabled: wanted.enabled }),
        subscription: subscriptionOf(policy, name),
      },
      position: inForce().rules.findIndex((r) => r.name === name),
      ...(await probation(version, caller, confirm)),
    };
  };
  /** How rules.list and rules.get mark an included rule: its subscription, read-only. */
  const mark = (name: string): { subscription?: string; readOnly?: true } => {
    const sub = subscriptionOf(cfg.policy(), name);
    return sub === undefined ? {} : { subscription: sub, readOnly: true };
  };
  /** rules.get over the rules in force: the policy's own and the included ones. */
  const get = (name: string) => {
    const all = inForce().rules;
    const i = all.findIndex((r) => r.name === name);
    if (i < 0) throw notFound(name);
    return { rule: { ...ruleToPlain(all[i]!), ...mark(name) }, position: i };
  };
  return { refuse: refuseIncluded, toggle: toggleIncluded, mark, get };
}
