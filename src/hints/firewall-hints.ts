/**
 * Firewall configuration hints (SPEC section 3, last paragraph): which ports to
 * open in a network firewall so the console and an engine can talk, for the
 * two situations of the reference (engine behind a firewall; console behind a
 * firewall), as plain-language explanations and ready rules for nftables,
 * iptables/ip6tables, ufw and firewalld.
 *
 * Pure: no node: imports, no I/O, nothing from other project folders. The
 * caller validates its input for the user; bad input here is a RangeError.
 */

/** The two situations of the reference. */
export type SituationId = 'engine-behind-firewall' | 'console-behind-firewall';

/** The firewall tools rules are written for. */
export type RuleFormat = 'nftables' | 'iptables' | 'ufw' | 'firewalld';

/** Every rule format, in the order they are shown. */
export const RULE_FORMATS: readonly RuleFormat[] = ['nftables', 'iptables', 'ufw', 'firewalld'];

/** Ready-to-paste rules, one text per tool. */
export type FirewallRules = { readonly [F in RuleFormat]: string };

/** One situation: what to open and why, and the rules that do it. */
export interface FirewallSituation {
  readonly id: SituationId;
  readonly title: string;
  /** Plain language; paragraphs are separated by an empty line. */
  readonly explanation: string;
  readonly rules: FirewallRules;
}

export interface FirewallHints {
  readonly applicationPort: number;
  readonly situations: readonly FirewallSituation[];
}

export interface FirewallHintsOptions {
  /** The engine's application port (TCP for configuration, UDP for live log items). */
  readonly applicationPort: number;
  /** Restrict the rules to this engine address (IPv4 or IPv6); any address when absent. */
  readonly engineAddress?: string;
  /** Restrict the rules to this console address (IPv4 or IPv6); any address when absent. */
  readonly consoleAddress?: string;
}

export type AddressFamily = 'ipv4' | 'ipv6';

/** What the UDP log channel needs from a firewall; part of the console-behind-a-firewall explanation. */
export const LOG_CHANNEL_NOTE =
  'UDP from the engine to the console is the log channel. The console first sends a UDP registration ' +
  'to the application port, so a stateful firewall lets the log datagrams back in as replies ' +
  '(ct state established,related) and nothing has to be opened for incoming traffic. If NAT drops the ' +
  'mapping after some idle time, the console re-registers periodically, which opens it again. If UDP is ' +
  'blocked entirely, log items fall back to the TCP channel and the console says so: live log items ' +
  'still arrive, only without the separate UDP channel.';

const IPV4 =
  /^(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])(\.(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])){3}$/;
const HEX_GROUP = /^[0-9a-fA-F]{1,4}$/;

/** The family of an IPv4 or IPv6 address (no prefix, no zone), or null when it is neither. */
export function addressFamily(text: string): AddressFamily | null {
  if (IPV4.test(text)) return 'ipv4';
  if (!text.includes(':') || text.length > 45) return null;
  let body = text;
  let groups = 0;
  const lastColon = text.lastIndexOf(':');
  if (text.includes('.', lastColon)) {
    // An embedded IPv4 part at the end counts as two groups.
    if (!IPV4.test(text.slice(lastColon + 1))) return null;
    body = `${text.slice(0, lastColon + 1)}0:0`;
  }
  const halves = body.split('::');
  if (halves.length > 2) return null;
  for (const half of halves) {
    if (half === '') continue;
    const parts = half.split(':');
    if (!parts.every((p) => HEX_GROUP.test(p))) return null;
    groups += parts.length;
  }
  return (halves.length === 2 ? groups <= 7 : groups === 8) ? 'ipv6' : null;
}

interface Address {
  readonly text: string;
  readonly family: AddressFamily;
}

function address(text: string | undefined, what: string): Address | undefined {
  if (text === undefined) return undefined;
  const family = addressFamily(text);
  if (family === null) throw new RangeError(`${what} address "${text}" is not an IPv4 or IPv6 address`);
  return { text: family === 'ipv6' ? text.toLowerCase() : text, family };
}

