/**
 * firewalld service definitions: a built-in table of the common services
 * (as shipped in /usr/lib/firewalld/services) and a reader for service XML
 * files, which take precedence over the table when given.
 */
import { XMLParser, XMLValidator } from 'fast-xml-parser';
import type { PortRange } from '../rule.js';
import { portList } from './common.js';

/** What a service opens. `destination` set means the service is limited to a local address (not expressible). */
export interface ServiceDef {
  readonly ports: readonly { protocol: string; ports: PortRange[] }[];
  readonly protocols: readonly string[];
  readonly sourcePorts: readonly { protocol: string; ports: PortRange[] }[];
  readonly destination?: string;
  readonly includes: readonly string[];
  readonly helpers: readonly string[];
}

/** Compact table: `proto:ports` items; `dest=...` a local destination; `helper=...` a conntrack helper. */
const TABLE: Record<string, string> = {
  ssh: 'tcp:22',
  http: 'tcp:80',
  https: 'tcp:443',
  http3: 'udp:443',
  dns: 'tcp:53 udp:53',
  'dns-over-tls': 'tcp:853',
  dhcp: 'udp:67',
  dhcpv6: 'udp:547',
  'dhcpv6-client': 'udp:546 dest=ipv6:fe80::/64',
  mdns: 'udp:5353 dest=ipv4:224.0.0.251,ipv6:ff02::fb',
  llmnr: 'tcp:5355 udp:5355 dest=ipv4:224.0.0.252,ipv6:ff02::1:3',
  'samba-client': 'udp:137 udp:138 helper=netbios-ns',
  samba: 'udp:137 udp:138 tcp:139 tcp:445 helper=netbios-ns',
  cockpit: 'tcp:9090',
  ftp: 'tcp:21 helper=ftp',
  tftp: 'udp:69 helper=tftp',
  smtp: 'tcp:25',
  smtps: 'tcp:465',
  'smtp-submission': 'tcp:587',
  imap: 'tcp:143',
  imaps: 'tcp:993',
  pop3: 'tcp:110',
  pop3s: 'tcp:995',
  ntp: 'udp:123',
  nfs: 'tcp:2049',
  mysql: 'tcp:3306',
  postgresql: 'tcp:5432',
  redis: 'tcp:6379',
  mongodb: 'tcp:27017',
  rdp: 'tcp:3389',
  'vnc-server': 'tcp:5900-5903',
  openvpn: 'udp:1194',
  wireguard: 'udp:51820',
  ipp: 'tcp:631 udp:631',
  'ipp-client': 'udp:631',
  kdeconnect: 'tcp:1714-1764 udp:1714-1764',
  syncthing: 'tcp:22000 udp:22000 udp:21027',
  'syncthing-gui': 'tcp:8384',
  ldap: 'tcp:389',
  ldaps: 'tcp:636',
  kerberos: 'tcp:88 udp:88',
  telnet: 'tcp:23',
  snmp: 'udp:161',
  squid: 'tcp:3128',
  git: 'tcp:9418',
  rsyncd: 'tcp:873 udp:873',
  mosh: 'udp:60000-61000',
  'kube-apiserver': 'tcp:6443',
  'docker-registry': 'tcp:5000',
  prometheus: 'tcp:9090',
  'zabbix-agent': 'tcp:10050',
  elasticsearch: 'tcp:9200 tcp:9300',
  'http-alt': 'tcp:8080',
  jenkins: 'tcp:8080',
  grafana: 'tcp:3000',
  xmpp_client: 'tcp:5222',
  irc: 'tcp:6667',
  ircs: 'tcp:6697',
  svn: 'tcp:3690',
};

function fromTable(spec: string): ServiceDef {
  const byProto = new Map<string, PortRange[]>();
  let destination: string | undefined;
  const helpers: string[] = [];
  for (const item of spec.split(' ')) {
    if (item.startsWith('dest=')) destination = item.slice(5);
    else if (item.startsWith('helper=')) helpers.push(item.slice(7));
    else {
      const [proto, ports] = item.split(':') as [string, string];
      byProto.set(proto, [...(byProto.get(proto) ?? []), ...(portList(ports, '-') ?? [])]);
    }
  }
  return {
    ports: [...byProto].map(([protocol, ports]) => ({ protocol, ports })),
    protocols: [],
    sourcePorts: [],
    ...(destination === undefined ? {} : { destination }),
    includes: [],
    helpers,
  };
}

/** The built-in definition of a service, when the table has it. */
export function builtinService(name: string): ServiceDef | undefined {
  const spec = TABLE[name];
  return spec === undefined ? undefined : fromTable(spec);
}

export const xmlParser = new XMLParser({
  ignoreAttributes: false,
  attributeNamePrefix: '',
  allowBooleanAttributes: true,
  parseAttributeValue: false,
  parseTagValue: false,
  processEntities: true,
  isArray: (name, _path, _leaf, isAttribute) => !isAttribute && name !== 'zone',
});

/** Checks the XML is well-formed; returns the parse error with its line, or null. */
export function xmlError(text: string): { message: string; line: number } | null {
  const v = XMLValidator.validate(text);
  return v === true ? null : { message: v.err.msg, line: v.err.line };
}

type Node = Record<string, unknown>;

/** Elements of one kind under a node, as attribute maps. */
export function children(node: unknown, tag: string): Node[] {
  if (typeof node !== 'object' || node === null) return [];
  const v = (node as Node)[tag];
  return Array.isArray(v) ? v.map((x) => (typeof x === 'object' && x !== null ? (x as Node) : {})) : [];
}

/** Reads a service XML file; a string says what is wrong. */
export function parseServiceXml(text: string): ServiceDef | string {
  const err = xmlError(text);
  if (err !== null) return `line ${err.line}: ${err.message}`;
  let doc: unknown;
  try {
    doc = xmlParser.parse(text);
  } catch (e) {
    return String((e as Error).message);
  }
  const service = children(doc, 'service')[0];
  if (service === undefined) return 'no <service> element';
  const ports: { protocol: string; ports: PortRange[] }[] = [];
  const sourcePorts: { protocol: string; ports: PortRange[] }[] = [];
  for (const [tag, into] of [
    ['port', ports],
    ['source-port', sourcePorts],
  ] as const) {
    for (const p of children(service, tag)) {
      const list = portList(String(p.port ?? ''), '-');
      if (list === null) return `<${tag} port="${String(p.port)}"> is not a port or range`;
      into.push({ protocol: String(p.protocol ?? ''), ports: list });
    }
  }
  const dest = children(service, 'destination')[0];
  const destination =
    dest === undefined
      ? undefined
      : Object.entries(dest)
          .map(([k, v]) => `${k}:${String(v)}`)
          .join(',');
  return {
    ports,
    protocols: children(service, 'protocol').map((p) => String(p.value ?? '')),
    sourcePorts,
    ...(destination === undefined ? {} : { destination }),
    includes: children(service, 'include').map((p) => String(p.service ?? '')),
    helpers: [...children(service, 'helper'), ...children(service, 'module')].map((p) =>
      String(p.name ?? ''),
    ),
  };
}
