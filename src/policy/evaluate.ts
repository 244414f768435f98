/**
 * decide(policy, connection): the first matching rule decides, the default
 * of the direction decides the rest, and the mode has the last word. Two
 * searches give the same answer: a linear reference, and the indexed one the
 * engine uses. Pure: no I/O, no clock (the connection carries `now`).
 */
import { formatIp } from '../ip/index.js';
import type { CompiledPolicy } from './compile.js';
import { matches } from './match.js';
import type { Action, ConnectionFacts, Decision, Rule } from './rule.js';
import { findFirstMatchIndexed } from './rule-index.js';

/** Which search decide() uses: `indexed` (default, fast) or `linear` (the reference). */
export type Evaluator = 'indexed' | 'linear';

/** Position of the first active rule matching the connection, or -1: a plain scan in order. */
export function findFirstMatchLinear(policy: CompiledPolicy, f: ConnectionFacts): number {
  const rules = policy.rules;
  for (let i = 0; i < rules.length; i++) if (matches(rules[i]!, f)) return i;
  return -1;
}

/** Position of the first active rule matching the connection, or -1, through the index. */
export function findFirstMatch(
  policy: CompiledPolicy,
  f: ConnectionFacts,
  evaluator: Evaluator = 'indexed',
): number {
  return evaluator === 'indexed' ? findFirstMatchIndexed(policy.index, f) : findFirstMatchLinear(policy, f);
}

/** Decides one connection. */
export function decide(
  policy: CompiledPolicy,
  f: ConnectionFacts,
  evaluator: Evaluator = 'indexed',
): Decision {
  return decisionFor(policy, f, findFirstMatch(policy, f, evaluator));
}

/** Builds the decision for a search result (rule position or -1), applying the mode. */
export function decisionFor(policy: CompiledPolicy, f: ConnectionFacts, index: number): Decision {
  const mode = policy.mode;
  if (index >= 0) {
    const cr = policy.rules[index]!;
    const action = cr.rule.action;
    const undecided = cr.source === 'user' && action === 'ask';
    return finish(policy, f, action, {
      source: cr.source,
      ruleName: cr.rule.name,
      ruleIndex: index,
      log: cr.rule.log,
      undecided: mode === 'learning' && undecided,
    });
  }
  const def = f.direction === 'incoming' ? policy.defaults.incoming : policy.defaults.outgoing;
  return finish(policy, f, def.action, {
    source: 'default',
    ruleName: `default ${f.direction}`,
    ruleIndex: -1,
    log: def.log,
    undecided: mode === 'learning' && def.action !== 'allow',
  });
}

function finish(
  policy: CompiledPolicy,
  f: ConnectionFacts,
  action: Action,
  d: { source: Decision['source']; ruleName: string; ruleIndex: number; log: boolean; undecided: boolean },
): Decision {
  const mode = policy.mode;
  // Every block and every question is a log item, whatever the rule's log flag says.
  const log = d.log || action !== 'allow';
  let verdict: Action = action;
  if (mode === 'monitor') verdict = 'allow';
  else if (d.undecided) verdict = 'allow';
  const base = { verdict, action, source: d.source, ruleName: d.ruleName, ruleIndex: d.ruleIndex, log, mode };
  return d.undecided ? { ...base, proposal: proposeRule(f) } : base;
}

/** The rule learning mode proposes for a connection: this application, this protocol, this port, this remote. */
export function proposeRule(f: ConnectionFacts): Rule {
  const protocol = f.protocol === 'other' ? 'any' : f.protocol;
  const remoteName = f.remoteHosts[0];
  const remoteText = remoteName ?? (f.remoteAddress === null ? 'any' : formatIp(f.remoteAddress));
  const servicePort = f.direction === 'incoming' ? f.localPort : f.remotePort;
  const app = f.application ?? 'any';
  const rule: Rule = {
    name: `learned: ${app === 'any' ? 'any application' : app} ${f.direction} ${protocol}${servicePort === null ? '' : `/${servicePort}`} ${f.direction === 'incoming' ? 'from' : 'to'} ${remoteText}`,
    enabled: true,
    direction: f.direction,
    protocol,
    application: app,
    action: 'allow',
    log: false,
  };
  const withPort =
    servicePort !== null && (protocol === 'tcp' || protocol === 'udp')
      ? {
          ...rule,
          [f.direction === 'incoming' ? 'localPorts' : 'remotePorts']: [
            { from: servicePort, to: servicePort },
          ],
        }
      : rule;
  if (remoteName !== undefined) return { ...withPort, remote: [{ kind: 'host', name: remoteName }] };
  if (f.remoteAddress !== null) {
    const a = f.remoteAddress;
    const range =
      a.version === 4
        ? { version: 4 as const, first: a.value, last: a.value }
        : { version: 6 as const, first: a.value, last: a.value };
    return { ...withPort, remote: [{ kind: 'ip', range }] };
  }
  return withPort;
}
