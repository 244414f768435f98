/**
 * The engine: joins configuration, logs, the administration server, the ask desk and (when
 * enabled) the kernel backend into one running service. The CLI (bin.ts) parses arguments
 * and signals; everything the engine is made of is started and stopped here, in order.
 */
import { readFile, realpath } from 'node:fs/promises';
import { hostname } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ensureLocalToken } from '../admin/auth/local-token.js';
import { LoginThrottle } from '../admin/auth/throttle.js';
import { UserStore } from '../admin/auth/users.js';
import { FileConfigStore } from '../admin/config-store.js';
import { Confirmations, lockoutRisk } from '../admin/confirm.js';
import { REPEAT_WINDOW_MS } from '../admin/log-coalesce.js';
import { type LogStore, MemoryLogStore } from '../admin/log-store.js';
import { ensureDirectory, tightenFiles } from '../admin/private-file.js';
import { ProposalBook } from '../admin/proposals.js';
import { AdminServer } from '../admin/server.js';
import { SqliteLogStore } from '../admin/sqlite-log-store.js';
import { loadOrCreateIdentity, type TlsIdentity } from '../admin/tls-identity.js';
import { formatProblem, WardenError } from '../errors.js';
import { ConnectionLister } from '../kernel/open-connections.js';
import { reserveLocalPorts } from '../kernel/reserved-ports.js';
import { MetricsEndpoint } from '../metrics/http.js';
import { type DecisionMetrics, WardenMetrics } from '../metrics/warden.js';
import type { HostEnvironment } from '../policy/index.js';
import { type AttributionLookups, Notifications, type VerdictCacheState } from '../protocol/methods.js';
import type { Settings } from '../settings/index.js';
import { resolveProxy } from '../settings/proxy.js';
import { AskDesk } from './asks.js';
import { ExeHasher } from './exe-hash.js';
import { PolicyIncludes } from './includes.js';
import { PolicyLists } from './lists.js';
import { RuleCounters } from './rule-counters.js';
import { type ServiceOptions, type Services, startServices } from './services/index.js';
import { forwardLogs } from './syslog.js';

export const VERSION = '0.1.0';

/** Where an installed engine keeps things. */
export const DEFAULT_DIRS = { config: '/etc/warden', state: '/var/lib/warden' } as const;

/** The local administrator token of an engine in the default state directory (the console's default too). */
export const DEFAULT_LOCAL_TOKEN = join(DEFAULT_DIRS.state, 'local-token');

/** The engine's own log lines (to stderr, human or JSON: log-format.ts). */
export type EngineLog = (
  level: 'info' | 'warn' | 'error',
  message: string,
  fields?: Record<string, unknown>,
) => void;

/** The part that drives the kernel; absent in unprivileged mode. */
export interface KernelBackend {
  /** A one-line description for engine.status, e.g. "nftables table inet warden + NFQUEUE 0 (xt NFQUEUE, new connections pass while no engine runs)". */
  readonly description: string;
  /** Which attribution path is in use, for engine.status (src/kernel/attribution-path.ts). */
  readonly attribution?: string;
  /** The verdict cache's state, for engine.status. */
  readonly verdictCache?: () => VerdictCacheState;
  /** Which way the BPF path found sockets, for engine.status (absent on the /proc path). */
  readonly attributionLookups?: () => AttributionLookups;
  /** Applies a changed configuration (policy or settings). */
  reload(): Promise<void>;
  /** Stops deciding; keeps or removes the kernel ruleset as the settings say. */
  stop(): Promise<void>;
}

/** What a kernel backend gets from the engine. */
export interface EngineParts {
  readonly config: FileConfigStore;
  readonly logs: LogStore;
  readonly asks: AskDesk;
  readonly host: HostEnvironment;
  readonly log: EngineLog;
  readonly metrics: DecisionMetrics;
  /** Learning mode's proposals (the enforcer adds, the proposals.* methods read and decide). */
  readonly proposals?: ProposalBook;
  /** Hashes executables for sha256-pinned rules (on a worker thread, once per file version). */
  readonly hasher?: ExeHasher;
  /** Per-rule counters (the enforcer counts queued decisions, the backend feeds the kernel's counters). */
  readonly ruleCounters?: RuleCounters;
  /** The policy's lists as loaded (compilePolicy's `lists`); absent: lists are empty. */
  readonly lists?: PolicyLists /** The policy's rule subscriptions as loaded; absent: nothing is included. */;
  readonly includes?: PolicyIncludes;
  /** Resolves once every configuration change so far has reached the kernel (or failed to). */
  readonly settled?: () => Promise<void>;
}

