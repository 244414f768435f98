/**
 * The hidden internal rules (SPEC section 2): a pure function of the settings
 * and the host's environment. They keep Warden's own parts able to talk and
 * are evaluated before every user rule. One rule per row of the spec's table
 * (DNS has one per component); a row whose feature is switched off yields no
 * rule, so nothing is allowed that no feature needs.
 */
import { parseHostName, parseIp } from '../ip/index.js';
import { type ProxyEnvironment, type ProxyRoute, resolveProxy } from '../settings/proxy.js';
import type { Settings } from '../settings/schema.js';
import type { AddressSpec, InternalRule, Policy, PortRange, Protocol } from './rule.js';

/** Facts about this host the internal rules depend on, gathered by the caller (the engine or the CLI). */
export interface HostEnvironment extends ProxyEnvironment {
  /**
   * The application paths of the engine (wardend), the console (warden) and the crash assistant
   * (warden-assist): the real paths of their installed scripts. The engine gives a connection one
   * of these only when its process is that part, bound to what a program cannot choose (its pid,
   * or a verified console: src/engine/own-parts.ts, docs/attribution.md), never by the script its
   * command line names.
   */
  readonly executables: { readonly engine: string; readonly console: string; readonly assistant: string };
  /** The port the engine serves when `wardend --port` overrides settings.applicationPort. */
  readonly servedPort?: number;
}

const ports = (...list: number[]): PortRange[] => list.map((p) => ({ from: p, to: p }));

function addressOf(host: string): AddressSpec {
  const ip = parseIp(host);
  if (ip !== null) {
    return {
      kind: 'ip',
      range:
        ip.version === 4
          ? { version: 4, first: ip.value, last: ip.value }
          : { version: 6, first: ip.value, last: ip.value },
    };
  }
  const name = parseHostName(host);
  return { kind: 'host', name: name.ok ? name.value : host.toLowerCase() };
}

function urlTarget(url: string): { host: string; port: number } {
  const u = new URL(url);
  return {
    host: u.hostname.replace(/^\[|\]$/g, ''),
    port: u.port === '' ? (u.protocol === 'https:' ? 443 : 80) : Number(u.port),
  };
}

interface Draft {
  id: string;
  purpose: string;
  because: string;
  application: string;
  direction: InternalRule['direction'];
  protocol: Protocol;
  localPorts?: PortRange[];
  remotePorts?: PortRange[];
  remote?: AddressSpec[];
}

function make(d: Draft): InternalRule {
  const rule: InternalRule = {
    id: d.id,
    purpose: d.purpose,
    because: d.because,
    name: `internal: ${d.purpose}${d.id.endsWith('.console') ? ' (console)' : d.id.endsWith('.engine') ? ' (engine)' : ''}`,
    enabled: true,
    direction: d.direction,
    protocol: d.protocol,
    application: d.application,
    action: 'allow',
    log: false,
    ...(d.localPorts ? { localPorts: d.localPorts } : {}),
    ...(d.remotePorts ? { remotePorts: d.remotePorts } : {}),
    ...(d.remote ? { remote: d.remote } : {}),
  };
  return rule;
}

/** Through a proxy: only the proxy's host and port; direct: what `direct` says. */
function viaRoute(
  route: ProxyRoute,
  direct: { remotePorts?: PortRange[]; remote?: AddressSpec[] },
  what: string,
) {
  if (route.kind === 'proxy') {
    return {
      remotePorts: ports(route.port),
      remote: [addressOf(route.host)],
      because: `${what} through proxy ${route.host}:${route.port} (${route.because})`,
    };
  }
  return { ...direct, because: `${what} directly (${route.because})` };
}

/**
 * Generates the internal rules, in evaluation order, for these settings on this host, and for what the
 * policy makes the engine fetch (its URL lists and rule subscriptions; undefined: no policy at hand).
 */
