/** The policy core: pure rule model, parsing, compiling, deciding, explaining and linting. */

export { formatAddressSpec, parseAddressSpec } from './address-spec.js';
export { type CompiledPolicy, type CompiledRule, type CompileOptions, compilePolicy } from './compile.js';
export {
  decide,
  decisionFor,
  type Evaluator,
  findFirstMatch,
  findFirstMatchLinear,
  proposeRule,
} from './evaluate.js';
export { type Explanation, explain, type SkippedRule } from './explain.js';
export { includedRuleName, parseIncludedRules, subscriptionOf, withIncludes } from './include.js';
export { type HostEnvironment, internalRules } from './internal-rules.js';
export { type Finding, type FindingKind, lint } from './lint.js';
export { parsePolicyText, validatePolicy, validateRule } from './parse.js';
export { formatPortList, parsePortList, portListText } from './ports.js';
export type {
  Action,
  AddressSpec,
  ConnectionFacts,
  Decision,
  DecisionSource,
  DefaultAction,
  Direction,
  InternalRule,
  Mode,
  Policy,
  PortRange,
  Protocol,
  Rule,
  RuleCondition,
} from './rule.js';
export { ACTIONS, DIRECTIONS, MODES, PROTOCOLS, ruleIdentity } from './rule.js';
export { interfaceNameProblem } from './schema.js';
export { policyToPlain, ruleToPlain, serializePolicy } from './serialize.js';
