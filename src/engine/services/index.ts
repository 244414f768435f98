/**
 * The engine's auxiliary services behind the internal rules, started and stopped as one:
 * the blocked pop-up endpoint (always), the update checker (updates.enabled), registration
 * (registration.enabled) and the crash assistant runs (crashReports.sendingAllowed). Each follows
 * the settings: when its part of the settings (or the proxy) changes it is stopped and started
 * again with the new values. None of them can stop the engine: failures become log items.
 */
import { hostname } from 'node:os';
import type { FileConfigStore } from '../../admin/config-store.js';
import type { LogStore } from '../../admin/log-store.js';
import type { HostEnvironment } from '../../policy/index.js';
import type { Settings } from '../../settings/index.js';
import type { EngineLog } from '../daemon.js';
import { routeWith, type ServiceContext } from './context.js';
import { CRASH_DIR, pendingReports, runAssistant } from './crash-reports.js';
import { type PopupEndpoint, startPopupEndpoint } from './popup-reports.js';
import { startRegistration } from './registration.js';
import { startUpdateChecker } from './update-check.js';

/** Tuning for tests and special installations; every field has a production default. */
export interface ServiceOptions {
  /** PEM CA(s) the engine's own HTTPS requests trust instead of the system CAs. */
  readonly ca?: string | Buffer;
  /** Port of the pop-up endpoint instead of settings blockedPopups.port (0: ephemeral, for tests). */
  readonly popupPort?: number;
  /** Time between attempts to listen while the pop-up port is taken (default 30 s). */
  readonly popupRetryMs?: number;
  /** Delay of the first update check after start or a settings change (default 5 s). */
  readonly updateFirstDelayMs?: number;
  /** Registration retry delays, first and largest (default 1 min and 6 h). */
  readonly registrationBackoffMs?: { readonly min: number; readonly max: number };
  /** How often pending crash reports are tried again while sending is allowed (default 1 h). */
  readonly crashRetryMs?: number;
}

export interface ServiceParts {
  readonly config: Pick<FileConfigStore, 'settings' | 'onChange'>;
  readonly logs: LogStore;
  readonly log: EngineLog;
  readonly host: HostEnvironment;
  readonly version: string;
  readonly configDir: string;
  readonly stateDir: string;
  readonly fingerprint: string;
}

export interface Services {
  /** The pop-up endpoint's port, or undefined when it could not listen. */
  popupPort(): number | undefined;
  stop(): Promise<void>;
}

/** A service that restarts whenever `key(settings)` changes. */
function follow<T extends { stop(): void | Promise<void> }>(
  name: string,
  log: EngineLog,
  key: (s: Settings) => string,
  start: (s: Settings) => T | undefined | Promise<T | undefined>,
): { update(s: Settings): Promise<void>; current(): T | undefined; stop(): Promise<void> } {
  let lastKey: string | undefined;
  let running: T | undefined;
  let chain: Promise<void> = Promise.resolve();
  const update = (s: Settings) => {
    chain = chain.then(async () => {
      const k = key(s);
      if (k === lastKey) return;
      lastKey = k;
      const old = running;
      running = undefined;
      try {
        await old?.stop();
        running = await start(s);
      } catch (e) {
        // A service must never take the engine down (nor block its later restarts).
        log('error', `${name}: ${(e as Error).message}`);
      }
    });
    return chain;
  };
  return {
    update,
    current: () => running,
    stop: () => {
      lastKey = '\0stopped';
      chain = chain.then(async () => {
        await Promise.resolve(running?.stop()).catch((e: Error) => log('error', `${name}: ${e.message}`));
        running = undefined;
      });
      return chain;
    },
  };
}

/** Starts the services the settings enable and makes them follow settings changes. */
export async function startServices(parts: ServiceParts, options: ServiceOptions = {}): Promise<Services> {
  const { logs, log } = parts;
  const ctx: ServiceContext = {
    logs,
    log,
    version: parts.version,
    configDir: parts.configDir,
    stateDir: parts.stateDir,
    hostname: hostname(),
    fingerprint: parts.fingerprint,
    ...(options.ca !== undefined ? { ca: options.ca } : {}),
    route: routeWith(parts.host),
    announcedVersion: { value: undefined },
  };

  const popups = follow(
    'blocked pop-up endpoint',
    log,
    (s) => String(options.popupPort ?? s.blockedPopups.port),
    (s) => keepListening(options.popupPort ?? s.blockedPopups.port, ctx, options.popupRetryMs ?? 30_000),
  );

  const updates = follow(
    'update checker',
    log,
    (s) => JSON.stringify([s.updates, s.proxy]),
    (s) =>
      s.updates.enabled
        ? startUpdateChecker(ctx, s, { firstDelayMs: options.updateFirstDelayMs ?? 5_000 })
        : undefined,
  );

  const backoff = options.registrationBackoffMs ?? { min: 60_000, max: 6 * 3_600_000 };
  const registration = follow(
    'registration',
    log,
    (s) => JSON.stringify([s.registration, s.proxy]),
    (s) =>
      s.registration.enabled
        ? startRegistration(ctx, s, { minBackoffMs: backoff.min, maxBackoffMs: backoff.max })
        : undefined,
  );

  const crashes = follow(
    'crash reports',
    log,
    (s) => JSON.stringify([s.crashReports, s.proxy]),
    (s) => startCrashUploads(ctx, parts, s, options.crashRetryMs ?? 3_600_000),
  );

  const all = [popups, updates, registration, crashes];
  const apply = () => Promise.all(all.map((service) => service.update(parts.config.settings())));
  const unsubscribe = parts.config.onChange((what) => {
    if (what !== 'policy') void apply();
  });
  await apply();
  return {
    popupPort: () => popups.current()?.endpoint()?.port,
    async stop() {
      unsubscribe();
      await Promise.all(all.map((service) => service.stop()));
    },
  };
}

