/**
 * ufw to Warden rules: the `### tuple ###` lines of /etc/ufw/user.rules and
 * user6.rules (ufw's own record of each rule, the one its backend reads back),
 * and the default policies of /etc/default/ufw.
 *
 * A tuple is `action proto dport dst sport src [dapp sapp] direction[_iface]
 * [comment=hex]`. ufw evaluates user.rules (IPv4) and user6.rules (IPv6)
 * separately, in file order, first match wins, so each imported rule is
 * limited to its file's address family unless the same rule stands in both
 * files at compatible positions, where the two merge into one.
 */
import type { Action, AddressSpec, DefaultAction, PortRange, Protocol, Rule } from '../rule.js';
import {
  ALL_IPV4,
  ALL_IPV6,
  addressEntry,
  emptyResult,
  type ImportResult,
  isWholeFamily,
  located,
  portList,
  RuleNames,
  type SourceFile,
} from './common.js';

interface Pending {
  readonly wanted: string;
  readonly rule: Omit<Rule, 'name'>;
}

const POLICIES: Record<string, Action> = { ACCEPT: 'allow', DROP: 'deny', REJECT: 'reject' };

/** Imports ufw rule files and default-policy files (recognised by their content). */
export function importUfw(files: readonly SourceFile[]): ImportResult {
  const result = emptyResult();
  const v4: Pending[] = [];
  const v6: Pending[] = [];
  for (const file of files) {
    if (/^### tuple ###/m.test(file.text) || /user6?\.rules$/.test(file.name)) {
      const family =
        /user6\.rules$/.test(file.name) || (!/user\.rules$/.test(file.name) && hasIpv6Tuple(file.text))
          ? 6
          : 4;
      (family === 6 ? v6 : v4).push(...readRules(file, family, result));
    } else if (/^\s*(DEFAULT_\w+_POLICY|ENABLED)\s*=/m.test(file.text)) readDefaults(file, result);
    else
      result.problems.push(
        located(
          file.name,
          'not a ufw file: neither "### tuple ###" rule lines nor DEFAULT_*_POLICY settings',
        ),
      );
  }
  const merged = mergeFamilies(v4, v6);
  const names = new RuleNames();
  if (merged.length > 0) {
    result.rules.push({
      name: names.take('loopback (ufw before.rules)'),
      enabled: true,
      direction: 'both',
      protocol: 'any',
      application: 'any',
      remote: [{ kind: 'localhost' }],
      action: 'allow',
      log: false,
      comment: 'ufw accepts all loopback traffic before the user rules (before.rules)',
    });
    result.notes.push(
      located(
        '(ufw)',
        "ufw's before.rules accept loopback, some ICMP types and DHCP replies before the user rules; " +
          'the loopback part is imported as a first rule, the ICMP and DHCP parts are not (Warden cannot tell ICMP types apart)',
      ),
    );
  }
  for (const p of merged) result.rules.push({ ...p.rule, name: names.take(p.wanted) } as Rule);
  return result;
}

function readDefaults(file: SourceFile, result: ImportResult): void {
  file.text.split('\n').forEach((raw, i) => {
    const m =
      /^\s*(DEFAULT_(INPUT|OUTPUT|FORWARD|APPLICATION)_POLICY|ENABLED)\s*=\s*"?([A-Za-z]*)"?\s*$/.exec(raw);
    if (m === null) return;
    const line = i + 1;
    if (m[1] === 'ENABLED') {
      if (m[3]!.toLowerCase() === 'no')
        result.notes.push(
          located(file.name, 'ufw is disabled here (ENABLED=no): these rules were not being enforced', {
            line,
          }),
        );
      return;
    }
    const which = m[2]!;
    if (which === 'FORWARD' || which === 'APPLICATION') return;
    const action = POLICIES[m[3]!.toUpperCase()];
    if (action === undefined) {
      result.problems.push(located(file.name, `${m[1]}="${m[3]}" is not ACCEPT, DROP or REJECT`, { line }));
      return;
    }
    const d: DefaultAction = { action, log: true };
    if (which === 'INPUT') result.defaults.incoming = d;
    else result.defaults.outgoing = d;
  });
}

