/**
 * OpenSnitch rule files (/etc/opensnitchd/rules/*.json) to Warden rules.
 *
 * OpenSnitch filters outgoing connections only. Its daemon checks the rules
 * sorted by name (byte order); a matching rule with action deny or reject, or
 * with `precedence: true`, decides at once; a matching plain allow is
 * remembered and the search goes on, so any later deny/reject/precedence rule
 * that matches still wins. Warden's first-match order gives the same decisions
 * when the deciding-at-once rules come first (in name order) and the plain
 * allows after them. See docs/import-export.md for the operand mapping.
 */
import type { Problem } from '../../errors.js';
import { parseAddressSpec } from '../address-spec.js';
import { durationSeconds } from '../duration.js';
import { LIST_DEFAULTS } from '../list-schema.js';
import type { Action, AddressSpec, ListSource, PortRange, Protocol, Rule } from '../rule.js';
import { interfaceNameProblem } from '../schema.js';
import { regexpCommandGlob, simpleCommandGlob } from './command-glob.js';
import {
  ALL_IPV4,
  ALL_IPV6,
  addressEntry,
  emptyResult,
  type ImportResult,
  lineAt,
  located,
  mergePorts,
  portList,
  RuleNames,
  type SourceFile,
} from './common.js';
import { jsonErrorOffset } from './json-error.js';
import { anchoredBody, hostPatternEntries, literalAlternatives, literalOf } from './regex-literal.js';

/** The conditions of one rule, AND-ed; each field holds alternatives (OR-ed). */
interface Conditions {
  applications?: string[];
  user?: number;
  protocols?: Set<'tcp' | 'udp' | 'icmp'>;
  family?: 4 | 6;
  ports?: PortRange[];
  remote?: AddressSpec[];
  /** An executable checksum condition (process.hash.md5 / sha1) left out: Warden pins SHA-256 only. */
  droppedHash?: string;
  /** process.parent.path: OpenSnitch tests every ancestor, as Warden's `ancestor`. */
  ancestor?: string;
  /** process.command as a glob (command-glob.ts). */
  arguments?: string;
  interfaces?: string[];
  /** The list a `lists` operand names: its directory and Warden format. */
  list?: { name: string; source: ListSource };
}

interface RawOperator {
  type?: unknown;
  operand?: unknown;
  data?: unknown;
  sensitive?: unknown;
  list?: unknown;
}

interface Parsed {
  readonly name: string;
  readonly decidesAtOnce: boolean;
  readonly rules: Rule[];
}

const ACTIONS: Record<string, Action> = { allow: 'allow', deny: 'deny', reject: 'reject' };

/** Imports OpenSnitch rule files; a `default-config.json` among them gives the outgoing default. */
export function importOpenSnitch(files: readonly SourceFile[], now?: number): ImportResult {
  const result = emptyResult();
  const parsed: Parsed[] = [];
  const names = new RuleNames();
  for (const file of files) {
    const value = parseJson(file, result.problems);
    if (value === undefined) continue;
    if (isDefaultConfig(file, value)) {
      readDefaultConfig(file, value as Record<string, unknown>, result);
      continue;
    }
    const rule = convertRule(file, value, result, now);
    if (rule !== null) parsed.push(rule);
  }
  parsed.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  const ordered = [...parsed.filter((p) => p.decidesAtOnce), ...parsed.filter((p) => !p.decidesAtOnce)];
  for (const p of ordered) for (const r of p.rules) result.rules.push({ ...r, name: names.take(r.name) });
  if (result.defaults.outgoing === undefined && parsed.length > 0) {
    result.defaults.outgoing = { action: 'ask', log: true };
    result.notes.push(
      located(
        '(opensnitch)',
        'OpenSnitch asks about connections no rule decides: the outgoing default is "ask" ' +
          '(pass default-config.json to use its DefaultAction instead)',
      ),
    );
  }
  return result;
}

