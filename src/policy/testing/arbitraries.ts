/**
 * fast-check generators of policies and connections for property tests.
 * They draw from small pools of applications, ports, addresses and names so
 * that rules and connections collide often (a property test where defaults
 * decide everything proves little).
 */
import fc from 'fast-check';
import { parseIp } from '../../ip/index.js';
import { type ListContent, parseListText } from '../list-format.js';
import type { AddressSpec, ConnectionFacts, Policy, PortRange, Rule } from '../rule.js';

export const NOW = Date.parse('2026-11-23T12:00:00Z');

// ---- generators over small pools, so that rules and connections collide often ----

const APPS = ['/usr/bin/curl', '/usr/bin/firefox', '/usr/sbin/sshd'];
const PORTS = [22, 53, 80, 443, 8080, 8443];
const V4 = ['10.0.0.1', '10.0.0.2', '10.0.0.5', '192.168.1.9', '127.0.0.1', '8.8.8.8'];
const V6 = ['::1', '2001:db8::1', '2001:db8::7', 'fe80::1'];
const HOSTS = ['a.example.com', 'b.example.com', 'example.com', 'other.org'];
/** Two executable versions, so pinned rules both match and miss. */
const HASHES = ['a'.repeat(64), 'b'.repeat(64)];
/** Program context: parents and ancestors, and globs over command lines drawn to collide. */
const PARENTS = ['/usr/bin/bash', '/usr/bin/zsh', '/usr/sbin/sshd', '/usr/lib/systemd/systemd'];
const GLOBS = ['curl *', '*--upload*', 'curl -s https://?.example.com/*', '*[0-9]', 'ssh [!-]*'];
const COMMAND_LINES = [
  'curl -s https://a.example.com/x',
  'curl --upload f https://b.example.com',
  'ssh host1',
  'ssh -v host',
  'python3 -m http.server 8000',
];

export const ip = (text: string) => parseIp(text)!;

/** An outgoing TCP connection of curl (uid 1000) from 10.0.0.2:40000 to 10.0.0.1:443, with `changes`. */
export function outgoingTcp(changes: Partial<ConnectionFacts> = {}): ConnectionFacts {
  return {
    direction: 'outgoing',
    protocol: 'tcp',
    application: '/usr/bin/curl',
    uid: 1000,
    user: 'alice',
    localAddress: ip('10.0.0.2'),
    localPort: 40000,
    remoteAddress: ip('10.0.0.1'),
    remotePort: 443,
    remoteHosts: [],
    now: NOW,
    ...changes,
  };
}

/** The policy's lists (one of each format, one empty; `unloaded` is defined but has no content yet). */
const LIST_TEXTS = {
  ads: ['domains', 'example.com\n# a comment\nnas.lan\n'],
  hostsfile: ['hosts', '0.0.0.0 b.example.com other.org\n127.0.0.1 localhost\n'],
  nets: ['ips', '10.0.0.0/30\n8.8.8.8\n2001:db8::/124\n192.168.1.0-192.168.1.9\n'],
  empty: ['ips', '# nothing yet\n'],
  // Enough ranges for the range sets (range-set.ts) and a rule beside the index: some of the pools' addresses.
  many: [
    'ips',
    `${Array.from({ length: 40 }, (_, i) => `10.0.1.${i * 2}\n2001:db8::1:${i * 2}\n`).join('')}10.0.0.2\n192.168.1.8/29\n2001:db8::7\n`,
  ],
} as const;
const BOUNDS = { maxBytes: 1 << 20, maxEntries: 1000 };

