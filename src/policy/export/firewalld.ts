/**
 * Warden policy to firewalld: `firewall-cmd --permanent` commands with rich
 * rules, and the same zone as a zone XML file. Zones filter incoming traffic,
 * so only incoming rules (and the incoming half of `both`) are exported. Each
 * rich rule gets its own priority, increasing with the Warden order, so
 * firewalld evaluates them first to last like Warden; the incoming default
 * becomes the zone target.
 */
import type { Action, Policy, PortRange, Rule } from '../rule.js';
import { type ExportResult, listsRefusal, notExported, remoteItems } from './common.js';

interface RichRule {
  readonly priority: number;
  readonly family?: 'ipv4' | 'ipv6';
  readonly source?: string;
  /** One element: a destination port, a source port or a protocol. */
  readonly element?:
    | { tag: 'port' | 'source-port'; port: string; protocol: string }
    | { tag: 'protocol'; value: string };
  readonly log?: string;
  readonly action: 'accept' | 'drop' | 'reject';
}

const RICH_ACTIONS: Record<Action, RichRule['action'] | undefined> = {
  allow: 'accept',
  deny: 'drop',
  reject: 'reject',
  ask: undefined,
};
const TARGETS: Record<Action, string | undefined> = {
  allow: 'ACCEPT',
  deny: 'DROP',
  reject: '%%REJECT%%',
  ask: undefined,
};
const FIRST_PRIORITY = -32000;

function whyNot(rule: Rule): string | undefined {
  if (!rule.enabled) return 'it is disabled (firewalld has no disabled rules)';
  if (rule.action === 'ask') return 'firewalld cannot ask';
  if (rule.application !== 'any') return 'firewalld rules do not match applications';
  if (rule.parent !== undefined || rule.ancestor !== undefined || rule.arguments !== undefined)
    return 'firewalld rules do not match the program context (parent, ancestor, arguments)';
  if (rule.user !== undefined) return 'firewalld zone rules do not match users';
  if (rule.expires !== undefined) return 'permanent firewalld rules do not expire';
  if (rule.condition !== undefined) return 'firewalld has no settings conditions';
  if (rule.interface !== undefined) return 'firewalld binds interfaces to zones, not to rules';
  if (rule.localPorts !== undefined && rule.remotePorts !== undefined)
    return 'a rich rule holds either a port or a source port, not both';
  return undefined;
}

function portText(r: PortRange): string {
  return r.from === r.to ? String(r.from) : `${r.from}-${r.to}`;
}

function toRich(rule: Rule, policy: Policy): Omit<RichRule, 'priority'>[] | string {
  const why = whyNot(rule);
  if (why !== undefined) return why;
  const listed = listsRefusal(rule, policy, 'firewalld');
  if (listed !== undefined) return listed;
  const remotes = remoteItems(rule, policy);
  if (remotes?.some((r) => r.kind === 'host'))
    return 'firewalld rich rules cannot name hosts, only addresses';
  if (remotes !== undefined && remotes.length === 0) return 'its remote list is empty (it never matches)';
  const action = RICH_ACTIONS[rule.action]!;
  const log = rule.log ? `warden ${rule.name}`.slice(0, 127) : undefined;
  const protos =
    rule.protocol === 'tcp+udp' ? ['tcp', 'udp'] : rule.protocol === 'any' ? [] : [rule.protocol];
  type Element = RichRule['element'];
  const elements: Element[] = [];
  const ports = rule.localPorts ?? rule.remotePorts;
  const tag = rule.localPorts !== undefined ? 'port' : 'source-port';
  if (ports !== undefined) {
    for (const p of protos) for (const r of ports) elements.push({ tag, port: portText(r), protocol: p });
  } else if (rule.protocol === 'icmp')
    elements.push({ tag: 'protocol', value: 'icmp' }, { tag: 'protocol', value: 'ipv6-icmp' });
  else if (protos.length === 0) elements.push(undefined);
  else for (const p of protos) elements.push({ tag: 'protocol', value: p });
  const out: Omit<RichRule, 'priority'>[] = [];
  for (const remote of remotes ?? [undefined]) {
    for (const element of elements) {
      let family: RichRule['family'];
      if (remote !== undefined && remote.kind === 'cidr') family = remote.version === 4 ? 'ipv4' : 'ipv6';
      if (element?.tag === 'protocol' && element.value === 'icmp') {
        if (family === 'ipv6') continue;
        family = 'ipv4';
      }
      if (element?.tag === 'protocol' && element.value === 'ipv6-icmp') {
        if (family === 'ipv4') continue;
        family = 'ipv6';
      }
      out.push({
        ...(family === undefined ? {} : { family }),
        ...(remote === undefined || remote.kind !== 'cidr' ? {} : { source: remote.text }),
        ...(element === undefined ? {} : { element }),
        ...(log === undefined ? {} : { log }),
        action,
      });
    }
  }
  return out;
}

