/** Policy values back to YAML a person can read and edit; parse(serialize(p)) equals p. */
import { stringify } from 'yaml';
import { formatAddressSpec } from './address-spec.js';
import { INCLUDE_DEFAULTS } from './include-schema.js';
import { formatDuration, LIST_DEFAULTS } from './list-schema.js';
import { formatPortList } from './ports.js';
import type { IncludeSource, ListSource, Policy, Rule } from './rule.js';

const HEADER = `# Warden network security policy.
# The first matching rule decides; the defaults decide the rest.
# Reference: docs/policy.md. Check this file with: warden policy check FILE
`;

/** The plain, YAML-ready form of one rule, fields in a fixed, readable order. */
export function ruleToPlain(rule: Rule): Record<string, unknown> {
  const out: Record<string, unknown> = {
    name: rule.name,
    enabled: rule.enabled,
    direction: rule.direction,
    protocol: rule.protocol,
    application: rule.application,
  };
  if (rule.sha256 !== undefined) out.sha256 = rule.sha256;
  if (rule.user !== undefined) out.user = rule.user;
  if (rule.localPorts !== undefined) out.localPorts = formatPortList(rule.localPorts);
  if (rule.remotePorts !== undefined) out.remotePorts = formatPortList(rule.remotePorts);
  if (rule.remote !== undefined) {
    const items = rule.remote.map(formatAddressSpec);
    out.remote = items.length === 1 ? items[0] : items;
  }
  if (rule.parent !== undefined) out.parent = rule.parent;
  if (rule.ancestor !== undefined) out.ancestor = rule.ancestor;
  if (rule.arguments !== undefined) out.arguments = rule.arguments;
  if (rule.interface !== undefined)
    out.interface = rule.interface.length === 1 ? rule.interface[0] : [...rule.interface];
  out.action = rule.action;
  out.log = rule.log;
  if (rule.condition !== undefined)
    out.condition = { setting: rule.condition.setting, equals: rule.condition.equals };
  if (rule.expires !== undefined) out.expires = rule.expires;
  if (rule.comment !== undefined) out.comment = rule.comment;
  return out;
}

/** The plain form of a whole policy (also what the JSON output of the CLI shows). */
export function policyToPlain(policy: Policy): Record<string, unknown> {
  const groups: Record<string, string[]> = {};
  for (const [name, specs] of Object.entries(policy.addressGroups))
    groups[name] = specs.map(formatAddressSpec);
  return {
    version: 1,
    mode: policy.mode,
    defaults: {
      incoming: { ...policy.defaults.incoming },
      outgoing: { ...policy.defaults.outgoing },
    },
    addressGroups: groups,
    ...(policy.lists !== undefined ? { lists: listsToPlain(policy.lists) } : {}),
    rules: policy.rules.map(ruleToPlain),
    ...(policy.include !== undefined ? { include: policy.include.map(includeToPlain) } : {}),
    ...(policy.disabled !== undefined ? { disabled: [...policy.disabled] } : {}),
  };
}

/** The plain form of one subscription: defaults are left out, a refresh is written as 6h, 30m. */
export function includeToPlain(i: IncludeSource): Record<string, unknown> {
  return {
    name: i.name,
    ...(i.url !== undefined ? { url: i.url, refresh: formatDuration(i.refreshSeconds) } : { file: i.file }),
    ...(i.maxBytes !== INCLUDE_DEFAULTS.maxBytes ? { maxBytes: i.maxBytes } : {}),
  };
}

/** The plain form of the lists section: defaults are left out, a refresh is written as 6h, 30m. */
export function listsToPlain(lists: Readonly<Record<string, ListSource>>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [name, l] of Object.entries(lists)) {
    out[name] = {
      ...(l.url !== undefined ? { url: l.url } : { file: l.file }),
      format: l.format,
      ...(l.url !== undefined ? { refresh: formatDuration(l.refreshSeconds) } : {}),
      ...(l.maxBytes !== LIST_DEFAULTS.maxBytes ? { maxBytes: l.maxBytes } : {}),
      ...(l.maxEntries !== LIST_DEFAULTS.maxEntries ? { maxEntries: l.maxEntries } : {}),
    };
  }
  return out;
}

/** Writes a policy as YAML with a short header comment. */
export function serializePolicy(policy: Policy): string {
  return HEADER + stringify(policyToPlain(policy), { lineWidth: 0 });
}
