/**
 * Shared by the exporters: what a target could not take (located by rule),
 * remote address lists expanded to plain addresses and CIDR blocks, and port
 * lists counted. Pure.
 */
import type { Problem } from '../../errors.js';
import { formatIp, type IpRange } from '../../ip/index.js';
import type { AddressSpec, Policy, PortRange, Rule } from '../rule.js';

/** A rule (or part of one) a target cannot express; `rule` names it. */
export function notExported(rule: Rule, index: number, reason: string): Problem {
  return { path: ['rules', index], rule: rule.name, message: `not exported: ${reason}` };
}

/** One concrete remote entry: a CIDR block of one family, or a host name (`*.x` for names below x). */
export type RemoteItem = { kind: 'cidr'; version: 4 | 6; text: string } | { kind: 'host'; name: string };

/** Splits an address range into the fewest CIDR blocks that cover exactly it. */
export function rangeToCidrs(range: IpRange): { version: 4 | 6; text: string }[] {
  const bits = range.version === 4 ? 32 : 128;
  let first = BigInt(range.first);
  const last = BigInt(range.last);
  const out: { version: 4 | 6; text: string }[] = [];
  while (first <= last) {
    let size = 0;
    while (size < bits) {
      const block = 1n << BigInt(size + 1);
      if (first % block !== 0n || first + block - 1n > last) break;
      size++;
    }
    const addr =
      range.version === 4
        ? formatIp({ version: 4, value: Number(first) })
        : formatIp({ version: 6, value: first });
    out.push({ version: range.version, text: size === 0 ? addr : `${addr}/${bits - size}` });
    first += 1n << BigInt(size);
  }
  return out;
}

/** The remote list of a rule as concrete items (groups and localhost expanded); undefined means any. */
export function remoteItems(rule: Rule, policy: Policy): RemoteItem[] | undefined {
  if (rule.remote === undefined) return undefined;
  const out: RemoteItem[] = [];
  const add = (spec: AddressSpec) => {
    if (spec.kind === 'localhost') {
      out.push({ kind: 'cidr', version: 4, text: '127.0.0.0/8' }, { kind: 'cidr', version: 6, text: '::1' });
    } else if (spec.kind === 'ip') for (const c of rangeToCidrs(spec.range)) out.push({ kind: 'cidr', ...c });
    else if (spec.kind === 'host') out.push({ kind: 'host', name: spec.name });
    else if (spec.kind === 'group') for (const s of policy.addressGroups[spec.name] ?? []) add(s);
    // A list is never flattened into nothing: exporters refuse rules with lists or export them apart (listsOf).
  };
  for (const spec of rule.remote) add(spec);
  return out;
}

/** The lists a rule's remote names, directly or through its groups, in order, each once. */
export function listsOf(rule: Rule, policy: Policy): string[] {
  const names = new Set<string>();
  for (const spec of rule.remote ?? []) {
    if (spec.kind === 'list') names.add(spec.name);
    if (spec.kind === 'group')
      for (const m of policy.addressGroups[spec.name] ?? []) if (m.kind === 'list') names.add(m.name);
  }
  return [...names];
}

/**
 * Why a rule that uses lists (directly or through a group) is not exported, or undefined. Its
 * content lives outside the policy and changes on every refresh; without it the rule would match
 * every remote address (a deny list exported as "deny everything").
 */
export function listsRefusal(rule: Rule, policy: Policy, tool: string): string | undefined {
  const names = listsOf(rule, policy);
  if (names.length === 0) return undefined;
  return `it uses ${[...names].map((n) => `list:${n}`).join(', ')}: ${tool} rules cannot refer to Warden's lists (their content is loaded by the engine, not part of the policy)`;
}

/** Number of single ports in a list. */
export function portCount(ports: readonly PortRange[]): number {
  return ports.reduce((n, r) => n + r.to - r.from + 1, 0);
}

/** A file an exporter writes: its name and text. */
export interface ExportedFile {
  readonly name: string;
  readonly text: string;
}

/** What an exporter returns: files to write and what could not be exported. */
export interface ExportResult {
  readonly files: ExportedFile[];
  readonly skipped: Problem[];
}