function parseJson(file: SourceFile, problems: Problem[]): unknown {
  try {
    return JSON.parse(file.text) as unknown;
  } catch (e) {
    const at = jsonErrorOffset(file.text);
    const line = at >= 0 ? lineAt(file.text, at) : undefined;
    problems.push(located(file.name, `not valid JSON: ${(e as Error).message}`, { line }));
    return undefined;
  }
}

function isDefaultConfig(file: SourceFile, value: unknown): boolean {
  return (
    typeof value === 'object' &&
    value !== null &&
    ('DefaultAction' in value || /default-config\.json$/.test(file.name))
  );
}

function readDefaultConfig(file: SourceFile, config: Record<string, unknown>, result: ImportResult): void {
  const action =
    typeof config.DefaultAction === 'string' ? ACTIONS[config.DefaultAction.toLowerCase()] : undefined;
  if (action === undefined) {
    result.problems.push(
      located(
        file.name,
        `DefaultAction ${JSON.stringify(config.DefaultAction)} is not allow, deny or reject`,
        {
          path: ['DefaultAction'],
        },
      ),
    );
    return;
  }
  result.defaults.outgoing = { action, log: true };
}

function convertRule(
  file: SourceFile,
  value: unknown,
  result: ImportResult,
  now: number | undefined,
): Parsed | null {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    result.problems.push(located(file.name, 'an OpenSnitch rule file holds one JSON object'));
    return null;
  }
  const raw = value as Record<string, unknown>;
  const name = typeof raw.name === 'string' && raw.name !== '' ? raw.name : file.name.replace(/^.*\//, '');
  const skip = (message: string, path: (string | number)[] = []) => {
    result.problems.push(located(file.name, `not imported: ${message}`, { path, rule: name }));
    return null;
  };
  const action = typeof raw.action === 'string' ? ACTIONS[raw.action.toLowerCase()] : undefined;
  if (action === undefined)
    return skip(`action ${JSON.stringify(raw.action)} is not allow, deny or reject`, ['action']);
  const expires = expiryOf(raw, (m) => skip(m, ['duration']));
  if (expires === null) return null;
  const problems: string[] = [];
  const conditions = readOperator(raw.operator as RawOperator, {}, problems);
  if (problems.length > 0 || conditions === null) {
    for (const p of problems)
      result.problems.push(located(file.name, `not imported: ${p}`, { path: ['operator'], rule: name }));
    return null;
  }
  if (conditions.list !== undefined) {
    result.lists ??= {};
    const lists = result.lists;
    const { name: wanted, source } = conditions.list;
    let listName = wanted;
    for (
      let n = 2;
      lists[listName] !== undefined && JSON.stringify(lists[listName]) !== JSON.stringify(source);
      n++
    )
      listName = `${wanted}-${n}`;
    lists[listName] = source;
    conditions.remote = [{ kind: 'list', name: listName }];
    result.notes.push(
      located(
        file.name,
        `${source.file} became list "${listName}" (format ${source.format}): Warden reads every file of the directory, as OpenSnitch does`,
        { path: ['operator'], rule: name },
      ),
    );
  }
  const rules = toRules(name, action, conditions, raw, expires);
  if (typeof rules === 'string') return skip(rules, ['operator']);
  if (conditions.droppedHash !== undefined)
    result.notes.push(
      located(
        file.name,
        `${conditions.droppedHash} left out: Warden pins executables by SHA-256 only (no MD5 or SHA-1), so this rule matches any file at its path; pin it with warden rules update (sha256) or warden rules add --pin`,
        { path: ['operator'], rule: name },
      ),
    );
  if (raw.nolog === true && action !== 'allow')
    result.notes.push(
      located(file.name, 'nolog is ignored: Warden logs every block', { path: ['nolog'], rule: name }),
    );
  if (expires !== undefined)
    result.notes.push(
      located(
        file.name,
        `duration ${String(raw.duration)} became a temporary rule that expires at ${expires}` +
          (now !== undefined && Date.parse(expires) <= now ? ' (already expired: it will never match)' : ''),
        {
          path: ['duration'],
          rule: name,
        },
      ),
    );
  const decidesAtOnce = action !== 'allow' || raw.precedence === true;
  return { name, decidesAtOnce, rules };
}

