/**
 * firewalld zone files (/etc/firewalld/zones/*.xml) to Warden rules.
 *
 * Order inside a zone (firewalld >= 0.9): rich rules with a negative
 * priority (lowest first), then drop/reject rich rules, then what the zone
 * accepts (accept rich rules, services, ports, protocols, source ports), then
 * rich rules with a positive priority, then the zone's target. Zones bound to
 * source addresses come before the zone without sources (the one given for the
 * rest of the traffic, usually the default zone); their rules are limited to
 * those sources. Services are expanded through the given service files or a
 * built-in table. Outgoing traffic is not filtered by firewalld zones.
 */
import type { Action, AddressSpec, PortRange, Protocol, Rule } from '../rule.js';
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
import {
  builtinService,
  children,
  parseServiceXml,
  type ServiceDef,
  xmlError,
  xmlParser,
} from './firewalld-services.js';

type Node = Record<string, unknown>;
type Draft = Omit<Rule, 'name'> & { wanted: string };

interface ZoneRules {
  readonly name: string;
  readonly sources: AddressSpec[] | undefined;
  readonly rules: Draft[];
  readonly target: string;
  readonly file: string;
}

const TARGETS: Record<string, Action> = {
  ACCEPT: 'allow',
  DROP: 'deny',
  REJECT: 'reject',
  '%%REJECT%%': 'reject',
};

