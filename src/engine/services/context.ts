/** What every auxiliary service gets from the engine: where to log, where state lives, how requests leave the host. */
import type { LogStore } from '../../admin/log-store.js';
import type { Settings } from '../../settings/index.js';
import { type ProxyEnvironment, type ProxyRoute, resolveProxy } from '../../settings/proxy.js';
import type { EngineLog } from '../daemon.js';

export interface ServiceContext {
  readonly logs: Pick<LogStore, 'append'>;
  readonly log: EngineLog;
  /** The running engine's version. */
  readonly version: string;
  readonly configDir: string;
  readonly stateDir: string;
  readonly hostname: string;
  /** The engine's TLS fingerprint (sent at registration). */
  readonly fingerprint: string;
  /** PEM CA certificate(s) trusted instead of the system CAs (tests, private CAs). */
  readonly ca?: string | Buffer;
  /** How a request to `url` leaves this host under these settings. */
  route(settings: Settings, url: string): ProxyRoute;
  /** The newest version already announced in the log (so each is announced once per engine run). */
  readonly announcedVersion: { value: string | undefined };
}

/** The route function for an OS proxy environment. */
export function routeWith(env: ProxyEnvironment): ServiceContext['route'] {
  return (settings, url) => resolveProxy(settings.proxy, env, url);
}