function readRules(file: SourceFile, family: 4 | 6, result: ImportResult): Pending[] {
  const out: Pending[] = [];
  const lines = file.text.split('\n');
  lines.forEach((raw, i) => {
    if (!/^### tuple ###/.test(raw)) return;
    const line = i + 1;
    const following: string[] = [];
    for (let j = i + 1; j < lines.length && lines[j]!.startsWith('-A '); j++) following.push(lines[j]!);
    const r = readTuple(raw, family, following);
    if (typeof r === 'string')
      result.problems.push(
        located(file.name, `not imported: ${r}`, { line, path: ['tuple'], rule: raw.slice(14).trim() }),
      );
    else {
      out.push(r.pending);
      for (const n of r.notes)
        result.notes.push(located(file.name, n, { line, path: ['tuple'], rule: r.pending.wanted }));
    }
  });
  return out;
}

function decodeComment(hex: string): string | null {
  if (!/^([0-9a-fA-F]{2})+$/.test(hex)) return null;
  const bytes = new Uint8Array(hex.length / 2);
  for (let i = 0; i < bytes.length; i++) bytes[i] = Number.parseInt(hex.slice(i * 2, i * 2 + 2), 16);
  try {
    return new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch {
    return null;
  }
}

function readTuple(
  raw: string,
  family: 4 | 6,
  iptablesLines: string[],
): { pending: Pending; notes: string[] } | string {
  const notes: string[] = [];
  let text = raw.replace(/^### tuple ###\s*/, '');
  let comment: string | undefined;
  const c = text.indexOf(' comment=');
  if (c >= 0) {
    const decoded = decodeComment(text.slice(c + 9).trim());
    if (decoded === null) notes.push('the comment is not hex-encoded UTF-8; it was left out');
    else comment = decoded;
    text = text.slice(0, c);
  }
  const f = text.trim().split(/\s+/);
  if (f.length < 6 || f.length > 9) return `malformed tuple (${f.length} fields; ufw itself skips it)`;
  let direction = 'in';
  if (f.length === 7 || f.length === 9) {
    const d = f[f.length - 1]!;
    if (d.includes('_'))
      return `the rule applies only on interface ${d.slice(d.indexOf('_') + 1)}; Warden rules do not match interfaces`;
    direction = d;
  }
  if (direction !== 'in' && direction !== 'out') return `direction "${direction}" is not in or out`;
  const [actionText, protoText, dport, dst, sport, src] = f as [
    string,
    string,
    string,
    string,
    string,
    string,
  ];
  if (actionText.includes(':'))
    return "a routed (forwarded) rule; Warden filters this host's own connections only";
  const [base, logSuffix] = actionText.split('_') as [string, string | undefined];
  let action: Action;
  if (base === 'allow' || base === 'deny' || base === 'reject') action = base;
  else if (base === 'limit') {
    action = 'allow';
    notes.push('ufw "limit" became a plain allow: Warden has no rate limiting');
  } else return `action "${actionText}" is not allow, deny, reject or limit`;
  if (logSuffix !== undefined && logSuffix !== 'log' && logSuffix !== 'log-all')
    return `unknown log option "${logSuffix}"`;
  const incoming = direction === 'in';
  const local = incoming ? dst : src;
  const remoteText = incoming ? src : dst;
  if (!isAnyAddress(local, family))
    return `the rule names the local address ${local}; Warden rules cannot restrict the local address`;
  let remote: AddressSpec[];
  if (isAnyAddress(remoteText, family)) remote = [family === 4 ? ALL_IPV4 : ALL_IPV6];
  else {
    const spec = addressEntry(remoteText);
    if (spec === null) return `"${remoteText}" is not an address or network`;
    remote = [spec];
  }
  const localPortText = incoming ? dport : sport;
  const remotePortText = incoming ? sport : dport;
  const ports = (t: string): PortRange[] | null | undefined => (t === 'any' ? undefined : portList(t, ':'));
  const localPorts = ports(localPortText);
  const remotePorts = ports(remotePortText);
  if (localPorts === null || remotePorts === null)
    return `port "${localPorts === null ? localPortText : remotePortText}" is not a port list`;
  let protocol: Protocol;
  if (protoText === 'tcp' || protoText === 'udp') protocol = protoText;
  else if (protoText === 'any') protocol = localPorts || remotePorts ? 'tcp+udp' : 'any';
  else return `protocol "${protoText}" has no Warden counterpart (tcp, udp, icmp or any)`;
  if (f.length >= 8) {
    const apps = [f[6], f[7]].filter((a) => a !== '-').map((a) => a!.replace(/%20/g, ' '));
    if (protocol === 'tcp+udp') {
      // The profile's own protocols are in the iptables lines ufw wrote under the tuple.
      const seen = new Set(
        iptablesLines.map((l) => / -p (tcp|udp)\b/.exec(l)?.[1]).filter((p) => p !== undefined),
      );
      if (seen.size === 0) return `application profile ${apps.join(', ')}: its protocols are not in the file`;
      protocol = seen.size === 2 ? 'tcp+udp' : ([...seen][0] as Protocol);
    }
    notes.push(
      `application profile ${apps.join(', ')} was imported by its ports as they were when ufw wrote the rule`,
    );
  }
  const what = `${protocol === 'any' ? 'any' : protocol}${localPorts ? `/${localPortText}` : ''}${remotePorts ? ` port ${remotePortText}` : ''}`;
  const wanted =
    comment ??
    `ufw ${base} ${direction} ${what} ${incoming ? 'from' : 'to'} ${isWholeFamily(remote[0]!) ? 'any' : remoteText}`;
  const rule: Omit<Rule, 'name'> = {
    enabled: true,
    direction: incoming ? 'incoming' : 'outgoing',
    protocol,
    application: 'any',
    ...(localPorts ? { localPorts } : {}),
    ...(remotePorts ? { remotePorts } : {}),
    remote,
    action,
    log: logSuffix !== undefined,
    comment: `imported from ufw: ${raw.replace(/^### tuple ###\s*/, '').trim()}`.slice(0, 1000),
  };
  return { pending: { wanted, rule }, notes };
}

/** True when a tuple's address fields (4th and 6th) hold an IPv6 address. */
function hasIpv6Tuple(text: string): boolean {
  return text.split('\n').some((l) => {
    if (!l.startsWith('### tuple ###')) return false;
    const f = l.replace(/^### tuple ###\s*/, '').split(/\s+/);
    return (f[3] ?? '').includes(':') || (f[5] ?? '').includes(':');
  });
}

function isAnyAddress(text: string, family: 4 | 6): boolean {
  return text === 'any' || (family === 4 ? text === '0.0.0.0/0' : text === '::/0');
}

/** Same rule apart from its family-wide remote: the IPv4 and IPv6 halves of one ufw rule. */
function twins(a: Pending, b: Pending): boolean {
  const strip = (p: Pending) => {
    const { remote, comment, ...rest } = p.rule;
    return JSON.stringify({ rest, wanted: p.wanted });
  };
  const whole = (p: Pending) => p.rule.remote?.length === 1 && isWholeFamily(p.rule.remote[0]!);
  return whole(a) && whole(b) && strip(a) === strip(b);
}

/**
 * Interleaves the IPv4 and IPv6 lists keeping each family's order (rules of one
 * family never match the other's connections), merging twins into one rule
 * without the family restriction.
 */
function mergeFamilies(v4: Pending[], v6: Pending[]): Pending[] {
  const out: Pending[] = [];
  let i = 0;
  let j = 0;
  while (i < v4.length || j < v6.length) {
    const a = v4[i];
    const b = v6[j];
    if (a !== undefined && b !== undefined && twins(a, b)) {
      const { remote, ...rest } = a.rule;
      out.push({ wanted: a.wanted, rule: rest });
      i++;
      j++;
    } else if (
      a !== undefined &&
      (b === undefined ||
        v4.slice(i + 1).some((x) => twins(x, b)) ||
        !v6.slice(j + 1).some((y) => twins(a, y)))
    ) {
      out.push(a);
      i++;
    } else {
      out.push(b!);
      j++;
    }
  }
  return out;
}
