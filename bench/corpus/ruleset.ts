/**
 * A deterministic, realistic rule-set generator for benchmarks: per-application
 * rules with port lists, service rules, CIDR blocks (IPv4 and IPv6), host-name
 * rules, incoming service rules, and connections of which about half match a
 * rule. Seeded, so every run measures the same work.
 */
import { parseIp } from '../../src/ip/index.js';
import { applicationIdOf } from '../../src/policy/application-ids.js';
import type { ConnectionFacts, Policy } from '../../src/policy/index.js';
import { parsePolicyText } from '../../src/policy/index.js';

/** A small, fast seeded PRNG (mulberry32). */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const COMMON_PORTS = [
  22, 25, 53, 80, 110, 123, 143, 443, 465, 587, 853, 993, 995, 3306, 5432, 6379, 8080, 8443, 9000, 27017,
];

interface Shape {
  kind: 'app' | 'service' | 'cidr' | 'host' | 'incoming';
  app?: string;
  ports?: number[];
  range?: [number, number];
  v4?: string;
  v6?: string;
  host?: string;
}

/** Generates `count` rules as policy YAML (parsed through the real parser) plus the raw shapes used to aim connections. */
export function generateRuleset(count: number, seed = 42): { policy: Policy; shapes: Shape[] } {
  const rnd = prng(seed);
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rnd() * xs.length)]!;
  const appCount = Math.max(5, Math.floor(count / 8));
  const lines: string[] = ['version: 1', 'mode: enforce', 'rules:'];
  const shapes: Shape[] = [];
  const usedNames = new Set<string>();
  for (let i = 0; i < count; i++) {
    const roll = rnd();
    const action = pick(['allow', 'allow', 'deny', 'reject']);
    const name = `r${i}`;
    usedNames.add(name);
    if (roll < 0.4) {
      const app = `/usr/bin/app${Math.floor(rnd() * appCount)}`;
      const ports = [
        ...new Set(
          [pick(COMMON_PORTS), pick(COMMON_PORTS), pick(COMMON_PORTS)].slice(0, 1 + Math.floor(rnd() * 3)),
        ),
      ];
      lines.push(
        `  - { name: ${name}, direction: outgoing, protocol: tcp, application: ${app}, remotePorts: [${ports.join(', ')}], action: ${action} }`,
      );
      shapes.push({ kind: 'app', app, ports });
    } else if (roll < 0.55) {
      const base = 1024 + Math.floor(rnd() * 60000);
      const port = rnd() < 0.5 ? base : undefined;
      const range: [number, number] = [base, Math.min(65535, base + Math.floor(rnd() * 50))];
      const spec = port === undefined ? `"${range[0]}-${range[1]}"` : String(port);
      lines.push(
        `  - { name: ${name}, direction: outgoing, protocol: tcp+udp, remotePorts: ${spec}, action: ${action} }`,
      );
      shapes.push(port === undefined ? { kind: 'service', range } : { kind: 'service', ports: [port] });
    } else if (roll < 0.75) {
      if (rnd() < 0.8) {
        const prefix = pick([16, 20, 24, 24, 24, 28, 32]);
        const addr = (Math.floor(rnd() * 0xdfffffff) >>> (32 - prefix)) << (32 - prefix);
        const v4 = `${(addr >>> 24) & 255}.${(addr >>> 16) & 255}.${(addr >>> 8) & 255}.${addr & 255}`;
        lines.push(
          `  - { name: ${name}, direction: outgoing, remote: "${v4}/${prefix}", action: ${action} }`,
        );
        shapes.push({ kind: 'cidr', v4 });
      } else {
        const v6 = `2001:db8:${Math.floor(rnd() * 65535).toString(16)}:${Math.floor(rnd() * 65535).toString(16)}::`;
        lines.push(`  - { name: ${name}, direction: outgoing, remote: "${v6}/64", action: ${action} }`);
        shapes.push({ kind: 'cidr', v6 });
      }
    } else if (roll < 0.9) {
      const domain = `site${Math.floor(rnd() * count)}.example`;
      const host = rnd() < 0.3 ? `*.${domain}` : `www.${domain}`;
      lines.push(
        `  - { name: ${name}, direction: outgoing, protocol: tcp, remotePorts: 443, remote: "${host}", action: ${action} }`,
      );
      shapes.push({ kind: 'host', host: host.replace('*.', 'cdn.') });
    } else {
      const port = pick(COMMON_PORTS);
      const prefix = pick([8, 16, 24]);
      const addr = (Math.floor(rnd() * 0xdfffffff) >>> (32 - prefix)) << (32 - prefix);
      const v4 = `${(addr >>> 24) & 255}.${(addr >>> 16) & 255}.${(addr >>> 8) & 255}.${addr & 255}`;
      lines.push(
        `  - { name: ${name}, direction: incoming, protocol: tcp, localPorts: ${port}, remote: "${v4}/${prefix}", action: ${action} }`,
      );
      shapes.push({ kind: 'incoming', ports: [port], v4 });
    }
  }
  return { policy: parsePolicyText(lines.join('\n')), shapes };
}