/**
 * The pop-up endpoint on `port`, tried again every `retryMs` while the port is taken (e.g. by a
 * previous engine still stopping); the first failure is a log item, the later ones engine log lines.
 */
async function keepListening(
  port: number,
  ctx: ServiceContext,
  retryMs: number,
): Promise<{ endpoint(): PopupEndpoint | undefined; stop(): Promise<void> }> {
  let endpoint: PopupEndpoint | undefined;
  let stopped = false;
  let timer: NodeJS.Timeout | undefined;
  let failures = 0;
  const attempt = async () => {
    try {
      const started = await startPopupEndpoint({ port, logs: ctx.logs });
      if (stopped) {
        await started.stop();
        return;
      }
      endpoint = started;
      ctx.log('info', 'blocked pop-up endpoint listening', {
        port: started.port,
        addresses: started.addresses,
      });
      if (failures > 0)
        ctx.logs.append({ kind: 'system', message: `blocked pop-up endpoint listening on port ${port}` });
    } catch (e) {
      if (stopped) return;
      const message = `blocked pop-up endpoint cannot listen on localhost port ${port}: ${(e as Error).message}`;
      ctx.log('error', `${message}; trying again in ${Math.round(retryMs / 1000)} s`);
      if (failures++ === 0) ctx.logs.append({ kind: 'system', message: `${message} (trying again)` });
      timer = setTimeout(() => void attempt(), retryMs);
      timer.unref();
    }
  };
  await attempt();
  return {
    endpoint: () => endpoint,
    async stop() {
      stopped = true;
      clearTimeout(timer);
      await endpoint?.stop();
      endpoint = undefined;
    },
  };
}

/** How many crash reports wait; an unreadable directory is logged and counts as none. */
function pendingCount(ctx: ServiceContext): number {
  try {
    return pendingReports(ctx.stateDir).length;
  } catch (e) {
    ctx.log('error', (e as Error).message);
    return 0;
  }
}

/**
 * Pending crash reports: when sending is allowed the assistant (a child process, so the upload is
 * the assistant's traffic) is run now and again every `retryMs` while reports remain; when it is
 * not, the engine says once that reports are kept.
 */
function startCrashUploads(
  ctx: ServiceContext,
  parts: ServiceParts,
  settings: Settings,
  retryMs: number,
): { stop(): void } {
  const dir = `${ctx.stateDir}/${CRASH_DIR}`;
  const waiting = pendingCount(ctx);
  if (!settings.crashReports.sendingAllowed) {
    if (waiting > 0) {
      ctx.logs.append({
        kind: 'system',
        message: `${waiting} crash report(s) kept in ${dir}; sending is not allowed (settings crashReports.sendingAllowed)`,
      });
    }
    return { stop() {} };
  }
  let stopped = false;
  let timer: NodeJS.Timeout | undefined;
  const attempt = async () => {
    if (stopped || pendingCount(ctx) === 0) return;
    const { code, output } = await runAssistant(parts.host.executables.assistant, {
      configDir: ctx.configDir,
      stateDir: ctx.stateDir,
    });
    if (stopped) return;
    const summary = output.split('\n').slice(-5).join('; ').slice(0, 1000);
    ctx.log(code === 0 ? 'info' : 'warn', `crash assistant exited with ${code}`, { output });
    ctx.logs.append({ kind: 'system', message: `crash assistant: ${summary || `exit status ${code}`}` });
    if (pendingCount(ctx) > 0) {
      timer = setTimeout(run, retryMs);
      timer.unref();
    }
  };
  const run = () => {
    attempt().catch((e: Error) => ctx.log('error', `crash reports: ${e.message}`));
  };
  run();
  return {
    stop() {
      stopped = true;
      clearTimeout(timer);
    },
  };
}