/** undefined: no expiry; a string: the ISO instant; null: reported. */
function expiryOf(raw: Record<string, unknown>, skip: (m: string) => null): string | undefined | null {
  const d = raw.duration === undefined ? 'always' : raw.duration;
  if (d === 'always') return undefined;
  // OpenSnitch's durations: 5m, 1h, 12h and the like (weeks are ours only).
  const seconds = typeof d === 'string' && !d.endsWith('w') ? durationSeconds(d) : null;
  if (seconds === null)
    return skip(
      `duration ${JSON.stringify(d)} lasts only until OpenSnitch restarts or one connection; only "always" and timed durations are imported`,
    );
  const start = typeof raw.created === 'string' ? Date.parse(raw.created) : Number.NaN;
  if (Number.isNaN(start)) return skip(`duration ${d} needs the rule's "created" time to know when it ends`);
  return new Date(start + seconds * 1000).toISOString();
}

function readOperator(op: RawOperator | undefined, acc: Conditions, problems: string[]): Conditions | null {
  if (typeof op !== 'object' || op === null) {
    problems.push('the rule has no operator');
    return null;
  }
  const type = String(op.type ?? 'simple').toLowerCase();
  const operand = String(op.operand ?? '');
  if (type === 'list') {
    if (!Array.isArray(op.list) || op.list.length === 0) {
      problems.push('a list operator without a list');
      return null;
    }
    for (const item of op.list) if (readOperator(item as RawOperator, acc, problems) === null) return null;
    return acc;
  }
  const data = typeof op.data === 'string' ? op.data : typeof op.data === 'number' ? String(op.data) : '';
  const fail = (why: string) => {
    problems.push(`${operand || '(no operand)'} ${type} ${JSON.stringify(data)}: ${why}`);
    return null;
  };
  if (type === 'lists') return readLists(acc, operand, data, fail);
  if (operand === 'true') return acc;
  const values = (): string[] | null => {
    if (type === 'simple') return [data];
    if (type === 'regexp') return literalAlternatives(data);
    return null;
  };
  switch (operand) {
    case 'process.path': {
      const apps = values();
      if (apps === null) return fail('only an exact path or ^(path|path)$ can be imported');
      if (apps.some((a) => !a.startsWith('/') || a.endsWith('/')))
        return fail('not an absolute executable path');
      return set(acc, 'applications', apps, fail);
    }
    case 'process.parent.path': {
      const paths = values();
      if (paths === null || paths.length !== 1)
        return fail('only one exact path or ^path$ can be imported (a rule names one ancestor)');
      if (!paths[0]!.startsWith('/') || paths[0]!.endsWith('/'))
        return fail('not an absolute executable path');
      return set(acc, 'ancestor', paths[0]!, fail);
    }
    case 'process.command': {
      const sensitive = op.sensitive === true;
      const g =
        type === 'simple'
          ? simpleCommandGlob(data, sensitive)
          : type === 'regexp'
            ? regexpCommandGlob(data, sensitive)
            : { ok: false as const, why: 'only simple and regexp operators can be imported' };
      if (!g.ok) return fail(g.why);
      return set(acc, 'arguments', g.glob, fail);
    }
    case 'user.id': {
      const ids = values();
      if (ids === null || ids.length !== 1 || !/^[0-9]+$/.test(ids[0]!))
        return fail('only one numeric uid can be imported');
      return set(acc, 'user', Number(ids[0]), fail);
    }
    case 'dest.port': {
      let ports: PortRange[] | null = null;
      if (type === 'range') ports = portList(data, '-');
      else {
        const items = values();
        ports = items === null ? null : portList(items.join(','), '-');
      }
      if (ports === null) return fail('only a port, a range or ^(port|port)$ can be imported');
      return set(acc, 'ports', mergePorts(ports), fail);
    }
    case 'dest.ip':
    case 'dest.network': {
      const items = type === 'network' ? [data] : values();
      const specs = items?.map(addressEntry);
      if (specs === undefined || specs.some((s) => s === null))
        return fail('only an address, a network (CIDR) or ^(address|address)$ can be imported');
      return set(acc, 'remote', specs as AddressSpec[], fail);
    }
    case 'dest.host': {
      const items =
        type === 'simple'
          ? [data.toLowerCase()]
          : type === 'regexp'
            ? hostPatternEntries(data.toLowerCase())
            : null;
      if (items === null)
        return fail('only a name, ^name$, ^(.*\\.)?name$ or ^.*\\.name$ (dots escaped) can be imported');
      const specs: AddressSpec[] = [];
      for (const item of items) {
        const r = parseAddressSpec(item);
        if (!r.ok || r.value.kind !== 'host') return fail(r.ok ? 'not a host name' : r.message);
        specs.push(r.value);
      }
      return set(acc, 'remote', specs, fail);
    }
    case 'process.hash.md5':
    case 'process.hash.sha1':
      if (type !== 'simple') return fail('only an exact checksum can be read');
      acc.droppedHash = `${operand} ${data}`;
      return acc;
    case 'iface.out': {
      const names = type === 'simple' ? [data] : type === 'regexp' ? interfaceAlternatives(data) : null;
      if (names === null) return fail('only a name or ^(name|prefix.*)$ can be imported');
      const bad = names.map(interfaceNameProblem).find((p) => p !== null);
      if (bad !== undefined) return fail(bad);
      return set(acc, 'interfaces', names, fail);
    }
    case 'protocol':
      return readProtocol(acc, values(), fail);
    default:
      return fail(whyNot(operand));
  }
}

