/** The settings schema: strict (unknown keys are errors), every key defaulted from DEFAULT_SETTINGS. */
import { z } from 'zod';
import { parseHostName, parseIp } from '../ip/index.js';
import { DEFAULT_SETTINGS as D } from './defaults.js';

const port = z.number().int().min(1, 'port must be 1-65535').max(65535, 'port must be 1-65535');

const ipAddress = z.string().refine((s) => parseIp(s) !== null, { message: 'is not an IP address' });

const hostOrIp = z
  .string()
  .refine((s) => parseIp(s) !== null || (parseHostName(s).ok && !s.startsWith('*.')), {
    message: 'is not a host name or IP address',
  });

/** An http(s) URL with a host; `allowEmpty` also accepts '' (not set). */
function httpUrl(message: string, options: { allowEmpty?: boolean } = {}) {
  return z.string().refine(
    (s) => {
      if (s === '' && options.allowEmpty) return true;
      try {
        const u = new URL(s);
        return (u.protocol === 'https:' || u.protocol === 'http:') && u.hostname !== '';
      } catch {
        return false;
      }
    },
    { message },
  );
}

const httpsUrl = httpUrl('is not an http(s) URL');
const proxyUrl = httpUrl('is not a proxy URL (expected http://host:port)', { allowEmpty: true });

export const settingsSchema = z
  .strictObject({
    applicationPort: port.default(D.applicationPort),
    remoteAdministration: z
      .strictObject({ enabled: z.boolean().default(D.remoteAdministration.enabled) })
      .prefault({}),
    dns: z.strictObject({ resolvers: z.array(ipAddress).default([]) }).prefault({}),
    crashReports: z
      .strictObject({
        sendingAllowed: z.boolean().default(D.crashReports.sendingAllowed),
        server: httpsUrl.default(D.crashReports.server),
      })
      .prefault({}),
    updates: z
      .strictObject({
        enabled: z.boolean().default(D.updates.enabled),
        feedUrl: httpsUrl.default(D.updates.feedUrl),
        intervalHours: z
          .number()
          .min(1)
          .max(24 * 30)
          .default(D.updates.intervalHours),
      })
      .prefault({}),
    registration: z
      .strictObject({
        enabled: z.boolean().default(D.registration.enabled),
        server: httpsUrl.default(D.registration.server),
      })
      .prefault({}),
    syslog: z
      .strictObject({
        enabled: z.boolean().default(D.syslog.enabled),
        host: hostOrIp.default(D.syslog.host),
        port: port.default(D.syslog.port),
        transport: z.enum(['udp', 'tcp', 'tls']).default(D.syslog.transport),
      })
      .prefault({}),
    proxy: z
      .strictObject({
        mode: z.enum(['auto', 'direct', 'manual']).default(D.proxy.mode),
        url: proxyUrl.default(D.proxy.url),
      })
      .prefault({})
      .refine((p) => p.mode !== 'manual' || p.url !== '', {
        message: 'proxy.mode is manual but proxy.url is empty',
        path: ['url'],
      }),
    enforcement: z
      .strictObject({
        queue: z
          .number()
          .int()
          .min(0, 'queue must be 0-65535')
          .max(65535, 'queue must be 0-65535')
          .default(D.enforcement.queue),
        onEngineFailure: z.enum(['open', 'closed']).default(D.enforcement.onEngineFailure),
        askTimeoutSeconds: z
          .number()
          .int()
          .min(1, 'askTimeoutSeconds must be 1-3600')
          .max(3600, 'askTimeoutSeconds must be 1-3600')
          .default(D.enforcement.askTimeoutSeconds),
        onStop: z.enum(['keep', 'remove']).default(D.enforcement.onStop),
        logGroup: z
          .number()
          .int()
          .min(1, 'logGroup must be 1-65535')
          .max(65535, 'logGroup must be 1-65535')
          .default(D.enforcement.logGroup),
        bpfCgroup: z
          .string()
          .max(4096, 'bpfCgroup must be at most 4096 characters')
          .refine((v) => v === '' || (v.startsWith('/') && !v.split('/').includes('..')), {
            message: "bpfCgroup must be '' (off) or an absolute path under the cgroup2 mount without '..'",
          })
          .default(D.enforcement.bpfCgroup),
        verdictCache: z.boolean().default(D.enforcement.verdictCache),
        floodOutgoingPerUid: z
          .number()
          .int()
          .min(0, 'floodOutgoingPerUid must be 0-100000')
          .max(100000, 'floodOutgoingPerUid must be 0-100000')
          .default(D.enforcement.floodOutgoingPerUid),
        floodIncomingPerSource: z
          .number()
          .int()
          .min(0, 'floodIncomingPerSource must be 0-100000')
          .max(100000, 'floodIncomingPerSource must be 0-100000')
          .default(D.enforcement.floodIncomingPerSource),
        floodBurst: z
          .number()
          .int()
          .min(1, 'floodBurst must be 1-100000')
          .max(100000, 'floodBurst must be 1-100000')
          .default(D.enforcement.floodBurst),
      })
      .prefault({}),
    blockedPopups: z.strictObject({ port: port.default(D.blockedPopups.port) }).prefault({}),
    metrics: z
      .strictObject({ enabled: z.boolean().default(D.metrics.enabled), port: port.default(D.metrics.port) })
      .prefault({}),
  })
  .refine((s) => s.applicationPort !== s.blockedPopups.port, {
    message: 'applicationPort and blockedPopups.port must differ',
    path: ['applicationPort'],
  });

/** Fully defaulted, validated settings. */
export type Settings = z.output<typeof settingsSchema>;

/** A setting a rule condition may test: its dotted path and the kind of value it holds. */
export interface SettingPath {
  readonly path: string;
  readonly type: 'boolean' | 'number' | 'string';
  readonly values?: readonly string[];
}

function collectPaths(value: unknown, prefix: string, out: SettingPath[]): void {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    const t = typeof value;
    if (t === 'boolean' || t === 'number' || t === 'string') out.push({ path: prefix, type: t });
    return;
  }
  for (const [k, v] of Object.entries(value)) collectPaths(v, prefix === '' ? k : `${prefix}.${k}`, out);
}

const ENUM_VALUES: Record<string, readonly string[]> = {
  'syslog.transport': ['udp', 'tcp', 'tls'],
  'proxy.mode': ['auto', 'direct', 'manual'],
  'enforcement.onEngineFailure': ['open', 'closed'],
  'enforcement.onStop': ['keep', 'remove'],
};

/** Every setting a rule condition can name (scalar leaves of the settings). */
export const SETTING_PATHS: readonly SettingPath[] = (() => {
  const out: SettingPath[] = [];
  collectPaths(D, '', out);
  return out.map((p) => (ENUM_VALUES[p.path] ? { ...p, values: ENUM_VALUES[p.path] } : p));
})();

/** Reads the value of a dotted setting path, or undefined when there is none. */
export function settingValue(settings: Settings, path: string): unknown {
  let cur: unknown = settings;
  for (const key of path.split('.')) {
    if (cur === null || typeof cur !== 'object') return undefined;
    cur = (cur as Record<string, unknown>)[key];
  }
  return cur;
}