export interface EngineOptions {
  readonly configDir?: string;
  readonly stateDir?: string;
  /** Overrides settings.applicationPort (0: ephemeral, for tests). */
  readonly port?: number;
  readonly bindAddress?: string;
  /** Starts the kernel backend; undefined: unprivileged mode (policy is served and explained, nothing is enforced). */
  readonly kernel?: (parts: EngineParts) => Promise<KernelBackend>;
  readonly log?: EngineLog;
  /** Log retention of the SQLite store (default: 30 days, 10 million items). */
  readonly retention?: { readonly maxAgeDays?: number; readonly maxItems?: number };
  /** Tuning of the auxiliary services (pop-up endpoint port, CA, delays); see services/index.ts. */
  readonly services?: ServiceOptions;
}

/**
 * The persistent log store in the state directory. A damaged database must not stop the firewall:
 * the engine says so loudly and keeps its log items in memory until the file is dealt with.
 */
function openLogStore(
  stateDir: string,
  options: EngineOptions,
  log: EngineLog,
): { store: LogStore; problem?: string } {
  const path = join(stateDir, 'logs.db');
  try {
    const store = SqliteLogStore.open(path, {
      retention: { maxAgeDays: 30, maxItems: 10_000_000, ...options.retention },
      onError: (e) => log('error', `log store: ${e.message}`),
      repeatWindowMs: REPEAT_WINDOW_MS, // a connection attempt's retransmits are one item with a count
    });
    return { store };
  } catch (e) {
    const message = (e as Error).message;
    log('error', `log store unusable, keeping log items in memory: ${message}`);
    return { store: new MemoryLogStore(), problem: message };
  }
}

/** The script paths of Warden's parts in this installation: the engine knows its own parts by them. */
export async function installedExecutables(): Promise<HostEnvironment['executables']> {
  const dist = dirname(dirname(fileURLToPath(import.meta.url))); // dist/src
  const real = async (p: string) => realpath(p).catch(() => p);
  return {
    engine: await real(join(dist, 'engine/bin.js')),
    console: await real(join(dist, 'console/bin.js')),
    assistant: await real(join(dist, 'assist/bin.js')),
  };
}

async function engineHost(): Promise<HostEnvironment> {
  const etcEnvironment = await readFile('/etc/environment', 'utf8').catch(() => '');
  return { executables: await installedExecutables(), environment: { ...process.env }, etcEnvironment };
}

/** A running engine. */
export class Engine {
  readonly server: AdminServer;
  readonly config: FileConfigStore;
  readonly logs: LogStore;
  readonly asks: AskDesk;
  /** Learning mode's proposed rules, kept in the state directory. */
  readonly proposals: ProposalBook;
  /** Per-rule counters, saved in the state directory (rule-counters.json). */
  readonly ruleCounters: RuleCounters;
  readonly identity: TlsIdentity;
  readonly localTokenPath: string;
  /** The auxiliary services: pop-up endpoint, update checker, registration, crash uploads. */
  readonly services: Services;
  /** The localhost Prometheus endpoint (serving only when settings.metrics.enabled). */
  readonly metricsEndpoint: MetricsEndpoint;
  readonly #kernel: KernelBackend | undefined;
  readonly #log: EngineLog;
  readonly #settled: () => Promise<void>;
  readonly #stopSyslog: () => Promise<void>;
  readonly #hasher: ExeHasher;
  /** The policy's lists (src/engine/lists.ts). */
  readonly lists: PolicyLists;
  /** The policy's rule subscriptions (src/engine/includes.ts). */
  readonly includes: PolicyIncludes;