/** Generates connections: about half aimed at a rule of the set, the rest random (decided by defaults or broad rules). */
export function generateConnections(shapes: readonly Shape[], count: number, seed = 7): ConnectionFacts[] {
  const rnd = prng(seed);
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rnd() * xs.length)]!;
  // An engine keeps one path string per executable it knows, numbered once (its attribution's
  // known executables and identity cache, application-ids.ts); so does this generator.
  const paths = new Map<string, { application: string; applicationId: number }>();
  const intern = (p: string): { application: string; applicationId: number } => {
    const known = paths.get(p);
    if (known !== undefined) return known;
    const app = { application: p, applicationId: applicationIdOf(p) };
    paths.set(p, app);
    return app;
  };
  const randomV4 = () =>
    parseIp(
      `${1 + Math.floor(rnd() * 222)}.${Math.floor(rnd() * 256)}.${Math.floor(rnd() * 256)}.${Math.floor(rnd() * 256)}`,
    )!;
  const out: ConnectionFacts[] = [];
  for (let i = 0; i < count; i++) {
    const base = {
      direction: 'outgoing' as 'incoming' | 'outgoing',
      protocol: (rnd() < 0.85 ? 'tcp' : 'udp') as ConnectionFacts['protocol'],
      ...(intern(`/usr/bin/app${Math.floor(rnd() * 1000)}`) as {
        application: string | null;
        applicationId: number;
      }),
      uid: 1000,
      user: 'alice',
      localAddress: parseIp('10.9.0.2'),
      localPort: 30000 + Math.floor(rnd() * 30000),
      remoteAddress: randomV4(),
      remotePort: pick(COMMON_PORTS),
      remoteHosts: [] as string[],
      now: 1_800_000_000_000,
    };
    if (rnd() < 0.5 && shapes.length > 0) {
      const s = pick(shapes);
      if (s.app) Object.assign(base, intern(s.app));
      if (s.ports) base.remotePort = pick(s.ports);
      if (s.range) base.remotePort = s.range[0] + Math.floor(rnd() * (s.range[1] - s.range[0] + 1));
      if (s.v4) {
        const net = parseIp(s.v4)!.value as number;
        base.remoteAddress = { version: 4, value: net + (s.kind === 'incoming' ? 0 : Math.floor(rnd() * 4)) };
      }
      if (s.v6) base.remoteAddress = parseIp(`${s.v6}${Math.floor(rnd() * 65535).toString(16)}`)!;
      if (s.host) base.remoteHosts = [s.host];
      if (s.kind === 'incoming') {
        base.direction = 'incoming';
        base.localPort = s.ports![0]!;
        base.remotePort = 40000 + Math.floor(rnd() * 20000);
      }
    }
    out.push(base);
  }
  return out;
}

/**
 * A traffic sequence over `distinct` connections where popularity follows
 * Zipf's law (exponent 1): a few destinations and applications make most new
 * connections, as measured on real hosts. Returns `length` indices.
 */
export function zipfSequence(distinct: number, length: number, seed = 11): Uint32Array {
  const rnd = prng(seed);
  const cdf = new Float64Array(distinct);
  let sum = 0;
  for (let k = 0; k < distinct; k++) {
    sum += 1 / (k + 1);
    cdf[k] = sum;
  }
  // Shuffle which connection gets which rank, so popularity is not tied to generation order.
  const rankToIndex = Uint32Array.from({ length: distinct }, (_, i) => i);
  for (let i = distinct - 1; i > 0; i--) {
    const j = Math.floor(rnd() * (i + 1));
    [rankToIndex[i], rankToIndex[j]] = [rankToIndex[j]!, rankToIndex[i]!];
  }
  const out = new Uint32Array(length);
  for (let n = 0; n < length; n++) {
    const x = rnd() * sum;
    let lo = 0;
    let hi = distinct - 1;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (cdf[mid]! < x) lo = mid + 1;
      else hi = mid;
    }
    out[n] = rankToIndex[lo]!;
  }
  return out;
}

/**
 * `n` simple user rules for the ruleset benchmarks: outgoing tcp to one address and port each,
 * alternating deny and allow in blocks of 1,000.
 */
export function simpleRules(n: number) {
  return Array.from({ length: n }, (_, i) => ({
    name: `r${i}`,
    direction: 'outgoing',
    protocol: 'tcp',
    remote: `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`,
    remotePorts: 1000 + (i % 1000),
    action: Math.floor(i / 1000) % 2 === 0 ? 'deny' : 'allow',
  }));
}
