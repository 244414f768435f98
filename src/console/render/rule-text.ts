/** Short human descriptions of rules and connections for console output. */
import { formatIp } from '../../ip/index.js';
import { type ConnectionFacts, formatAddressSpec, portListText, type Rule } from '../../policy/index.js';

/** The remote addresses of a rule as one cell: "any" or a comma-separated list. */
export function remoteText(rule: Rule): string {
  return rule.remote === undefined ? 'any' : rule.remote.map(formatAddressSpec).join(', ');
}

/** A port list as one cell: "any" or "80,443,8000-8100". */
export function portsText(ports: Rule['localPorts']): string {
  return ports === undefined ? 'any' : portListText(ports);
}

/** One line that says what a rule matches and does. */
export function ruleSummary(rule: Rule): string {
  const parts: string[] = [rule.action, rule.direction, rule.protocol];
  if (rule.application !== 'any') parts.push(rule.application);
  if (rule.sha256 !== undefined) parts.push(`pinned sha256 ${rule.sha256.slice(0, 12)}…`);
  if (rule.user !== undefined) parts.push(`user ${rule.user}`);
  if (rule.localPorts !== undefined) parts.push(`local port ${portsText(rule.localPorts)}`);
  if (rule.remotePorts !== undefined) parts.push(`remote port ${portsText(rule.remotePorts)}`);
  if (rule.remote !== undefined) parts.push(`remote ${remoteText(rule)}`);
  if (rule.parent !== undefined) parts.push(`parent ${rule.parent}`);
  if (rule.ancestor !== undefined) parts.push(`ancestor ${rule.ancestor}`);
  if (rule.arguments !== undefined) parts.push(`arguments ${JSON.stringify(rule.arguments)}`);
  if (rule.interface !== undefined) parts.push(`interface ${rule.interface.join(', ')}`);
  if (!rule.enabled) parts.push('(disabled)');
  return parts.join(' ');
}

/** One line that describes a connection. */
export function connectionSummary(f: ConnectionFacts): string {
  const addr = (a: ConnectionFacts['remoteAddress'], port: number | null) => {
    const text = a === null ? '?' : a.version === 6 ? `[${formatIp(a)}]` : formatIp(a);
    return port === null ? text : `${text}:${port}`;
  };
  const names = f.remoteHosts.length > 0 ? ` (${f.remoteHosts.join(', ')})` : '';
  const arrow = f.direction === 'outgoing' ? '->' : '<-';
  const local = f.localPort === null ? 'local' : `local:${f.localPort}`;
  const who = `${f.application ?? 'unknown application'}${f.uid === null ? '' : ` uid ${f.uid}`}${f.user === null ? '' : ` (${f.user})`}`;
  const context = [
    f.parent == null ? '' : `, parent ${f.parent}`,
    f.arguments == null ? '' : `, command line ${JSON.stringify(f.arguments)}`,
  ].join('');
  const via = f.interface == null ? '' : ` via ${f.interface}`;
  return `${f.direction} ${f.protocol} ${who}${context}: ${local} ${arrow} ${addr(f.remoteAddress, f.remotePort)}${names}${via}`;
}
