/**
 * Proxy resolution from the operating system's configuration, as the
 * reference's update checker and registration rows ask: https_proxy,
 * http_proxy, no_proxy (and their upper-case forms) from the process
 * environment first, then /etc/environment. Pure: the caller passes both in.
 */
import { parseCidr, parseIp, rangeContains } from '../ip/index.js';
import type { Settings } from './schema.js';
import { redactText } from './secrets.js';

/** How a request to a URL leaves this host. */
export type ProxyRoute =
  | { readonly kind: 'direct'; readonly because: string }
  | {
      readonly kind: 'proxy';
      readonly host: string;
      readonly port: number;
      readonly url: string;
      readonly because: string;
      /** "user:password" from the proxy URL, for Proxy-Authorization; never part of `url` or `because`. */
      readonly credentials?: string;
    };

/** The operating system's proxy configuration: the process environment and the text of /etc/environment. */
export interface ProxyEnvironment {
  readonly environment: Readonly<Record<string, string | undefined>>;
  /** Contents of /etc/environment; '' when the file does not exist. */
  readonly etcEnvironment: string;
}

/** Parses /etc/environment (pam_env format: KEY=VALUE lines, optional quotes, # comments). */
export function parseEtcEnvironment(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const raw of text.split('\n')) {
    const line = raw.trim().replace(/^export\s+/, '');
    if (line === '' || line.startsWith('#')) continue;
    const eq = line.indexOf('=');
    if (eq <= 0) continue;
    const key = line.slice(0, eq).trim();
    let value = line.slice(eq + 1).trim();
    if (value.length >= 2 && (value[0] === '"' || value[0] === "'") && value.endsWith(value[0]))
      value = value.slice(1, -1);
    out[key] = value;
  }
  return out;
}

interface Lookup {
  value: string;
  name: string;
  where: string;
}

function lookup(env: ProxyEnvironment, names: readonly string[]): Lookup | undefined {
  for (const name of names) {
    const v = env.environment[name];
    if (v !== undefined && v.trim() !== '')
      return { value: v.trim(), name, where: 'the process environment' };
  }
  const etc = parseEtcEnvironment(env.etcEnvironment);
  for (const name of names) {
    const v = etc[name];
    if (v !== undefined && v.trim() !== '') return { value: v.trim(), name, where: '/etc/environment' };
  }
  return undefined;
}

/** True when `host` (and `port`) is excluded from proxying by a no_proxy list. */
export function matchesNoProxy(noProxy: string, host: string, port: number): boolean {
  const h = host.toLowerCase().replace(/^\[|\]$/g, '');
  const ip = parseIp(h);
  for (const rawEntry of noProxy.split(/[,\s]+/)) {
    let entry = rawEntry.trim().toLowerCase();
    if (entry === '') continue;
    if (entry === '*') return true;
    const portMatch = /^(.*[^:]):(\d+)$/.exec(entry);
    // host:port and [v6]:port; a bare IPv6 address (with or without ::) has no port.
    const hasPort = entry.startsWith('[')
      ? entry.includes(']:')
      : !entry.includes('::') && parseIp(entry) === null;
    if (portMatch && hasPort) {
      if (Number(portMatch[2]) !== port) continue;
      entry = portMatch[1]!;
    }
    if (entry.includes('/')) {
      const cidr = parseCidr(entry);
      if (cidr.ok && ip !== null && rangeContains(cidr.value, ip)) return true;
      continue;
    }
    const entryIp = parseIp(entry.replace(/^\[|\]$/g, ''));
    if (entryIp !== null) {
      if (ip !== null && entryIp.version === ip.version && entryIp.value === ip.value) return true;
      continue;
    }
    const domain = entry.replace(/^\*?\./, '');
    if (h === domain || h.endsWith(`.${domain}`)) return true;
  }
  return false;
}

/**
 * Parses a proxy value such as `http://user:pw@proxy.lan:3128` or `proxy.lan:3128`. Credentials are
 * kept apart (`credentials`, percent-decoded) so `url` can be shown without them.
 */
export function parseProxyUrl(
  value: string,
): { host: string; port: number; url: string; credentials?: string } | undefined {
  const withScheme = /^[a-z][a-z0-9+.-]*:\/\//i.test(value) ? value : `http://${value}`;
  let u: URL;
  try {
    u = new URL(withScheme);
  } catch {
    return undefined;
  }
  if (u.hostname === '' || !['http:', 'https:', 'socks5:', 'socks5h:', 'socks:'].includes(u.protocol))
    return undefined;
  const defaultPort = u.protocol === 'https:' ? 443 : u.protocol === 'http:' ? 80 : 1080;
  const port = u.port === '' ? defaultPort : Number(u.port);
  const host = u.hostname.replace(/^\[|\]$/g, '');
  const url = `${u.protocol}//${u.host}`;
  if (u.username === '' && u.password === '') return { host, port, url };
  let credentials: string;
  try {
    credentials = `${decodeURIComponent(u.username)}:${decodeURIComponent(u.password)}`;
  } catch {
    credentials = `${u.username}:${u.password}`;
  }
  return { host, port, url, credentials };
}

/**
 * Decides how a request to `target` leaves this host under the given proxy
 * settings. For https targets https_proxy/HTTPS_PROXY are read first, then
 * http_proxy/HTTP_PROXY; for http targets only the latter. no_proxy/NO_PROXY
 * exclusions apply to both.
 */
export function resolveProxy(settings: Settings['proxy'], env: ProxyEnvironment, target: string): ProxyRoute {
  const t = new URL(target);
  const targetPort = t.port === '' ? (t.protocol === 'https:' ? 443 : 80) : Number(t.port);
  if (settings.mode === 'direct') return { kind: 'direct', because: 'proxy.mode is direct' };
  if (settings.mode === 'manual') {
    const p = parseProxyUrl(settings.url);
    if (p === undefined)
      return { kind: 'direct', because: `proxy.url "${redactText(settings.url)}" is not usable` };
    return { kind: 'proxy', ...p, because: `proxy.mode is manual (${p.url})` };
  }
  const names =
    t.protocol === 'https:'
      ? ['https_proxy', 'HTTPS_PROXY', 'http_proxy', 'HTTP_PROXY']
      : ['http_proxy', 'HTTP_PROXY'];
  const found = lookup(env, names);
  if (found === undefined)
    return {
      kind: 'direct',
      because: `no ${names.join('/')} in the process environment or /etc/environment`,
    };
  const noProxy = lookup(env, ['no_proxy', 'NO_PROXY']);
  if (noProxy !== undefined && matchesNoProxy(noProxy.value, t.hostname, targetPort)) {
    return { kind: 'direct', because: `${t.hostname} is excluded by ${noProxy.name} in ${noProxy.where}` };
  }
  const p = parseProxyUrl(found.value);
  if (p === undefined)
    return {
      kind: 'direct',
      because: `${found.name} in ${found.where} ("${redactText(found.value)}") is not a proxy URL`,
    };
  return { kind: 'proxy', ...p, because: `${found.name} in ${found.where}` };
}