function attr(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/"/g, '&quot;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

function richText(r: RichRule): string {
  const parts = [`rule priority="${r.priority}"`];
  if (r.family) parts.push(`family="${r.family}"`);
  if (r.source) parts.push(`source address="${r.source}"`);
  const e = r.element;
  if (e?.tag === 'protocol') parts.push(`protocol value="${e.value}"`);
  else if (e) parts.push(`${e.tag} port="${e.port}" protocol="${e.protocol}"`);
  if (r.log) parts.push(`log prefix="${r.log.replace(/["\\]/g, '')}" level="info"`);
  parts.push(r.action);
  return parts.join(' ');
}

function richXml(r: RichRule): string {
  const lines = [`  <rule priority="${r.priority}"${r.family ? ` family="${r.family}"` : ''}>`];
  if (r.source) lines.push(`    <source address="${r.source}"/>`);
  const e = r.element;
  if (e?.tag === 'protocol') lines.push(`    <protocol value="${e.value}"/>`);
  else if (e) lines.push(`    <${e.tag} port="${e.port}" protocol="${e.protocol}"/>`);
  if (r.log) lines.push(`    <log prefix="${attr(r.log)}" level="info"/>`);
  lines.push(`    <${r.action}/>`, '  </rule>');
  return lines.join('\n');
}

function shellQuote(s: string): string {
  return `'${s.replace(/'/g, `'\\''`)}'`;
}

/** What exportFirewalld makes: the command script and the zone file. */
export interface FirewalldExport extends ExportResult {
  readonly script: string;
  readonly zoneXml: string;
}

/** Exports the incoming rules to zone `zone` (default `public`). */
export function exportFirewalld(policy: Policy, zone = 'public'): FirewalldExport {
  const skipped: ExportResult['skipped'] = [];
  const rich: RichRule[] = [];
  let priority = FIRST_PRIORITY;
  const next = () => priority++;
  policy.rules.forEach((rule, i) => {
    if (rule.direction === 'outgoing') {
      skipped.push(notExported(rule, i, 'firewalld zones filter incoming traffic only'));
      return;
    }
    if (rule.direction === 'both')
      skipped.push(notExported(rule, i, 'its outgoing half: firewalld zones filter incoming traffic only'));
    const r = toRich(rule, policy);
    if (typeof r === 'string') skipped.push(notExported(rule, i, r));
    else for (const x of r) rich.push({ ...x, priority: next() });
  });
  const target = TARGETS[policy.defaults.incoming.action];
  if (target === undefined)
    skipped.push({
      path: ['defaults', 'incoming'],
      message: 'not exported: default incoming ask (firewalld cannot ask); the zone keeps its target',
    });
  if (policy.defaults.outgoing.action !== 'allow')
    skipped.push({
      path: ['defaults', 'outgoing'],
      message: `not exported: default outgoing ${policy.defaults.outgoing.action} (firewalld zones do not filter outgoing traffic)`,
    });
  const z = `--zone=${shellQuote(zone)}`;
  const script = [
    '#!/bin/sh',
    '# firewall-cmd commands exported from a Warden policy (warden policy export --to firewalld).',
    `# Apply to a zone without other services or ports, or they are accepted too (firewalld accepts them after these rules).`,
    'set -e',
    ...(target === undefined
      ? []
      : [`firewall-cmd --permanent ${z} --set-target=${target === '%%REJECT%%' ? 'REJECT' : target}`]),
    ...rich.map((r) => `firewall-cmd --permanent ${z} --add-rich-rule=${shellQuote(richText(r))}`),
    'firewall-cmd --reload',
    '',
  ].join('\n');
  const zoneXml = [
    '<?xml version="1.0" encoding="utf-8"?>',
    `<zone${target === undefined ? '' : ` target="${target}"`}>`,
    `  <short>${attr(zone)}</short>`,
    '  <description>Exported from a Warden policy.</description>',
    ...rich.map(richXml),
    '</zone>',
    '',
  ].join('\n');
  return {
    script,
    zoneXml,
    files: [
      { name: 'firewalld-commands.sh', text: script },
      { name: `${zone}.xml`, text: zoneXml },
    ],
    skipped,
  };
}