/** Imports zone files; `services` are service XML files (name.xml) that override the built-in table. */
export function importFirewalld(
  files: readonly SourceFile[],
  services: readonly SourceFile[] = [],
): ImportResult {
  const result = emptyResult();
  const defs = new Map<string, ServiceDef>();
  for (const s of services) {
    const def = parseServiceXml(s.text);
    if (typeof def === 'string') result.problems.push(located(s.name, `service file not read: ${def}`));
    else defs.set(s.name.replace(/^.*\//, '').replace(/\.xml$/, ''), def);
  }
  const zones: ZoneRules[] = [];
  for (const file of files) {
    const z = readZone(file, defs, result);
    if (z !== null) zones.push(z);
  }
  const sourceZones = zones.filter((z) => z.sources !== undefined);
  const mainZones = zones.filter((z) => z.sources === undefined);
  for (const extra of mainZones.slice(1)) {
    result.problems.push(
      located(
        extra.file,
        `not imported: zone ${extra.name} has no sources, and zone ${mainZones[0]!.name} was already taken ` +
          'as the zone for all other traffic; Warden rules do not match interfaces (import one interface zone, usually the default zone)',
      ),
    );
  }
  const names = new RuleNames();
  const ordered = [...sourceZones, ...mainZones.slice(0, 1)];
  if (ordered.length > 0) {
    result.rules.push({
      name: names.take('loopback (firewalld)'),
      enabled: true,
      direction: 'incoming',
      protocol: 'any',
      application: 'any',
      remote: [{ kind: 'localhost' }],
      action: 'allow',
      log: false,
      comment: 'firewalld accepts all traffic on the loopback interface',
    });
  }
  for (const z of ordered) {
    for (const d of z.rules) {
      const { wanted, ...rule } = d;
      result.rules.push({ ...rule, name: names.take(wanted) });
    }
  }
  const main = mainZones[0];
  if (main !== undefined) {
    const t = main.target.toUpperCase();
    result.defaults.incoming = { action: TARGETS[t] ?? 'reject', log: true };
    result.defaults.outgoing = { action: 'allow', log: true };
  }
  return result;
}

/** Masks the text of every <rule>...</rule> block (keeping newlines) so zone-level elements can be found by position. */
function lineFinder(text: string) {
  const masked = text.replace(/<rule[\s>][\s\S]*?<\/rule>/g, (m) => m.replace(/[^\n]/g, ' '));
  const find = (source: string, tag: string, n: number): number | undefined => {
    const re = new RegExp(`<${tag}[\\s/>]`, 'g');
    let m: RegExpExecArray | null = null;
    for (let i = 0; i <= n; i++) {
      m = re.exec(source);
      if (m === null) return undefined;
    }
    return m === null ? undefined : lineAt(text, m.index);
  };
  return {
    top: (tag: string, n: number) => find(masked, tag, n),
    rule: (n: number) => find(text, 'rule', n),
  };
}

function readZone(file: SourceFile, defs: Map<string, ServiceDef>, result: ImportResult): ZoneRules | null {
  const err = xmlError(file.text);
  if (err !== null) {
    result.problems.push(located(file.name, `not valid XML: ${err.message}`, { line: err.line }));
    return null;
  }
  let doc: Node;
  try {
    doc = xmlParser.parse(file.text) as Node;
  } catch (e) {
    result.problems.push(located(file.name, `not valid XML: ${(e as Error).message}`));
    return null;
  }
  const zone = doc.zone;
  if (typeof zone !== 'object' || zone === null || Array.isArray(zone)) {
    result.problems.push(located(file.name, 'not a firewalld zone file (no <zone> element)'));
    return null;
  }
  const z = zone as Node;
  const zoneName = file.name.replace(/^.*\//, '').replace(/\.xml$/, '');
  const lines = lineFinder(file.text);
  const path = ['zone', zoneName];
  const skip = (message: string, line: number | undefined, rule?: string) =>
    result.problems.push(located(file.name, `not imported: ${message}`, { line, rule, path }));
  const note = (message: string, line: number | undefined, rule?: string) =>
    result.notes.push(located(file.name, message, { line, rule, path }));

  let sources: AddressSpec[] | undefined;
  children(z, 'source').forEach((s, i) => {
    const spec = typeof s.address === 'string' ? addressEntry(s.address) : null;
    if (spec === null)
      skip(
        `zone source ${JSON.stringify(s)}: only address sources can be imported (not mac or ipset)`,
        lines.top('source', i),
      );
    else sources = [...(sources ?? []), spec];
  });
  if (children(z, 'interface').length > 0)
    note(
      `zone ${zoneName} is bound to interface(s) ${children(z, 'interface')
        .map((i) => i.name)
        .join(', ')}; Warden rules apply on every interface`,
      lines.top('interface', 0),
    );
  const pre: { priority: number; draft: Draft }[] = [];
  const post: { priority: number; draft: Draft }[] = [];
  const deny: Draft[] = [];
  const allow: Draft[] = [];
  const base = (wanted: string, action: Action): Draft => ({
    wanted: `firewalld ${zoneName}: ${wanted}`,
    enabled: true,
    direction: 'incoming',
    protocol: 'any',
    application: 'any',
    action,
    log: false,
    ...(sources === undefined ? {} : { remote: sources }),
    comment: `imported from firewalld zone ${zoneName}`,
  });
  const ctx = { defs, skip, note };

  children(z, 'service').forEach((s, i) => {
    const name = String(s.name ?? '');
    const drafts = serviceDrafts(name, base(`service ${name}`, 'allow'), ctx, lines.top('service', i));
    allow.push(...drafts);
  });
  children(z, 'port').forEach((p, i) => {
    const d = portDraft(p, base(`port ${String(p.port)}/${String(p.protocol)}`, 'allow'), 'localPorts');
    if (typeof d === 'string') skip(d, lines.top('port', i));
    else allow.push(d);
  });
  children(z, 'source-port').forEach((p, i) => {
    const d = portDraft(
      p,
      base(`source port ${String(p.port)}/${String(p.protocol)}`, 'allow'),
      'remotePorts',
    );
    if (typeof d === 'string') skip(d, lines.top('source-port', i));
    else allow.push(d);
  });
  children(z, 'protocol').forEach((p, i) => {
    const proto = protocolOf(String(p.value ?? ''));
    if (proto === null)
      skip(`protocol ${String(p.value)} has no Warden counterpart`, lines.top('protocol', i));
    else allow.push({ ...base(`protocol ${String(p.value)}`, 'allow'), protocol: proto });
  });
  const icmpBlocks = children(z, 'icmp-block').length > 0 || children(z, 'icmp-block-inversion').length > 0;
  if (icmpBlocks)
    skip(
      'icmp-block and icmp-block-inversion: Warden cannot tell ICMP types apart',
      lines.top('icmp-block', 0) ?? lines.top('icmp-block-inversion', 0),
    );
  for (const tag of ['masquerade', 'forward-port'])
    if (children(z, tag).length > 0)
      skip(`<${tag}>: address translation and forwarding are not Warden's job`, lines.top(tag, 0));

  children(z, 'rule').forEach((r, i) => {
    const line = lines.rule(i);
    const priority = Number(r.priority ?? 0);
    const d = richRule(r, base(`rich rule ${i + 1}`, 'allow'), sources !== undefined, ctx, line);
    if (d === null) return;
    if (!Number.isInteger(priority)) skip(`priority ${String(r.priority)} is not a whole number`, line);
    else if (priority < 0) for (const x of d) pre.push({ priority, draft: x });
    else if (priority > 0) for (const x of d) post.push({ priority, draft: x });
    else for (const x of d) (x.action === 'allow' ? allow : deny).push(x);
  });
  const byPriority = (a: { priority: number }, b: { priority: number }) => a.priority - b.priority;
  const rules = [
    ...pre.sort(byPriority).map((x) => x.draft),
    ...deny,
    ...allow,
    ...post.sort(byPriority).map((x) => x.draft),
  ];
  const target = String(z.target ?? 'default');
  const targetAction = TARGETS[target.toUpperCase()];
  if (target.toLowerCase() === 'default' || target === '%%REJECT%%') {
    // firewalld's default target accepts ICMP at the end of the zone, then rejects.
    if (target.toLowerCase() === 'default' && !icmpBlocks)
      rules.push({ ...base('ICMP (default target)', 'allow'), protocol: 'icmp' });
  } else if (targetAction === undefined) skip(`target ${target} is not default, ACCEPT, DROP or REJECT`, 1);
  if (sources !== undefined) rules.push({ ...base(`target ${target}`, targetAction ?? 'reject'), log: true });
  return { name: zoneName, sources, rules, target, file: file.name };
}

function protocolOf(value: string): Protocol | null {
  const v = value.toLowerCase();
  if (v === 'tcp' || v === 'udp') return v;
  if (v === 'icmp' || v === 'ipv6-icmp' || v === 'icmpv6') return 'icmp';
  return null;
}

function portDraft(p: Node, base: Draft, field: 'localPorts' | 'remotePorts'): Draft | string {
  const proto = String(p.protocol ?? '').toLowerCase();
  if (proto !== 'tcp' && proto !== 'udp')
    return `port protocol "${proto}" is not tcp or udp (sctp, dccp have no Warden counterpart)`;
  const ports = portList(String(p.port ?? ''), '-');
  if (ports === null) return `"${String(p.port)}" is not a port or port range`;
  return { ...base, protocol: proto, [field]: ports };
}

interface Ctx {
  readonly defs: Map<string, ServiceDef>;
  readonly skip: (message: string, line: number | undefined, rule?: string) => void;
  readonly note: (message: string, line: number | undefined, rule?: string) => void;
}

/** A service's allow rules: one per protocol (tcp and udp merge when their ports are the same). */
function serviceDrafts(
  name: string,
  base: Draft,
  ctx: Ctx,
  line: number | undefined,
  seen = new Set<string>(),
): Draft[] {
  const def = ctx.defs.get(name) ?? builtinService(name);
  if (def === undefined) {
    ctx.skip(
      `service ${name} is not in Warden's table; pass its XML file with --services DIR`,
      line,
      base.wanted,
    );
    return [];
  }
  if (def.destination !== undefined) {
    ctx.skip(
      `service ${name} is limited to the local destination ${def.destination}; Warden rules cannot restrict the local address`,
      line,
      base.wanted,
    );
    return [];
  }
  if (def.helpers.length > 0)
    ctx.note(
      `service ${name}: conntrack helper ${def.helpers.join(', ')} is not imported (related connections it would open are not)`,
      line,
      base.wanted,
    );
  const out: Draft[] = [];
  const byProto = new Map<string, PortRange[]>();
  for (const p of def.ports)
    byProto.set(p.protocol, mergePorts([...(byProto.get(p.protocol) ?? []), ...p.ports]));
  for (const proto of byProto.keys())
    if (proto !== 'tcp' && proto !== 'udp') {
      ctx.skip(`service ${name}: port protocol ${proto} has no Warden counterpart`, line, base.wanted);
      return [];
    }
  const tcp = byProto.get('tcp');
  const udp = byProto.get('udp');
  if (tcp && udp && JSON.stringify(tcp) === JSON.stringify(udp))
    out.push({ ...base, protocol: 'tcp+udp', localPorts: tcp });
  else {
    if (tcp)
      out.push({
        ...base,
        wanted: udp ? `${base.wanted} tcp` : base.wanted,
        protocol: 'tcp',
        localPorts: tcp,
      });
    if (udp)
      out.push({
        ...base,
        wanted: tcp ? `${base.wanted} udp` : base.wanted,
        protocol: 'udp',
        localPorts: udp,
      });
  }
  for (const sp of def.sourcePorts) {
    if (sp.protocol !== 'tcp' && sp.protocol !== 'udp') continue;
    out.push({ ...base, wanted: `${base.wanted} source port`, protocol: sp.protocol, remotePorts: sp.ports });
  }
  for (const proto of def.protocols) {
    const p = protocolOf(proto);
    if (p === null)
      ctx.skip(`service ${name}: protocol ${proto} has no Warden counterpart`, line, base.wanted);
    else out.push({ ...base, wanted: `${base.wanted} ${proto}`, protocol: p });
  }
  for (const inc of def.includes) {
    if (seen.has(inc)) continue;
    seen.add(name);
    out.push(...serviceDrafts(inc, { ...base, wanted: `${base.wanted} + ${inc}` }, ctx, line, seen));
  }
  return out;
}

/** One rich rule to drafts (several for a service), or null when reported. */
function richRule(
  r: Node,
  base: Draft,
  inSourceZone: boolean,
  ctx: Ctx,
  line: number | undefined,
): Draft[] | null {
  const fail = (m: string) => {
    ctx.skip(`rich rule: ${m}`, line, base.wanted);
    return null;
  };
  const family = r.family === undefined ? undefined : String(r.family);
  if (family !== undefined && family !== 'ipv4' && family !== 'ipv6')
    return fail(`family ${family} is not ipv4 or ipv6`);
  let remote = base.remote;
  const source = children(r, 'source')[0];
  if (source !== undefined) {
    if (source.invert !== undefined && String(source.invert).toLowerCase() !== 'false')
      return fail('an inverted source ("not") cannot be expressed as one Warden rule');
    const spec = typeof source.address === 'string' ? addressEntry(source.address) : null;
    if (spec === null) return fail('only address sources can be imported (not mac or ipset)');
    if (inSourceZone)
      return fail('a source address inside a zone bound to sources (two address conditions) is not imported');
    remote = [spec];
  }
  if (children(r, 'destination').length > 0)
    return fail('a destination (local address) cannot be expressed in a Warden rule');
  if (family !== undefined) {
    const fam = family === 'ipv4' ? 4 : 6;
    if (remote === undefined) remote = [fam === 4 ? ALL_IPV4 : ALL_IPV6];
    else if (remote.some((s) => s.kind !== 'ip' || s.range.version !== fam))
      return fail("the source address is not of the rule's family");
  }
  const accept = children(r, 'accept').length > 0;
  const reject = children(r, 'reject').length > 0;
  const drop = children(r, 'drop').length > 0;
  if (children(r, 'mark').length > 0) return fail('mark actions have no Warden counterpart');
  const action: Action | undefined = accept ? 'allow' : reject ? 'reject' : drop ? 'deny' : undefined;
  if (action === undefined) {
    ctx.note('rich rule that only logs or audits decides nothing and was not imported', line, base.wanted);
    return null;
  }
  const log = children(r, 'log').length > 0 || children(r, 'nflog').length > 0;
  if (
    children(r, 'limit').length > 0 ||
    children(r, 'log').some((l) => children(l, 'limit').length > 0) ||
    children(r, 'accept').some((l) => children(l, 'limit').length > 0)
  )
    ctx.note('rich rule rate limit is not imported (Warden has no rate limiting)', line, base.wanted);
  const d: Draft = { ...base, action, log, ...(remote === undefined ? {} : { remote }) };
  for (const tag of ['icmp-block', 'icmp-type'])
    if (children(r, tag).length > 0) return fail(`<${tag}>: Warden cannot tell ICMP types apart`);
  for (const tag of ['masquerade', 'forward-port'])
    if (children(r, tag).length > 0) return fail(`<${tag}> is address translation, not filtering`);
  const service = children(r, 'service')[0];
  if (service !== undefined) {
    const out = serviceDrafts(String(service.name ?? ''), d, ctx, line);
    return out.length === 0 ? null : out;
  }
  const port = children(r, 'port')[0];
  if (port !== undefined) {
    const x = portDraft(port, d, 'localPorts');
    return typeof x === 'string' ? fail(x) : [x];
  }
  const sport = children(r, 'source-port')[0];
  if (sport !== undefined) {
    const x = portDraft(sport, d, 'remotePorts');
    return typeof x === 'string' ? fail(x) : [x];
  }
  const proto = children(r, 'protocol')[0];
  if (proto !== undefined) {
    const p = protocolOf(String(proto.value ?? ''));
    return p === null
      ? fail(`protocol ${String(proto.value)} has no Warden counterpart`)
      : [{ ...d, protocol: p }];
  }
  return [d];
}