/** The loaded content of the generated policies' lists: compilePolicy(p, { lists: LIST_CONTENTS }). */
export const LIST_CONTENTS: ReadonlyMap<string, ListContent> = new Map(
  Object.entries(LIST_TEXTS).map(([name, [format, text]]) => [
    name,
    parseListText(text, format, BOUNDS).content,
  ]),
);
/** Other contents of the same lists (a refresh): names and addresses moved in and out. */
export const OTHER_LIST_CONTENTS: ReadonlyMap<string, ListContent> = new Map(
  [...LIST_CONTENTS].map(([name, content]) => [
    name,
    name === 'ads'
      ? parseListText('other.org\nb.example.com\n', 'domains', BOUNDS).content
      : name === 'hostsfile'
        ? parseListText('0.0.0.0 a.example.com x.a.example.com\n', 'hosts', BOUNDS).content
        : content,
  ]),
);
const LIST_SOURCES: NonNullable<Policy['lists']> = Object.fromEntries(
  [...Object.entries(LIST_TEXTS), ['unloaded', ['hosts']] as const].map(([name, [format]]) => [
    name,
    { file: `/etc/warden/lists/${name}.txt`, format, ...BOUNDS },
  ]),
);
const single = (text: string): AddressSpec => {
  const a = ip(text);
  return a.version === 4
    ? { kind: 'ip', range: { version: 4, first: a.value, last: a.value } }
    : { kind: 'ip', range: { version: 6, first: a.value, last: a.value } };
};
const range4 = (a: string, b: string): AddressSpec => ({
  kind: 'ip',
  range: { version: 4, first: ip(a).value as number, last: ip(b).value as number },
});

const addressSpec: fc.Arbitrary<AddressSpec> = fc.oneof(
  fc.constantFrom(...V4, ...V6).map(single),
  fc.constant(range4('10.0.0.0', '10.0.0.3')),
  fc.constant(range4('10.0.0.0', '10.255.255.255')),
  fc.constant<AddressSpec>({
    kind: 'ip',
    range: { version: 6, first: ip('2001:db8::').value as bigint, last: ip('2001:db8::ff').value as bigint },
  }),
  fc.constant<AddressSpec>({ kind: 'localhost' }),
  fc.constantFrom(...HOSTS, '*.example.com').map((name): AddressSpec => ({ kind: 'host', name })),
  fc.constant<AddressSpec>({ kind: 'group', name: 'lan' }),
  fc
    .constantFrom(...Object.keys(LIST_TEXTS), 'unloaded')
    .map((name): AddressSpec => ({ kind: 'list', name })),
);

const portList: fc.Arbitrary<readonly PortRange[]> = fc.oneof<fc.Arbitrary<readonly PortRange[]>[]>(
  fc
    .uniqueArray(fc.constantFrom(...PORTS), { minLength: 1, maxLength: 3 })
    .map((ps) => ps.map((p) => ({ from: p, to: p }))),
  fc.constant([{ from: 8000, to: 8100 }]),
  fc.constant([{ from: 1, to: 1024 }]),
  fc.constant([
    { from: 80, to: 80 },
    { from: 440, to: 450 },
  ]),
);

/** `arb` about `percent` of the time, otherwise undefined (the field is left out). */
function sometimes<T>(arb: fc.Arbitrary<T>, percent: number): fc.Arbitrary<T | undefined> {
  return fc.oneof(
    { arbitrary: fc.constant(undefined), weight: 100 - percent },
    { arbitrary: arb, weight: percent },
  );
}