/** The hints for both situations; RangeError for a bad port or address. */
export function firewallHints(options: FirewallHintsOptions): FirewallHints {
  const port = options.applicationPort;
  if (!Number.isInteger(port) || port < 1 || port > 65535) {
    throw new RangeError(`application port ${String(port)} is not a port number (1-65535)`);
  }
  const engine = address(options.engineAddress, 'engine');
  const consoleAt = address(options.consoleAddress, 'console');
  if (engine && consoleAt && engine.family !== consoleAt.family) {
    throw new RangeError(
      `the engine address ${engine.text} and the console address ${consoleAt.text} are of different IP versions`,
    );
  }
  const p: Peers = { port, engine, console: consoleAt };
  return {
    applicationPort: port,
    situations: [
      {
        id: 'engine-behind-firewall',
        title: 'Engine behind a firewall, console on the Internet',
        explanation: engineBehindExplanation(p),
        rules: {
          nftables: engineBehindNftables(p),
          iptables: engineBehindIptables(p),
          ufw: engineBehindUfw(p),
          firewalld: engineBehindFirewalld(p),
        },
      },
      {
        id: 'console-behind-firewall',
        title: 'Console behind a firewall, engine on the Internet',
        explanation: consoleBehindExplanation(p),
        rules: {
          nftables: consoleBehindNftables(p),
          iptables: consoleBehindIptables(p),
          ufw: consoleBehindUfw(p),
          firewalld: consoleBehindFirewalld(p),
        },
      },
    ],
  };
}

interface Peers {
  readonly port: number;
  readonly engine: Address | undefined;
  readonly console: Address | undefined;
}

const PROTOCOLS = ['tcp', 'udp'] as const;

const family = (p: Peers): AddressFamily | undefined => p.engine?.family ?? p.console?.family;

/** "from 203.0.113.9" / "from any address" for the explanations. */
function fromText(p: Peers): string {
  return p.console ? `from the console at ${p.console.text}` : 'from any address';
}

function toText(p: Peers): string {
  return p.engine ? `the engine at ${p.engine.text}` : 'the engine';
}

function engineBehindExplanation(p: Peers): string {
  return [
    `The engine listens on application port ${p.port}: the console opens a TLS connection over TCP to it ` +
      'for configuration, then sends a UDP registration to the same port to receive live log items. ' +
      `Open (on a NAT router: map or forward) port ${p.port} for incoming TCP and UDP to ${toText(p)}, ` +
      `${fromText(p)}.`,
    "Put the rules on the engine's own host, or on the router in front of it when the engine is in a local " +
      'network. The engine answers over the same connections: its TLS replies and its UDP log items go back to ' +
      'the address and port the registration came from, so a stateful firewall lets them out as replies ' +
      '(ct state established,related).',
    'UDP from the engine to the console is the log channel; if the console cannot receive it, log items ' +
      'fall back to the TCP channel.',
  ].join('\n\n');
}

function consoleBehindExplanation(p: Peers): string {
  return [
    `Allow outgoing TCP and UDP to application port ${p.port} on ${toText(p)}` +
      `${p.console ? ` from the console at ${p.console.text}` : ''}. The console connects out over TCP ` +
      '(TLS) for configuration and sends its UDP registration out to the same port; no port has to be ' +
      'opened for incoming connections. Let replies in (ct state established,related): they carry the TLS ' +
      "answers and the engine's UDP log items.",
    "Put the rules on the console's own host when it filters outgoing traffic, or on the router in front " +
      'of it when the console is in a local network.',
    LOG_CHANNEL_NOTE,
  ].join('\n\n');
}

// --- nftables -------------------------------------------------------------------------------------

function nftAddr(a: Address | undefined, dir: 'saddr' | 'daddr'): string {
  if (!a) return '';
  return `${a.family === 'ipv6' ? 'ip6' : 'ip'} ${dir} ${a.text} `;
}

function nftAccept(p: Peers, why: Record<(typeof PROTOCOLS)[number], string>): string[] {
  return PROTOCOLS.map(
    (proto) =>
      `${nftAddr(p.console, 'saddr')}${nftAddr(p.engine, 'daddr')}${proto} dport ${p.port} accept comment "${why[proto]}"`,
  );
}

function nftChain(name: 'input' | 'output' | 'forward', lines: readonly string[]): string[] {
  return [
    `\tchain ${name} {`,
    `\t\ttype filter hook ${name} priority filter;`,
    ...lines.map((l) => `\t\t${l}`),
    '\t}',
  ];
}

const ESTABLISHED = 'ct state established,related accept';

