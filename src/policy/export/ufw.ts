/**
 * Warden policy to ufw: a shell script of `ufw` commands (what a person runs)
 * and the same rules as user.rules / user6.rules tuple lines (what ufw stores;
 * the importer reads them back, which is how the round trip is tested). ufw
 * rules match ports, protocol and addresses, so application, user and host-name
 * rules are not exported; the order is kept (ufw's first match).
 */
import type { Action, Policy, PortRange, Rule } from '../rule.js';
import { type ExportResult, listsRefusal, notExported, remoteItems } from './common.js';

/** One ufw rule in ufw's own terms. */
interface UfwRule {
  readonly action: 'allow' | 'deny' | 'reject';
  readonly log: boolean;
  readonly direction: 'in' | 'out';
  readonly proto: 'tcp' | 'udp' | 'any';
  /** CIDR or address; undefined means any. */
  readonly remote?: { version: 4 | 6; text: string };
  readonly localPorts?: string;
  readonly remotePorts?: string;
  readonly comment: string;
}

const UFW_ACTIONS: Record<Action, UfwRule['action'] | undefined> = {
  allow: 'allow',
  deny: 'deny',
  reject: 'reject',
  ask: undefined,
};
/** ufw's multiport limit: 15 ports, a range counting as two. */
const MAX_MULTIPORT = 15;

function portChunks(ports: readonly PortRange[] | undefined): (string | undefined)[] {
  if (ports === undefined) return [undefined];
  const chunks: string[] = [];
  let cur: string[] = [];
  let weight = 0;
  for (const r of ports) {
    const w = r.from === r.to ? 1 : 2;
    if (weight + w > MAX_MULTIPORT) {
      chunks.push(cur.join(','));
      cur = [];
      weight = 0;
    }
    cur.push(r.from === r.to ? String(r.from) : `${r.from}:${r.to}`);
    weight += w;
  }
  chunks.push(cur.join(','));
  return chunks;
}

function whyNot(rule: Rule): string | undefined {
  if (!rule.enabled) return 'it is disabled (ufw has no disabled rules)';
  if (rule.action === 'ask') return 'ufw cannot ask';
  if (rule.application !== 'any') return 'ufw rules do not match applications';
  if (rule.parent !== undefined || rule.ancestor !== undefined || rule.arguments !== undefined)
    return 'ufw rules do not match the program context (parent, ancestor, arguments)';
  if (rule.user !== undefined) return 'ufw rules do not match users';
  if (rule.expires !== undefined) return 'ufw rules do not expire';
  if (rule.condition !== undefined) return 'ufw has no settings conditions';
  if (rule.interface !== undefined)
    return 'interfaces are not exported to ufw (yet: `on IFACE` takes one name, no prefix)';
  if (rule.protocol === 'icmp') return 'ufw rules cannot name ICMP (its before.rules handle ICMP)';
  return undefined;
}

/** The rule as ufw rules, or why it cannot be. */
function toUfw(rule: Rule, policy: Policy): UfwRule[] | string {
  const why = whyNot(rule);
  if (why !== undefined) return why;
  const listed = listsRefusal(rule, policy, 'ufw');
  if (listed !== undefined) return listed;
  const remotes = remoteItems(rule, policy);
  if (remotes?.some((r) => r.kind === 'host')) return 'ufw rules cannot name hosts, only addresses';
  if (remotes !== undefined && remotes.length === 0) return 'its remote list is empty (it never matches)';
  const protos: UfwRule['proto'][] =
    rule.protocol === 'tcp+udp'
      ? ['tcp', 'udp']
      : rule.protocol === 'any'
        ? ['any']
        : [rule.protocol as 'tcp' | 'udp'];
  const directions: UfwRule['direction'][] =
    rule.direction === 'both' ? ['in', 'out'] : [rule.direction === 'incoming' ? 'in' : 'out'];
  const out: UfwRule[] = [];
  for (const direction of directions)
    for (const proto of protos)
      for (const remote of remotes ?? [undefined])
        for (const localPorts of portChunks(rule.localPorts))
          for (const remotePorts of portChunks(rule.remotePorts))
            out.push({
              action: UFW_ACTIONS[rule.action]!,
              log: rule.log,
              direction,
              proto,
              ...(remote === undefined || remote.kind !== 'cidr'
                ? {}
                : { remote: { version: remote.version, text: remote.text } }),
              ...(localPorts === undefined ? {} : { localPorts }),
              ...(remotePorts === undefined ? {} : { remotePorts }),
              comment: rule.name,
            });
  return out;
}