/** OpenSnitch's directory lists as a Warden list of that directory (docs/import-export.md). */
function readLists(
  acc: Conditions,
  operand: string,
  data: string,
  fail: (why: string) => null,
): Conditions | null {
  const format =
    operand === 'lists.domains'
      ? 'hosts'
      : operand === 'lists.ips' || operand === 'lists.nets'
        ? 'ips'
        : undefined;
  if (operand === 'lists.domains_regexp')
    return fail(
      'lists of regular expressions have no Warden counterpart (Warden lists hold names and addresses)',
    );
  if (format === undefined) return fail(`unknown list operand ${operand}`);
  const dir = data.replace(/\/+$/, '');
  if (!dir.startsWith('/') || dir === '') return fail('the list directory is not an absolute path');
  const name =
    dir
      .replace(/^.*\//, '')
      .replace(/[^a-zA-Z0-9_.-]+/g, '-')
      .replace(/^[^a-zA-Z0-9]+/, '')
      .slice(0, 64) || 'list';
  const source: ListSource = {
    file: dir,
    format,
    maxBytes: LIST_DEFAULTS.maxBytes,
    maxEntries: LIST_DEFAULTS.maxEntries,
  };
  const withRemote = set(acc, 'remote', [], fail);
  if (withRemote === null) return null;
  return set(withRemote, 'list', { name, source }, fail);
}

function whyNot(operand: string): string {
  if (operand.startsWith('process.env.')) return 'Warden rules cannot match environment variables';
  if (operand === 'process.id') return 'process ids change with every start';
  if (operand.startsWith('process.hash')) return 'Warden pins executables by SHA-256 only (sha256)';
  if (operand.startsWith('process.hash')) return 'Warden rules cannot match executable checksums';
  if (operand === 'iface.in')
    return 'an outgoing connection matches the interface it leaves by (iface.out), not iface.in';
  if (operand.startsWith('source.'))
    return 'the local address or port of an outgoing connection is not imported';
  if (operand.startsWith('lists.')) return 'block lists have no Warden counterpart; use an address group';
  return 'unknown operand';
}

function readProtocol(
  acc: Conditions,
  items: string[] | null,
  fail: (why: string) => null,
): Conditions | null {
  if (items === null) return fail('only a protocol name or ^(name|name)$ can be imported');
  const pairs = new Set<string>();
  for (const item of items) {
    const m = /^(tcp|udp|icmp)(6?)$/.exec(item.toLowerCase());
    if (m === null) return fail(`protocol ${item} is not tcp, udp or icmp`);
    pairs.add(`${m[1]}${m[2] === '6' ? 6 : 4}`);
  }
  const protocols = new Set([...pairs].map((p) => p.slice(0, -1) as 'tcp' | 'udp' | 'icmp'));
  const families = new Set([...pairs].map((p) => Number(p.slice(-1)) as 4 | 6));
  if (protocols.size * families.size !== pairs.size)
    return fail('this mix of protocols and address families is not one rule');
  if (protocols.has('icmp') && protocols.size > 1) return fail('icmp mixed with tcp/udp is not one rule');
  const withProtocols = set(acc, 'protocols', protocols, fail);
  if (withProtocols === null || families.size === 2) return withProtocols;
  return set(withProtocols, 'family', [...families][0]!, fail);
}

function set<K extends keyof Conditions>(
  acc: Conditions,
  key: K,
  value: NonNullable<Conditions[K]>,
  fail: (why: string) => null,
): Conditions | null {
  if (acc[key] !== undefined)
    return fail(`a second condition on the same field (AND of two ${key} conditions) is not imported`);
  acc[key] = value;
  return acc;
}

/** Interface names of `^name$`, `^(name|prefix.*)$`: a trailing `.*` becomes Warden's `prefix*`. */
function interfaceAlternatives(pattern: string): string[] | null {
  const body = anchoredBody(pattern);
  if (body === null) return null;
  const group = /^\((?:\?:)?([^()]*)\)$/.exec(body);
  const out: string[] = [];
  for (const item of group ? group[1]!.split('|') : [body]) {
    const prefix = item.endsWith('.*');
    const lit = literalOf(prefix ? item.slice(0, -2) : item);
    if (lit === null || lit === '') return null;
    out.push(prefix ? `${lit}*` : lit);
  }
  return out;
}

/** Builds the Warden rules (one per application alternative) or says why it cannot. */
function toRules(
  name: string,
  action: Action,
  c: Conditions,
  raw: Record<string, unknown>,
  expires: string | undefined,
): Rule[] | string {
  let protocol: Protocol = 'any';
  if (c.protocols !== undefined) {
    const p = c.protocols;
    protocol = p.has('icmp') ? 'icmp' : p.size === 2 ? 'tcp+udp' : p.has('tcp') ? 'tcp' : 'udp';
  }
  if (c.ports !== undefined) {
    if (protocol === 'icmp') return 'a port condition with protocol icmp can never match';
    // OpenSnitch sees ports only on TCP and UDP connections.
    if (protocol === 'any') protocol = 'tcp+udp';
  }
  let remote = c.remote;
  if (c.family !== undefined) {
    if (remote === undefined) remote = [c.family === 4 ? ALL_IPV4 : ALL_IPV6];
    else if (remote.some((s) => s.kind === 'host'))
      return 'a protocol limited to one address family (tcp6, udp...) together with a host name is not one Warden rule';
    else {
      remote = remote.filter((s) => s.kind === 'ip' && s.range.version === c.family);
      if (remote.length === 0)
        return `protocol and address are of different address families: the rule can never match`;
    }
  }
  const base: Rule = {
    name,
    enabled: raw.enabled !== false,
    direction: 'outgoing',
    protocol,
    application: 'any',
    action,
    log: false,
    ...(c.user === undefined ? {} : { user: c.user }),
    ...(c.ports === undefined ? {} : { remotePorts: c.ports }),
    ...(remote === undefined ? {} : { remote }),
    ...(c.interfaces === undefined ? {} : { interface: c.interfaces }),
    ...(expires === undefined ? {} : { expires }),
    ...(c.ancestor === undefined ? {} : { ancestor: c.ancestor }),
    ...(c.arguments === undefined ? {} : { arguments: c.arguments }),
    comment: `imported from OpenSnitch rule ${name}${raw.precedence === true ? ' (priority)' : ''}`,
  };
  const apps = c.applications ?? ['any'];
  return apps.map((application, i) => ({
    ...base,
    application,
    name: apps.length === 1 ? name : `${name} (${i + 1})`,
  }));
}
