/**
 * Deciding before attribution. Most queued connections are decided by rules that do not name a
 * program, a uid or a user (the default, a rule by address or port): their verdict is the same
 * whatever process opened the socket, so it need not wait for attribution, which reads /proc and is
 * most of a decision's cost. This finds those cases, soundly: the decision is taken early only
 * when no rule that depends on the process could match before the rule (or default) that decides.
 */
import {
  type CompiledPolicy,
  type CompiledRule,
  type ConnectionFacts,
  findFirstMatch,
} from '../policy/index.js';
import { matches, portIn } from '../policy/match.js';
import { protocolBit } from '../policy/protocol-bits.js';

/** Beyond this many process rules ahead of the deciding one, the connection simply waits for attribution. */
export const MAX_PROCESS_RULES_CHECKED = 64;

/** Per compiled policy: its active rules that name an application, uid, user or program context, in order. */
const processRules = new WeakMap<CompiledPolicy, readonly CompiledRule[]>();

function processRulesOf(policy: CompiledPolicy): readonly CompiledRule[] {
  let rules = processRules.get(policy);
  if (rules === undefined) {
    rules = policy.rules
      .filter(
        (r) =>
          r.active &&
          (r.application !== null || r.uid !== null || r.userName !== null || hasProgramContext(r)),
      )
      // A rule on the program context (parent, ancestor, arguments) is probed as if the process had
      // the context it wants: the same rule without those fields.
      .map((r) => (hasProgramContext(r) ? { ...r, parent: null, ancestor: null, argumentsGlob: null } : r));
    processRules.set(policy, rules);
  }
  return rules;
}

function hasProgramContext(r: CompiledRule): boolean {
  return r.parent !== null || r.ancestor !== null || r.argumentsGlob !== null;
}

/**
 * Per compiled policy and direction, what can decide a connection without logging it: the default
 * (an allow without `log`), or one of `rules`, the active allow rules without `log` that name no
 * process (a rule naming one never decides before attribution).
 */
interface QuietSide {
  readonly byDefault: boolean;
  readonly rules: readonly CompiledRule[];
}
const quietPolicies = new WeakMap<CompiledPolicy, { incoming: QuietSide; outgoing: QuietSide }>();

function quietSide(policy: CompiledPolicy, d: 'incoming' | 'outgoing'): QuietSide {
  return {
    byDefault: policy.defaults[d].action === 'allow' && !policy.defaults[d].log,
    rules: policy.rules.filter(
      (r) =>
        r.active &&
        r[d] &&
        r.rule.action === 'allow' &&
        !r.rule.log &&
        r.application === null &&
        r.uid === null &&
        r.userName === null &&
        !hasProgramContext(r),
    ),
  };
}

/**
 * False when every decision of this connection is logged, so it needs the process anyway (the
 * check for the rest is then skipped): blocks and asks are always logged, whatever `log` says, and
 * an unlogged allow rule decides it only when its protocol and ports take it in.
 */
export function mayDecideUnlogged(
  policy: CompiledPolicy,
  direction: 'incoming' | 'outgoing',
  protocol: 'tcp' | 'udp' | 'icmp' | 'other',
  localPort: number | null,
  remotePort: number | null,
): boolean {
  let quiet = quietPolicies.get(policy);
  if (quiet === undefined) {
    quiet = { incoming: quietSide(policy, 'incoming'), outgoing: quietSide(policy, 'outgoing') };
    quietPolicies.set(policy, quiet);
  }
  const side = quiet[direction];
  if (side.byDefault) return true;
  // A loop, not some() with a closure: this runs for every queued packet.
  const bit = protocolBit(protocol);
  for (const r of side.rules)
    if (
      (r.protocols & bit) !== 0 &&
      (r.remotePortSpans === null || portIn(r.remotePortSpans, remotePort)) &&
      (r.localPortSpans === null || portIn(r.localPortSpans, localPort))
    )
      return true;
  return false;
}

/**
 * The position of the rule that decides `facts` whatever process it comes from (-1: the default),
 * or undefined when the decision may depend on the process. `facts` must carry no process:
 * application, uid and user null.
 */
export function decidingRuleWithoutProcess(
  policy: CompiledPolicy,
  facts: ConnectionFacts,
): number | undefined {
  if (facts.application !== null || facts.uid !== null || facts.user !== null)
    throw new Error('decidingRuleWithoutProcess: facts must carry no process');
  // With no process, a rule that names one cannot match: this is the first rule without such a
  // condition that matches (or -1).
  const first = findFirstMatch(policy, facts);
  const before = first < 0 ? Number.POSITIVE_INFINITY : first;
  // Each process rule ahead of it, given the process it wants: could it match? Then it depends.
  const probe: { -readonly [K in keyof ConnectionFacts]: ConnectionFacts[K] } = { ...facts };
  let checked = 0;
  for (const r of processRulesOf(policy)) {
    if (r.index >= before) break;
    if (++checked > MAX_PROCESS_RULES_CHECKED) return undefined;
    probe.application = r.application;
    probe.applicationSha256 = r.sha256; // a pinned rule could match the file it pins
    probe.uid = r.uid;
    probe.user = r.userName;
    if (matches(r, probe)) return undefined;
  }
  return first;
}