  private constructor(parts: {
    hasher: ExeHasher;
    lists: PolicyLists;
    includes: PolicyIncludes;
    server: AdminServer;
    config: FileConfigStore;
    logs: LogStore;
    asks: AskDesk;
    proposals: ProposalBook;
    ruleCounters: RuleCounters;
    identity: TlsIdentity;
    localTokenPath: string;
    services: Services;
    kernel: KernelBackend | undefined;
    log: EngineLog;
    settled: () => Promise<void>;
    stopSyslog: () => Promise<void>;
    metricsEndpoint: MetricsEndpoint;
  }) {
    this.metricsEndpoint = parts.metricsEndpoint;
    this.#hasher = parts.hasher;
    this.lists = parts.lists;
    this.includes = parts.includes;
    this.#settled = parts.settled;
    this.#stopSyslog = parts.stopSyslog;
    this.server = parts.server;
    this.config = parts.config;
    this.logs = parts.logs;
    this.asks = parts.asks;
    this.proposals = parts.proposals;
    this.ruleCounters = parts.ruleCounters;
    this.identity = parts.identity;
    this.localTokenPath = parts.localTokenPath;
    this.services = parts.services;
    this.#kernel = parts.kernel;
    this.#log = parts.log;
  }

  static async start(options: EngineOptions = {}): Promise<Engine> {
    const log = options.log ?? (() => {});
    const configDir = options.configDir ?? DEFAULT_DIRS.config;
    const stateDir = options.stateDir ?? DEFAULT_DIRS.state;
    await ensureDirectory(configDir, 0o755);
    await ensureDirectory(stateDir, 0o700);
    // An existing state directory (keys, token, logs) is made owner-only too, whatever made it looser.
    for (const p of tightenFiles([stateDir])) log('info', `made ${p} owner-only (it was open to others)`);
    const config = await FileConfigStore.open(configDir);
    const identity = await loadOrCreateIdentity(join(stateDir, 'tls'));
    const users = await UserStore.open(join(configDir, 'users.json'));
    const localTokenPath = join(stateDir, 'local-token');
    const localToken = await ensureLocalToken(localTokenPath);
    const { store: logs, problem } = openLogStore(stateDir, options, log);
    if (problem !== undefined) {
      logs.append({
        kind: 'system',
        message: `log store unusable, log items are kept in memory only: ${problem}`,
      });
    }
    // Mutable: once the server listens, the port it serves (wardend --port) joins it for the internal rules.
    const host: { -readonly [K in keyof HostEnvironment]: HostEnvironment[K] } = await engineHost();
    const startedAt = new Date().toISOString();
    let server: AdminServer | undefined;
    let kernel: KernelBackend | undefined;
    const asks = new AskDesk({
      timeoutMs: () => config.settings().enforcement.askTimeoutSeconds * 1000,
      consoles: () => server?.consoles ?? 0,
      notify: (event, params) =>
        server?.broadcast(event === 'prompt' ? Notifications.askPrompt : Notifications.askResolved, params),
    });
    const metrics = new WardenMetrics(() => server?.consoles ?? 0);
    const hasher = new ExeHasher();
    // The policy's lists: what is at hand (files, last good copies) is loaded before anything
    // decides; URL lists are fetched in the background and a new content re-applies the policy.
    let listsChanged = () => {};
    const lists = new PolicyLists({
      stateDir,
      route: (url) => resolveProxy(config.settings().proxy, host, url),
      ...(options.services?.ca !== undefined ? { ca: options.services.ca } : {}),
      log,
      onChange: () => listsChanged(),
    });
    await lists.follow(config.policy().lists);
    // Rule subscriptions, likewise: a refresh that would cut off a console connected from another
    // host now is refused (the lockout guard), the rules in force stay.
    let includesChanged = () => {};
    const includes = new PolicyIncludes({
      stateDir,
      route: (url) => resolveProxy(config.settings().proxy, host, url),
      ...(options.services?.ca !== undefined ? { ca: options.services.ca } : {}),
      // A refused or failed refresh is a system log item too: `warden logs` shows why rules stayed.
      log: (level, message, fields) => {
        log(level, message, fields);
        if (level !== 'info') logs.append({ kind: 'system', message: `rule subscription ${message}` });
      },
      policy: () => config.policy(),
      lockoutRisk: (next) => {
        for (const source of server?.remoteSources ?? []) {
          const risk = lockoutRisk({ policy: next, settings: config.settings() }, source, host, Date.now());
          if (risk !== null) return risk;
        }
        return null;
      },
      onChange: () => includesChanged(),
    });
    await includes.follow(config.policy().include);
    const proposals = await ProposalBook.open({
      path: join(stateDir, 'proposals.json'),
      onError: (m) => log('error', m),
    });
    const ruleCounters = await RuleCounters.open({
      path: join(stateDir, 'rule-counters.json'),
      onError: (m) => log('error', `rule counters: ${m}`),
    });
    if (options.kernel) {
      // Our listening ports are never handed out as some program's ephemeral port (src/kernel/reserved-ports.ts).
      const s = config.settings();
      const problem = await reserveLocalPorts([
        options.port ?? s.applicationPort,
        s.blockedPopups.port,
        s.metrics.port,
      ]);
      if (problem !== undefined) log('warn', problem);
    }
    // The kernel's reloads after changes, in order; the last one's failure is engine.status's problem.
    let kernelWork: Promise<void> = Promise.resolve();
    let kernelProblem: string | undefined;
    server = await AdminServer.start({
      metrics,
      identity,
      users,
      throttle: new LoginThrottle({ now: Date.now }),
      localToken,
      config,
      logs,
      host,
      asks,
      proposals,
      // Kernel counters are read again when older than a second (each rules.list would else list them).
      ruleCounts: () => ruleCounters.refresh(1000).then(() => ruleCounters.snapshot()),
      connections: new ConnectionLister(),
      hasher,
      // Changes applied with confirm outlive a restart: re-armed from the state directory.
      confirmations: await Confirmations.open(join(stateDir, 'pending-confirmations.json'), (m) =>
        log('error', `pending confirmations: ${m}`),
      ),
      now: Date.now,
      status: () => ({
        version: VERSION,
        hostname: hostname(),
        startedAt,
        fingerprint: identity.fingerprint,
        consoles: server?.consoles ?? 0,
        kernel: kernel?.description ?? 'none: unprivileged mode, nothing is enforced',
        attribution: kernel?.attribution ?? 'none',
        ...(kernel?.verdictCache !== undefined ? { verdictCache: kernel.verdictCache() } : {}),
        ...(kernel?.attributionLookups !== undefined
          ? { attributionLookups: kernel.attributionLookups() }
          : {}),
        decisionsPerMinute: metrics.decisionsPerMinute(),
        problems: [
          ...(kernelProblem === undefined ? [] : [kernelProblem]),
          ...(problem === undefined
            ? []
            : [`log store unusable, log items are kept in memory only: ${problem}`]),
        ],
        ...(config.policy().lists !== undefined ? { lists: lists.states() } : {}),
        ...(config.policy().include !== undefined ? { includes: includes.states() } : {}),
      }),
      settled: () => kernelWork,
      lists,
      includes,
      ...(options.bindAddress !== undefined ? { bindAddress: options.bindAddress } : {}),
      ...(options.port !== undefined ? { port: options.port } : {}),
      onSettingsChanged: (settings: Settings) => {
        log('info', 'settings changed', { remoteAdministration: settings.remoteAdministration.enabled });
      },
    });
    if (options.port !== undefined) host.servedPort = server.port;
    // Every change in force (a rule added by an answer, a rollback, a reload) reaches the kernel.
    // Syslog forwarding follows the settings: a changed receiver gets a new forwarder.
    let syslogTarget = JSON.stringify(config.settings().syslog);
    let syslog = forwardLogs(logs, config.settings(), { hostname: hostname() });
    const followSyslog = () => {
      const target = JSON.stringify(config.settings().syslog);
      if (target === syslogTarget) return;
      syslogTarget = target;
      const old = syslog;
      syslog = forwardLogs(logs, config.settings(), { hostname: hostname() });
      void old.stop();
    };
    // One reload at a time, and requests made while one waits to start share it: it reads everything
    // in force when it starts (a policy change also re-reads its lists and subscriptions, which ask
    // again; each used to make a reload of its own).
    let reloadWaiting = false;
    const reloadKernel = (what: string): void => {
      if (reloadWaiting) return;
      reloadWaiting = true;
      kernelWork = kernelWork
        .then(() => {
          reloadWaiting = false;
          return kernel?.reload();
        })
        .then(() => {
          kernelProblem = undefined;
        })
        .catch((e: Error) => {
          reloadWaiting = false;
          kernelProblem = `kernel reload after ${what} failed: ${e.message}`;
          log('error', kernelProblem);
        });
    };
    listsChanged = () => reloadKernel('a list changed');
    includesChanged = () => reloadKernel('included rules changed');
    config.onChange(() => {
      lists.follow(config.policy().lists).catch((e: Error) => log('error', `lists: ${e.message}`));
      includes
        .follow(config.policy().include, { reread: true })
        .catch((e: Error) => log('error', `includes: ${e.message}`));
    });
    config.onChange((what) => {
      followSyslog();
      reloadKernel(`a ${what} change`);
    });
    // The localhost metrics endpoint follows the metrics settings (off by default).
    const metricsEndpoint = new MetricsEndpoint(
      () => metrics.render(),
      (m) => log('error', m),
    );
    config.onChange(() => void metricsEndpoint.follow(config.settings().metrics));
    await metricsEndpoint.follow(config.settings().metrics);
    try {
      if (options.kernel)
        kernel = await options.kernel({
          config,
          logs,
          asks,
          host,
          log,
          metrics,
          proposals,
          hasher,
          ruleCounters,
          lists,
          includes,
          settled: () => kernelWork,
        });
    } catch (e) {
      lists.stop();
      includes.stop();
      await metricsEndpoint.close();
      await server.close();
      await hasher.close();
      throw e;
    }
    logs.append({
      kind: 'system',
      message: `engine started on port ${server.port}; ${kernel?.description ?? 'unprivileged mode: nothing is enforced'}`,
    });
    log('info', 'engine started', {
      port: server.port,
      fingerprint: identity.fingerprint,
      kernel: kernel?.description,
    });
    const services = await startServices(
      { config, logs, log, host, version: VERSION, configDir, stateDir, fingerprint: identity.fingerprint },
      options.services,
    );
    return new Engine({
      hasher,
      server,
      config,
      logs,
      asks,
      proposals,
      ruleCounters,
      identity,
      localTokenPath,
      services,
      kernel,
      log,
      settled: () => kernelWork,
      lists,
      includes,
      stopSyslog: () => syslog.stop(),
      metricsEndpoint,
    });
  }

