/** explain(policy, connection): the deciding rule and, for every earlier rule, the first condition it failed. */
import type { CompiledPolicy } from './compile.js';
import { decisionFor } from './evaluate.js';
import { findMismatch } from './match.js';
import type { ConnectionFacts, Decision, InternalRule } from './rule.js';

/** One rule passed over on the way to the decision. */
export interface SkippedRule {
  readonly ruleIndex: number;
  readonly name: string;
  readonly source: 'internal' | 'user';
  /** The internal rule's id, for internal rules. */
  readonly id?: string;
  readonly field: string;
  readonly reason: string;
}

/** The full story of one decision. */
export interface Explanation {
  readonly decision: Decision;
  /** For an internal deciding rule: its id, purpose and why it has its shape. */
  readonly internal?: { readonly id: string; readonly purpose: string; readonly because: string };
  readonly skipped: readonly SkippedRule[];
}

/** Explains how the policy decides the connection (the same decision as decide()). */
export function explain(policy: CompiledPolicy, f: ConnectionFacts): Explanation {
  const skipped: SkippedRule[] = [];
  let found = -1;
  for (const cr of policy.rules) {
    const miss = findMismatch(cr, f);
    if (miss === null) {
      found = cr.index;
      break;
    }
    const id = cr.source === 'internal' ? (cr.rule as InternalRule).id : undefined;
    skipped.push({
      ruleIndex: cr.index,
      name: cr.rule.name,
      source: cr.source,
      ...(id === undefined ? {} : { id }),
      field: miss.field,
      reason: miss.reason,
    });
  }
  const decision = decisionFor(policy, f, found);
  if (found >= 0 && policy.rules[found]!.source === 'internal') {
    const r = policy.rules[found]!.rule as InternalRule;
    return { decision, internal: { id: r.id, purpose: r.purpose, because: r.because }, skipped };
  }
  return { decision, skipped };
}
