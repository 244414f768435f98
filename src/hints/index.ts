/** Firewall configuration hints for the console and the engine (pure). */
export type {
  AddressFamily,
  FirewallHints,
  FirewallHintsOptions,
  FirewallRules,
  FirewallSituation,
  RuleFormat,
  SituationId,
} from './firewall-hints.js';
export { addressFamily, firewallHints, LOG_CHANNEL_NOTE, RULE_FORMATS } from './firewall-hints.js';