  /** Re-reads nothing from disk (the config store is the truth); re-applies policy and settings to the kernel. */
  async reload(): Promise<void> {
    // The config store's change listener re-applies the kernel when the files changed; wait for it.
    await this.#settled();
    this.#log('info', 'reloaded');
  }

  /**
   * SIGHUP: re-reads both files. A refused file (hand-edited with errors) names every problem (file,
   * line, field, message, did-you-mean as the parser gives them) in the engine log and as a system log
   * item, so `warden logs` shows it; the configuration in force stays. Returns whether the files were taken.
   */
  async reloadFiles(): Promise<boolean> {
    try {
      await this.config.reload();
      // File lists are read again too (an edited list is taken by SIGHUP like an edited policy).
      await this.lists.follow(this.config.policy().lists, { reread: true });
      await this.includes.follow(this.config.policy().include, { reread: true });
      await this.reload();
      return true;
    } catch (e) {
      const problems = e instanceof WardenError ? e.problems.map(formatProblem) : [];
      const reason =
        problems.length > 1
          ? problems.map((p, i) => `(${i + 1}) ${p}`).join(' ')
          : (problems[0] ?? (e as Error).message);
      const head = `reload refused, the configuration in force stays: ${problems.length > 1 ? `${problems.length} problems: ` : ''}`;
      this.#log('error', `${head}${reason}`);
      this.logs.append({ kind: 'system', message: `${head}${reason}` });
      return false;
    }
  }

  /** Stops in order: no new decisions, held connections get their default, consoles are closed. */
  async stop(): Promise<void> {
    this.asks.close();
    this.lists.stop();
    this.includes.stop();
    await this.services.stop();
    await this.#kernel?.stop();
    this.logs.append({ kind: 'system', message: 'engine stopped' });
    await this.server.close();
    await this.proposals.close();
    await this.ruleCounters.close();
    await this.#stopSyslog();
    await this.metricsEndpoint.close();
    await this.#hasher.close();
    if (this.logs instanceof SqliteLogStore) await this.logs.close();
    this.#log('info', 'engine stopped');
  }
}