export function internalRules(
  settings: Settings,
  host: HostEnvironment,
  fetched: Pick<Policy, 'lists' | 'include'> | undefined,
): InternalRule[] {
  const { engine, console: consoleApp, assistant } = host.executables;
  const appPort = settings.applicationPort;
  // The engine's own rules follow the port it serves; the console may reach engines on either.
  const served = host.servedPort ?? appPort;
  const consolePorts = served === appPort ? ports(appPort) : ports(appPort, served);
  const remoteAdmin = settings.remoteAdministration.enabled;
  const adminPeers: AddressSpec[] | undefined = remoteAdmin ? undefined : [{ kind: 'localhost' }];
  const adminBecause = remoteAdmin
    ? 'remote administration enabled: any host'
    : 'remote administration disabled: localhost only';
  const rules: InternalRule[] = [];

  rules.push(
    make({
      id: 'internal.remote-configuration',
      purpose: 'remote configuration',
      because: adminBecause,
      application: engine,
      direction: 'incoming',
      protocol: 'tcp+udp',
      localPorts: ports(served),
      ...(adminPeers ? { remote: adminPeers } : {}),
    }),
    make({
      id: 'internal.console-to-engine',
      purpose: 'console to engine',
      because: 'always: the console reaches engines on the application port',
      application: consoleApp,
      direction: 'outgoing',
      protocol: 'tcp+udp',
      remotePorts: consolePorts,
    }),
    make({
      id: 'internal.engine-to-console',
      purpose: 'engine to console',
      because: `${adminBecause}; from the application port (log items over UDP)`,
      application: engine,
      direction: 'outgoing',
      protocol: 'tcp+udp',
      localPorts: ports(served),
      ...(adminPeers ? { remote: adminPeers } : {}),
    }),
  );

  const resolvers = settings.dns.resolvers.map(addressOf);
  const dnsBecause =
    resolvers.length === 0
      ? 'always: any DNS server'
      : `always: the configured resolvers ${settings.dns.resolvers.join(', ')}`;
  for (const [who, app] of [
    ['engine', engine],
    ['console', consoleApp],
  ] as const) {
    rules.push(
      make({
        id: `internal.dns.${who}`,
        purpose: 'DNS queries',
        because: dnsBecause,
        application: app,
        direction: 'both',
        protocol: 'tcp+udp',
        remotePorts: ports(53),
        ...(resolvers.length > 0 ? { remote: resolvers } : {}),
      }),
    );
  }

  if (settings.crashReports.sendingAllowed) {
    const target = urlTarget(settings.crashReports.server);
    const route = viaRoute(
      resolveProxy(settings.proxy, host, settings.crashReports.server),
      { remotePorts: ports(target.port), remote: [addressOf(target.host)] },
      `sending allowed: to ${target.host}:${target.port}`,
    );
    rules.push(
      make({
        id: 'internal.crash-reports',
        purpose: 'crash reports',
        application: assistant,
        direction: 'outgoing',
        protocol: 'tcp',
        ...route,
      }),
    );
  }

  rules.push(
    make({
      id: 'internal.blocked-popups',
      purpose: 'blocked pop-up reports',
      because: 'always: local components report blocked pop-ups to the engine',
      application: 'any',
      direction: 'outgoing',
      protocol: 'tcp',
      remotePorts: ports(settings.blockedPopups.port),
      remote: [{ kind: 'localhost' }],
    }),
  );

  if (settings.updates.enabled) {
    const route = viaRoute(
      resolveProxy(settings.proxy, host, settings.updates.feedUrl),
      {},
      'update checks: any download server',
    );
    rules.push(
      make({
        id: 'internal.update-checker',
        purpose: 'update checker',
        application: engine,
        direction: 'outgoing',
        protocol: 'tcp',
        ...route,
      }),
    );
  }

  if (settings.registration.enabled) {
    const target = urlTarget(settings.registration.server);
    const route = viaRoute(
      resolveProxy(settings.proxy, host, settings.registration.server),
      { remotePorts: ports(target.port), remote: [addressOf(target.host)] },
      `registration: to ${target.host}:${target.port}`,
    );
    rules.push(
      make({
        id: 'internal.registration',
        purpose: 'product registration',
        application: engine,
        direction: 'outgoing',
        protocol: 'tcp',
        ...route,
      }),
    );
  }

  if (settings.syslog.enabled) {
    const { host: sh, port, transport } = settings.syslog;
    rules.push(
      make({
        id: 'internal.syslog',
        purpose: 'syslog',
        because: `syslog enabled: ${transport.toUpperCase()} to ${sh}:${port}`,
        application: engine,
        direction: 'outgoing',
        protocol: transport === 'udp' ? 'udp' : 'tcp',
        remotePorts: ports(port),
        remote: [addressOf(sh)],
      }),
    );
  }
  // The engine fetches the policy's URL lists and rule subscriptions (docs/policy.md, "Lists",
  // "Included rules"): to each one's server, or the proxy.
  const fetches = [
    ...Object.entries(fetched?.lists ?? {}).map(([name, l]) => ({ kind: 'list', name, url: l.url })),
    ...(fetched?.include ?? []).map((i) => ({ kind: 'include', name: i.name, url: i.url })),
  ];
  for (const { kind, name, url } of fetches) {
    if (url === undefined) continue;
    const target = urlTarget(url);
    const what = kind === 'list' ? `list ${name}` : `rule subscription ${name}`;
    const route = viaRoute(
      resolveProxy(settings.proxy, host, url),
      { remotePorts: ports(target.port), remote: [addressOf(target.host)] },
      `${what}: to ${target.host}:${target.port}`,
    );
    rules.push(
      make({
        id: `internal.${kind}.${name}`,
        purpose: what,
        application: engine,
        direction: 'outgoing',
        protocol: 'tcp',
        ...route,
      }),
    );
  }
  return rules;
}
