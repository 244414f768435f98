/**
 * Warden policy to OpenSnitch rule files. OpenSnitch sees outgoing
 * connections only. Every exported rule gets `precedence: true` and a name
 * starting with its zero-padded position, so OpenSnitch (rules checked in name
 * order, a precedence rule decides at once) decides like Warden's first match.
 * A rule with several remote entries becomes one file per entry (OpenSnitch
 * lists are AND, Warden remote lists are OR). The outgoing default becomes a
 * last catch-all rule (operand `true`) unless it is `ask`.
 */
import { compileGlob } from '../glob.js';
import type { Policy, Rule } from '../rule.js';
import { commandOperator } from './command-regex.js';
import {
  type ExportedFile,
  type ExportResult,
  listsOf,
  notExported,
  portCount,
  type RemoteItem,
  remoteItems,
} from './common.js';

interface Operator {
  type: string;
  operand: string;
  sensitive: boolean;
  data: string;
  list: Operator[] | null;
}

const MAX_ENUMERATED_PORTS = 100;

function op(type: string, operand: string, data: string): Operator {
  return { type, operand, sensitive: false, data, list: null };
}

function escapeRegex(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

function slug(name: string): string {
  return (
    name
      .toLowerCase()
      .replace(/[^a-z0-9]+/g, '-')
      .replace(/^-|-$/g, '')
      .slice(0, 60) || 'rule'
  );
}

function remoteOperator(item: RemoteItem): Operator {
  if (item.kind === 'host') {
    return item.name.startsWith('*.')
      ? op('regexp', 'dest.host', `^.*\\.${escapeRegex(item.name.slice(2))}$`)
      : op('simple', 'dest.host', item.name);
  }
  return item.text.includes('/')
    ? op('network', 'dest.network', item.text)
    : op('simple', 'dest.ip', item.text);
}

/** The operators common to every file of the rule, or why the rule cannot be exported. */
function baseOperators(rule: Rule): Operator[] | string {
  if (rule.action === 'ask') return 'OpenSnitch rules cannot ask (OpenSnitch asks only when no rule matches)';
  if (rule.expires !== undefined) return 'OpenSnitch rule files have no absolute expiry';
  if (rule.localPorts !== undefined)
    return 'local ports of outgoing connections are not exported to OpenSnitch';
  if (rule.condition !== undefined) return 'OpenSnitch has no settings conditions';
  if (rule.sha256 !== undefined)
    return 'OpenSnitch checks executables by MD5 or SHA-1, not SHA-256 (without its pin the rule would match any file at its path)';
  if (typeof rule.user === 'string') return 'OpenSnitch matches numeric uids only, not user names';
  if (rule.protocol === 'icmp') return 'OpenSnitch filters TCP and UDP connections';
  if (rule.parent !== undefined)
    return "OpenSnitch's process.parent.path matches any ancestor, not only the direct parent (write ancestor: to export it)";
  const ops: Operator[] = [];
  if (rule.application !== 'any') ops.push(op('simple', 'process.path', rule.application));
  if (rule.ancestor !== undefined)
    ops.push({ ...op('simple', 'process.parent.path', rule.ancestor), sensitive: true });
  if (rule.arguments !== undefined) {
    const g = compileGlob(rule.arguments);
    if (!g.ok) return `its arguments glob is invalid: ${g.message}`;
    const c = commandOperator(g.glob);
    ops.push({ ...op(c.type, 'process.command', c.data), sensitive: true });
  }
  if (rule.user !== undefined) ops.push(op('simple', 'user.id', String(rule.user)));
  if (rule.protocol === 'tcp') ops.push(op('regexp', 'protocol', '^(tcp|tcp6)$'));
  if (rule.protocol === 'udp') ops.push(op('regexp', 'protocol', '^(udp|udp6)$'));
  if (rule.protocol === 'tcp+udp') ops.push(op('regexp', 'protocol', '^(tcp|tcp6|udp|udp6)$'));
  if (rule.remotePorts !== undefined) {
    const ports = rule.remotePorts;
    if (portCount(ports) > MAX_ENUMERATED_PORTS)
      return `more than ${MAX_ENUMERATED_PORTS} remote ports do not fit an OpenSnitch port pattern`;
    const all: number[] = [];
    for (const r of ports) for (let p = r.from; p <= r.to; p++) all.push(p);
    ops.push(
      all.length === 1
        ? op('simple', 'dest.port', String(all[0]))
        : op('regexp', 'dest.port', `^(${all.join('|')})$`),
    );
  }
  const ifaces = rule.interface;
  if (ifaces !== undefined) {
    // `wg*` is a name prefix: `wg.*` in OpenSnitch's regexp; . and + in names are escaped.
    const re = (n: string) =>
      n.endsWith('*') ? `${n.slice(0, -1).replace(/[.+]/g, '\\$&')}.*` : n.replace(/[.+]/g, '\\$&');
    ops.push(
      ifaces.length === 1 && !ifaces[0]!.endsWith('*')
        ? op('simple', 'iface.out', ifaces[0]!)
        : op('regexp', 'iface.out', `^(${ifaces.map(re).join('|')})$`),
    );
  }
  return ops;
}

function combine(ops: Operator[]): Operator {
  if (ops.length === 0) return op('simple', 'true', '');
  if (ops.length === 1) return ops[0]!;
  return { type: 'list', operand: 'list', sensitive: false, data: '', list: ops };
}

/**
 * A list as an OpenSnitch operator, or why it has none: OpenSnitch reads lists from a local
 * directory of files; its `lists.domains` holds hosts-file lines matched by exact name (Warden's
 * `hosts` format, as the importer maps it back). Warden's `domains` lists also match subdomains, and
 * its `ips` lists mix addresses, networks and ranges, which OpenSnitch keeps in two kinds of list.
 */
function listOperator(
  name: string,
  policy: Policy,
  isDirectory: ((path: string) => boolean) | undefined,
): Operator | string {
  const l = policy.lists?.[name];
  if (l === undefined) return `list:${name} is not defined`;
  if (l.file === undefined)
    return `list:${name} is fetched from a URL; OpenSnitch reads lists from local directories only`;
  if (l.format === 'domains')
    return `list:${name} (format domains) matches subdomains too; OpenSnitch's lists.domains matches exact names`;
  if (l.format === 'ips')
    return `list:${name} (format ips) may mix addresses, networks and ranges; OpenSnitch keeps addresses (lists.ips) and networks (lists.nets) apart`;
  if (isDirectory !== undefined && !isDirectory(l.file))
    return `list:${name} is the file ${l.file}; OpenSnitch reads a list from a directory of files`;
  return op('lists', 'lists.domains', l.file);
}

export interface OpenSnitchExportOptions {
  /** Whether a list's path is a directory (the CLI asks the file system); absent: not checked. */
  readonly isDirectory?: (path: string) => boolean;
}

/** Exports the outgoing rules; `now` (ISO instant) stamps created/updated. */
export function exportOpenSnitch(
  policy: Policy,
  now: string,
  options: OpenSnitchExportOptions = {},
): ExportResult {
  const files: ExportedFile[] = [];
  const skipped: ExportResult['skipped'] = [];
  const width = String(policy.rules.length + 1).length + 1;
  const file = (
    position: number,
    part: number,
    name: string,
    action: string,
    enabled: boolean,
    operator: Operator,
  ) => {
    const id = `${String(position).padStart(width, '0')}-${String(part).padStart(3, '0')}-${slug(name)}`;
    const body = {
      created: now,
      updated: now,
      name: id,
      enabled,
      precedence: true,
      action,
      duration: 'always',
      operator,
      nolog: false,
      description: name,
    };
    files.push({ name: `${id}.json`, text: `${JSON.stringify(body, null, 2)}\n` });
  };
  policy.rules.forEach((rule, i) => {
    if (rule.direction === 'incoming') {
      skipped.push(notExported(rule, i, 'OpenSnitch filters outgoing connections only'));
      return;
    }
    if (rule.direction === 'both')
      skipped.push(notExported(rule, i, 'its incoming half: OpenSnitch filters outgoing connections only'));
    const base = baseOperators(rule);
    if (typeof base === 'string') {
      skipped.push(notExported(rule, i, base));
      return;
    }
    const lists = listsOf(rule, policy).map((n) => listOperator(n, policy, options.isDirectory));
    const refused = lists.find((l) => typeof l === 'string');
    if (refused !== undefined) {
      skipped.push(notExported(rule, i, refused));
      return;
    }
    const remotes = remoteItems(rule, policy);
    if (remotes !== undefined && remotes.length === 0 && lists.length === 0) {
      skipped.push(notExported(rule, i, 'its remote list is empty (it never matches)'));
      return;
    }
    const parts =
      remotes === undefined
        ? [base]
        : [
            ...remotes.map((r) => [...base, remoteOperator(r)]),
            ...lists.map((l) => [...base, l as Operator]),
          ];
    parts.forEach((ops, j) => {
      file(i, j, rule.name, rule.action, rule.enabled, combine(ops));
    });
  });
  const def = policy.defaults.outgoing.action;
  if (def !== 'ask') file(policy.rules.length, 0, `default outgoing ${def}`, def, true, combine([]));
  return { files, skipped };
}