function shellQuote(s: string): string {
  return `'${s.replace(/'/g, `'\\''`)}'`;
}

function command(r: UfwRule): string {
  const remote = r.remote?.text ?? 'any';
  const [src, sport, dst, dport] =
    r.direction === 'in'
      ? [remote, r.remotePorts, 'any', r.localPorts]
      : ['any', r.localPorts, remote, r.remotePorts];
  const parts = ['ufw', r.action, r.direction];
  if (r.log) parts.push('log');
  if (r.proto !== 'any') parts.push('proto', r.proto);
  parts.push('from', src);
  if (sport !== undefined) parts.push('port', sport);
  parts.push('to', dst);
  if (dport !== undefined) parts.push('port', dport);
  parts.push('comment', shellQuote(r.comment));
  return parts.join(' ');
}

function hex(s: string): string {
  return [...new TextEncoder().encode(s)].map((b) => b.toString(16).padStart(2, '0')).join('');
}

function tuple(r: UfwRule, version: 4 | 6): string {
  const any = version === 4 ? '0.0.0.0/0' : '::/0';
  const remote = r.remote?.text ?? any;
  const [src, sport, dst, dport] =
    r.direction === 'in'
      ? [remote, r.remotePorts, any, r.localPorts]
      : [any, r.localPorts, remote, r.remotePorts];
  const action = `${r.action}${r.log ? '_log' : ''}`;
  return `### tuple ### ${action} ${r.proto} ${dport ?? 'any'} ${dst} ${sport ?? 'any'} ${src} ${r.direction} comment=${hex(r.comment)}`;
}

/** What exportUfw makes: the command script and the two rule files. */
export interface UfwExport extends ExportResult {
  readonly script: string;
  readonly userRules: string;
  readonly user6Rules: string;
}

/** Exports a policy to ufw commands (and tuple files). */
export function exportUfw(policy: Policy): UfwExport {
  const skipped: ExportResult['skipped'] = [];
  const rules: UfwRule[] = [];
  policy.rules.forEach((rule, i) => {
    const r = toUfw(rule, policy);
    if (typeof r === 'string') skipped.push(notExported(rule, i, r));
    else rules.push(...r);
  });
  const lines = [
    '#!/bin/sh',
    '# ufw commands exported from a Warden policy (warden policy export --to ufw).',
    "# ufw's own before.rules (loopback, some ICMP, DHCP) still apply before these rules.",
    '# Run on a reset ufw (ufw --force reset) so no older rule comes first.',
    'set -e',
  ];
  const defaults: [string, Action][] = [
    ['incoming', policy.defaults.incoming.action],
    ['outgoing', policy.defaults.outgoing.action],
  ];
  for (const [dir, action] of defaults) {
    const a = UFW_ACTIONS[action];
    if (a === undefined)
      skipped.push({ path: ['defaults', dir], message: `not exported: default ${dir} ask (ufw cannot ask)` });
    else lines.push(`ufw default ${a} ${dir}`);
  }
  for (const r of rules) lines.push(command(r));
  const file = (version: 4 | 6) =>
    [
      '### RULES ###',
      '',
      ...rules
        .filter((r) => r.remote === undefined || r.remote.version === version)
        .map((r) => `${tuple(r, version)}\n`),
      '### END RULES ###',
      '',
    ].join('\n');
  const defaultsFile = defaults
    .filter(([, action]) => action !== 'ask')
    .map(
      ([dir, action]) =>
        `DEFAULT_${dir === 'incoming' ? 'INPUT' : 'OUTPUT'}_POLICY="${policyWord(action)}"\n`,
    )
    .join('');
  return {
    script: `${lines.join('\n')}\n`,
    userRules: file(4),
    user6Rules: file(6),
    files: [
      { name: 'ufw-commands.sh', text: `${lines.join('\n')}\n` },
      { name: 'user.rules', text: file(4) },
      { name: 'user6.rules', text: file(6) },
      { name: 'default-ufw', text: defaultsFile },
    ],
    skipped,
  };
}

function policyWord(a: Action): string {
  return a === 'allow' ? 'ACCEPT' : a === 'reject' ? 'REJECT' : 'DROP';
}