export const rule: fc.Arbitrary<Rule> = fc
  .record(
    {
      enabled: fc.constantFrom(true, true, true, true, false),
      direction: fc.constantFrom('incoming', 'outgoing', 'both'),
      protocol: fc.constantFrom('tcp', 'udp', 'tcp+udp', 'icmp', 'any'),
      application: fc.constantFrom('any', 'any', 'any', ...APPS),
      sha256: sometimes(fc.constantFrom(...HASHES), 30),
      user: sometimes(fc.constantFrom<number | string>(0, 1000, 'alice'), 15),
      localPorts: sometimes(portList, 20),
      remotePorts: sometimes(portList, 35),
      remote: sometimes(fc.array(addressSpec, { minLength: 1, maxLength: 3 }), 40),
      parent: sometimes(fc.constantFrom(...PARENTS), 12),
      ancestor: sometimes(fc.constantFrom(...PARENTS), 12),
      arguments: sometimes(fc.constantFrom(...GLOBS), 12),
      interface: sometimes(fc.subarray(['eth0', 'wg*', 'wg0', 'lo'], { minLength: 1 }), 15),
      action: fc.constantFrom('allow', 'deny', 'reject', 'ask'),
      log: fc.boolean(),
      conditional: fc.constantFrom(0, 0, 0, 0, 0, 0, 1, 2),
      expires: fc.constantFrom(
        undefined,
        undefined,
        undefined,
        '2026-11-23T11:00:00.000Z',
        '2026-11-23T13:00:00.000Z',
      ),
    },
    { requiredKeys: ['enabled', 'direction', 'protocol', 'application', 'action', 'log', 'conditional'] },
  )
  .map(({ conditional, ...r }): Rule => {
    const ports = r.protocol === 'tcp' || r.protocol === 'udp' || r.protocol === 'tcp+udp';
    const out: Record<string, unknown> = { name: 'r', ...r };
    if (!ports) {
      delete out.localPorts;
      delete out.remotePorts;
    }
    if (r.application === 'any') delete out.sha256; // a pin needs an application
    for (const k of Object.keys(out)) if (out[k] === undefined) delete out[k];
    if (conditional > 0) out.condition = { setting: 'syslog.enabled', equals: conditional === 1 };
    return out as unknown as Rule;
  });

export const policy: fc.Arbitrary<Policy> = fc
  .record({
    rules: fc.array(rule, { minLength: 3, maxLength: 40 }),
    mode: fc.constantFrom('enforce', 'learning', 'monitor'),
    incoming: fc.constantFrom('allow', 'deny', 'reject', 'ask'),
    outgoing: fc.constantFrom('allow', 'deny', 'reject', 'ask'),
  })
  .map(({ rules, mode, incoming, outgoing }) => ({
    mode,
    defaults: { incoming: { action: incoming, log: true }, outgoing: { action: outgoing, log: false } },
    addressGroups: { lan: [range4('192.168.0.0', '192.168.255.255'), { kind: 'host', name: '*.lan' }] },
    lists: LIST_SOURCES,
    rules: rules.map((r, i) => ({ ...r, name: `rule-${i}` })),
  }));

export const facts: fc.Arbitrary<ConnectionFacts> = fc
  .record({
    direction: fc.constantFrom('incoming', 'outgoing'),
    protocol: fc.constantFrom('tcp', 'tcp', 'udp', 'udp', 'icmp', 'other'),
    application: fc.constantFrom(null, ...APPS, '/usr/bin/python3'),
    applicationSha256: fc.constantFrom(undefined, null, ...HASHES),
    uid: fc.constantFrom(null, 0, 1000, 1001),
    user: fc.constantFrom(null, 'root', 'alice', 'bob'),
    localPort: fc.constantFrom(null, ...PORTS, 8050, 500, 40000),
    remoteAddress: fc.constantFrom(null, ...V4, ...V6, '192.168.4.4', '10.0.0.3', '2001:db8::80'),
    remotePort: fc.constantFrom(null, ...PORTS, 8050, 445, 60000),
    remoteHosts: fc.subarray([...HOSTS, 'x.a.example.com', 'nas.lan']),
    interface: fc.constantFrom(undefined, null, 'eth0', 'eth1', 'wg0', 'wg-office', 'lo'),
    now: fc.constant(NOW),
    // Undefined: not gathered (no rule of the engine's policy asked); null / []: unknown.
    parent: fc.constantFrom(undefined, null, ...PARENTS),
    ancestors: fc.constantFrom(undefined, [], ...PARENTS.map((p) => [p, '/usr/lib/systemd/systemd'])),
    arguments: fc.constantFrom(undefined, null, '', ...COMMAND_LINES),
  })
  .map((f) => {
    const isPorts = f.protocol === 'tcp' || f.protocol === 'udp';
    for (const k of ['parent', 'ancestors', 'arguments'] as const) if (f[k] === undefined) delete f[k];
    return {
      ...f,
      localPort: isPorts ? f.localPort : null,
      remotePort: isPorts ? f.remotePort : null,
      localAddress: ip('10.0.0.100'),
      remoteAddress: f.remoteAddress === null ? null : ip(f.remoteAddress),
    } as ConnectionFacts;
  });