function nftHeader(title: string, file: string): string[] {
  return [
    '#!/usr/sbin/nft -f',
    `# Warden, ${title}.`,
    `# Load with: nft -f ${file}   (adds to table inet filter; existing rules stay.`,
    '# Rules are appended: if a chain already ends with a drop or reject rule, insert these before it.)',
  ];
}

function engineBehindNftables(p: Peers): string {
  const why = {
    tcp: 'Warden: console to engine, configuration over TLS',
    udp: 'Warden: console registers for live log items',
  };
  const lines = [
    ...nftHeader('engine behind a firewall', 'warden-engine.nft'),
    'table inet filter {',
    '\t# On the engine host: accept the console.',
    ...nftChain('input', [ESTABLISHED, ...nftAccept(p, why)]),
    '\t# The engine answers: TLS replies and the UDP log items sent back to where the registration came from.',
    ...nftChain('output', [ESTABLISHED]),
    '\t# On a router in front of an engine in the local network.',
    ...nftChain('forward', [ESTABLISHED, ...nftAccept(p, why)]),
    '}',
  ];
  if (p.engine?.family === 'ipv4') {
    lines.push(
      '# On a NAT router, also map the port to the engine (IPv4):',
      `# table ip nat { chain prerouting { type nat hook prerouting priority dstnat; meta l4proto { tcp, udp } th dport ${p.port} dnat to ${p.engine.text}; }; }`,
    );
  }
  return `${lines.join('\n')}\n`;
}

function consoleBehindNftables(p: Peers): string {
  const why = {
    tcp: 'Warden: console to engine, configuration over TLS',
    udp: "Warden: log registration; the engine's log items come back as replies",
  };
  const lines = [
    ...nftHeader('console behind a firewall', 'warden-console.nft'),
    'table inet filter {',
    '\t# On the console host: let the console out.',
    ...nftChain('output', [ESTABLISHED, ...nftAccept(p, why)]),
    "\t# Replies come back in: TLS answers and the engine's UDP log items (replies to the registration).",
    ...nftChain('input', [ESTABLISHED]),
    '\t# On a router in front of a console in the local network.',
    ...nftChain('forward', [ESTABLISHED, ...nftAccept(p, why)]),
    '}',
  ];
  return `${lines.join('\n')}\n`;
}

// --- iptables / ip6tables -------------------------------------------------------------------------

function iptablesCommands(p: Peers): readonly string[] {
  const f = family(p);
  if (f === 'ipv4') return ['iptables'];
  if (f === 'ipv6') return ['ip6tables'];
  return ['iptables', 'ip6tables'];
}

function iptAccept(cmd: string, chain: string, p: Peers): string[] {
  const src = p.console ? ` -s ${p.console.text}` : '';
  const dst = p.engine ? ` -d ${p.engine.text}` : '';
  return PROTOCOLS.map((proto) => `${cmd} -I ${chain} -p ${proto}${src}${dst} --dport ${p.port} -j ACCEPT`);
}

const iptEstablished = (cmd: string, chain: string): string =>
  `${cmd} -I ${chain} -m conntrack --ctstate ESTABLISHED,RELATED -j ACCEPT`;

const IPT_PERSIST =
  '# Keep them over reboots (Debian): apt install iptables-persistent && netfilter-persistent save';

function engineBehindIptables(p: Peers): string {
  const lines: string[] = [];
  for (const cmd of iptablesCommands(p)) {
    lines.push(
      `# ${cmd === 'iptables' ? 'IPv4' : 'IPv6'}, on the engine host:`,
      iptEstablished(cmd, 'INPUT'),
      ...iptAccept(cmd, 'INPUT', p),
      iptEstablished(cmd, 'OUTPUT'),
      `# ${cmd === 'iptables' ? 'IPv4' : 'IPv6'}, on a router in front of an engine in the local network:`,
      iptEstablished(cmd, 'FORWARD'),
      ...iptAccept(cmd, 'FORWARD', p),
    );
    if (cmd === 'iptables' && p.engine?.family === 'ipv4') {
      lines.push(
        '# ... and, on a NAT router, map the port to the engine:',
        ...PROTOCOLS.map(
          (proto) =>
            `iptables -t nat -A PREROUTING -p ${proto} --dport ${p.port} -j DNAT --to-destination ${p.engine?.text}`,
        ),
      );
    }
  }
  lines.push(IPT_PERSIST);
  return `${lines.join('\n')}\n`;
}

