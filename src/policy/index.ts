/** The policy core: pure rule model, parsing, compiling, deciding, explaining and linting. */
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
export { ACTIONS, DIRECTIONS, MODES, PROTOCOLS } from './rule.js';
export { parsePolicyText, validatePolicy, validateRule } from './parse.js';
export { policyToPlain, ruleToPlain, serializePolicy } from './serialize.js';
export { type CompiledPolicy, type CompiledRule, type CompileOptions, compilePolicy } from './compile.js';
export { decide, decisionFor, type Evaluator, findFirstMatch, findFirstMatchLinear, proposeRule } from './evaluate.js';
export { type Explanation, explain, type SkippedRule } from './explain.js';
export { type Finding, type FindingKind, lint } from './lint.js';
export { type HostEnvironment, internalRules } from './internal-rules.js';
export { formatAddressSpec, parseAddressSpec } from './address-spec.js';
export { formatPortList, parsePortList, portListText } from './ports.js';