function consoleBehindIptables(p: Peers): string {
  const lines: string[] = [];
  for (const cmd of iptablesCommands(p)) {
    lines.push(
      `# ${cmd === 'iptables' ? 'IPv4' : 'IPv6'}, on the console host:`,
      iptEstablished(cmd, 'OUTPUT'),
      ...iptAccept(cmd, 'OUTPUT', p),
      iptEstablished(cmd, 'INPUT'),
      `# ${cmd === 'iptables' ? 'IPv4' : 'IPv6'}, on a router in front of a console in the local network:`,
      iptEstablished(cmd, 'FORWARD'),
      ...iptAccept(cmd, 'FORWARD', p),
    );
  }
  lines.push(IPT_PERSIST);
  return `${lines.join('\n')}\n`;
}

// --- ufw ------------------------------------------------------------------------------------------

function ufwRules(verb: string, p: Peers, comment: string): string[] {
  const from = p.console?.text ?? 'any';
  const to = p.engine?.text ?? 'any';
  return PROTOCOLS.map(
    (proto) => `ufw ${verb} proto ${proto} from ${from} to ${to} port ${p.port} comment '${comment}'`,
  );
}

function engineBehindUfw(p: Peers): string {
  return `${[
    '# On the engine host (ufw lets the replies, including the UDP log items, out by itself):',
    ...ufwRules('allow', p, 'Warden console to engine'),
    '# On a router running ufw in front of an engine in the local network',
    '# (map the port to the engine in /etc/ufw/before.rules, *nat table):',
    ...ufwRules('route allow', p, 'Warden console to engine'),
  ].join('\n')}\n`;
}

function consoleBehindUfw(p: Peers): string {
  return `${[
    '# Needed only when outgoing traffic is denied (ufw default deny outgoing);',
    "# ufw lets the replies, including the engine's UDP log items, in by itself.",
    '# On the console host:',
    ...ufwRules('allow out', p, 'Warden console to engine'),
    '# On a router running ufw in front of a console in the local network:',
    ...ufwRules('route allow', p, 'Warden console to engine'),
  ].join('\n')}\n`;
}

// --- firewalld ------------------------------------------------------------------------------------

function richRules(p: Peers): string[] {
  const fam = family(p) ?? 'ipv4';
  const src = p.console ? ` source address="${p.console.text}"` : '';
  const dst = p.engine ? ` destination address="${p.engine.text}"` : '';
  return PROTOCOLS.map(
    (proto) => `'rule family="${fam}"${src}${dst} port port="${p.port}" protocol="${proto}" accept'`,
  );
}

function firewalldAdds(p: Peers, target: string): string[] {
  if (!p.engine && !p.console) {
    return PROTOCOLS.map((proto) => `firewall-cmd --permanent${target} --add-port=${p.port}/${proto}`);
  }
  return richRules(p).map((rule) => `firewall-cmd --permanent${target} --add-rich-rule=${rule}`);
}

function engineBehindFirewalld(p: Peers): string {
  const lines = [
    '# On the engine host (the default zone; add --zone=NAME for another); replies are let out by themselves:',
    ...firewalldAdds(p, ''),
    'firewall-cmd --reload',
  ];
  if (p.engine?.family === 'ipv4') {
    lines.push(
      '# On a firewalld router in front of an engine in the local network, map the port to it',
      '# (the zone facing the Internet needs --add-masquerade for forwarding to another host):',
      ...PROTOCOLS.map(
        (proto) =>
          `# firewall-cmd --permanent --add-forward-port=port=${p.port}:proto=${proto}:toaddr=${p.engine?.text}`,
      ),
    );
  }
  return `${lines.join('\n')}\n`;
}

function consoleBehindFirewalld(p: Peers): string {
  const policy = ' --policy warden-console-out';
  return `${[
    '# firewalld lets outgoing connections and their replies (TLS answers, UDP log items) through by default:',
    '# nothing to do unless outgoing traffic is filtered. When it is (firewalld 0.9 or newer, policies):',
    'firewall-cmd --permanent --new-policy warden-console-out',
    `firewall-cmd --permanent${policy} --add-ingress-zone HOST`,
    `firewall-cmd --permanent${policy} --add-egress-zone ANY`,
    ...firewalldAdds(p, policy),
    'firewall-cmd --reload',
  ].join('\n')}\n`;
}
