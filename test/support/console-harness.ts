/**
 * The set-up the console's end-to-end and integration tests share: the built `warden` CLI run
 * against the administration harness (test/integration/admin-harness.ts) with a console home of its
 * own; a real engine in unprivileged mode with the harness's users (made by `wardend user add`),
 * `warden console`'s server and Chromium; a real process holding a real TCP connection; and a held
 * connection as the enforcer hands it to the ask desk.
 */
import assert from 'node:assert/strict';
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before } from 'node:test';
import { promisify } from 'node:util';
import type { Browser, Page } from 'playwright-core';
import type { AdminServerOptions } from '../../src/admin/server.js';
import { KnownHosts } from '../../src/client/known-hosts.js';
import { EngineList } from '../../src/console/engines.js';
import { type ConsoleServer, startConsoleServer } from '../../src/console/web/server.js';
import type { HeldConnection } from '../../src/engine/asks.js';
import { Engine } from '../../src/engine/daemon.js';
import { type Harness, startHarness, USERS } from '../integration/admin-harness.js';
import { repoRoot } from '../repo-root.js';

const root = repoRoot(import.meta.url);
/** The built `warden` CLI. */
export const cliBin = join(root, 'dist/src/console/bin.js');

/** The CLI's environment: configuration in `home` (XDG_CONFIG_HOME), alice's password, no colours. */
export function cliEnv(home: string): Record<string, string> {
  return {
    PATH: process.env.PATH ?? '',
    XDG_CONFIG_HOME: home,
    WARDEN_PASSWORD: USERS.alice!.password,
    NO_COLOR: '1',
  };
}

/** What one run of the CLI gave. */
export interface CliResult {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

/** Runs the built `warden` CLI with these arguments; `env` adds to or replaces its environment. */
export type WardenCli = (args: readonly string[], env?: Record<string, string>) => Promise<CliResult>;

export interface WardenCliOptions {
  /** Commands (by their arguments) that get `--engine lab` appended. None when absent. */
  readonly toLab?: (args: readonly string[]) => boolean;
  /** The most output a run may give (execFile's maxBuffer). */
  readonly maxBuffer?: number;
}

/**
 * A runner of the built CLI whose configuration lives in `home` (XDG_CONFIG_HOME), logging in as
 * alice, without colours; PATH is read at each run, so a test may change it.
 */
export function wardenCli(home: string, options: WardenCliOptions = {}): WardenCli {
  return (args, env = {}) =>
    new Promise((resolve) => {
      const all = options.toLab?.(args) ? [...args, '--engine', 'lab'] : [...args];
      execFile(
        process.execPath,
        [cliBin, ...all],
        {
          env: { ...cliEnv(home), ...env },
          ...(options.maxBuffer === undefined ? {} : { maxBuffer: options.maxBuffer }),
        },
        (error, stdout, stderr) => resolve({ code: error ? Number(error.code ?? 1) : 0, stdout, stderr }),
      );
    });
}

/** Every command but `connect` goes to the engine named lab. */
export const allButConnect = (args: readonly string[]): boolean => args[0] !== 'connect';

/** The CLI against a started administration harness, filled in by the hooks cliAgainstHarness registers. */
export interface CliSetup {
  readonly h: Harness;
  /** The console's home (XDG_CONFIG_HOME), removed after the tests. */
  readonly home: string;
  readonly warden: WardenCli;
  /** The environment the CLI runs with (cliEnv), for tests that spawn it themselves. */
  env(): Record<string, string>;
  /** `warden connect` to the harness as alice, naming the engine lab and accepting its fingerprint. */
  connectLab(): Promise<void>;
}

export interface CliSetupOptions extends WardenCliOptions {
  /** Prefix of the home's temporary directory name. */
  readonly prefix?: string;
  /** Runs once the home exists and before the harness starts (for programs on PATH, say). */
  readonly beforeStart?: (home: string) => void | Promise<void>;
  /** Options of the harness's server (proposals, connections, ...), made before it starts. */
  readonly server?: () => Partial<AdminServerOptions> | Promise<Partial<AdminServerOptions>>;
  /** Runs after the harness closes, before the home is removed. */
  readonly afterClose?: () => void;
}

/**
 * Registers before/after hooks in the current describe block: a console home, then a started
 * administration harness; both go away after the block. Read the fields inside tests.
 */
export function cliAgainstHarness(options: CliSetupOptions = {}): CliSetup {
  let h: Harness | undefined;
  let home: string | undefined;
  let run: WardenCli | undefined;
  const need = <T>(v: T | undefined, what: string): T => {
    if (v === undefined) throw new Error(`${what} is set up by the before hook of cliAgainstHarness`);
    return v;
  };
  const setup: CliSetup = {
    get h() {
      return need(h, 'the harness');
    },
    get home() {
      return need(home, 'the console home');
    },
    get warden() {
      return need(run, 'the CLI runner');
    },
    env: () => cliEnv(setup.home),
    async connectLab() {
      const { server, fingerprint } = setup.h;
      const args = ['connect', `127.0.0.1:${server.port}`, '--user', 'alice', '--name', 'lab'];
      const c = await setup.warden([...args, '--accept', fingerprint]);
      assert.equal(c.code, 0, c.stderr);
    },
  };
  before(async () => {
    home = mkdtempSync(join(tmpdir(), options.prefix ?? 'warden-console-'));
    run = wardenCli(home, options);
    await options.beforeStart?.(home);
    h = await startHarness((await options.server?.()) ?? {});
  });
  after(async () => {
    await h?.close();
    options.afterClose?.();
    if (home !== undefined) rmSync(home, { recursive: true, force: true });
  });
  return setup;
}

/** Adds the harness's users (alice, administrator; bob, auditor) to an engine's configuration directory. */
export async function addEngineUsers(configDir: string): Promise<void> {
  for (const [name, u] of Object.entries(USERS))
    await promisify(execFile)(
      process.execPath,
      [
        join(root, 'dist/src/engine/bin.js'),
        'user',
        'add',
        name,
        '--role',
        u.role,
        '--config-dir',
        configDir,
      ],
      { env: { PATH: process.env.PATH ?? '', WARDEN_PASSWORD: u.password } },
    );
}

/**
 * Remembers an engine for a console whose files are in `dir` (known-hosts.json, engines.json) under
 * `name`, its fingerprint pinned, as `warden connect --accept` would.
 */
export async function pinEngine(dir: string, name: string, engine: Engine): Promise<void> {
  const address = `127.0.0.1:${engine.server.port}`;
  await (await KnownHosts.open(join(dir, 'known-hosts.json'))).pin(address, engine.identity.fingerprint);
  await (await EngineList.open(join(dir, 'engines.json'))).save(name, {
    host: '127.0.0.1',
    port: engine.server.port,
  });
}

/** A real engine (unprivileged: no kernel backend), `warden console`'s server and Chromium. */
export interface WebConsole {
  readonly home: string;
  /** The engine running now (restartEngine replaces it). */
  readonly engine: Engine;
  readonly web: ConsoleServer;
  readonly browser: Browser;
  /** Starts the engine again, on `port` (0: any), after the test stopped it. */
  restartEngine(port: number): Promise<Engine>;
  close(): Promise<void>;
}

export interface WebConsoleOptions {
  /** Prefix of the home's temporary directory name. */
  readonly prefix: string;
  /** Runs after the engine starts and before the console server does (to pin the engine, say). */
  readonly beforeConsole?: (home: string, engine: Engine) => Promise<void>;
}

/** Starts a web console set-up; the engine's configuration is in HOME/etc, its state in HOME/state. */
export async function startWebConsole(options: WebConsoleOptions): Promise<WebConsole> {
  const home = mkdtempSync(join(tmpdir(), options.prefix));
  let engine: Engine | undefined;
  let web: ConsoleServer | undefined;
  let browser: Browser | undefined;
  const startEngine = (port: number) =>
    Engine.start({
      configDir: join(home, 'etc'),
      stateDir: join(home, 'state'),
      port,
      bindAddress: '127.0.0.1',
    });
  const close = async () => {
    await browser?.close();
    await web?.close();
    await engine?.stop();
    rmSync(home, { recursive: true, force: true });
  };
  try {
    await addEngineUsers(join(home, 'etc'));
    engine = await startEngine(0);
    await options.beforeConsole?.(home, engine);
    web = await startConsoleServer({
      staticDir: join(root, 'dist/web'),
      enginesPath: join(home, 'engines.json'),
      knownHostsPath: join(home, 'known-hosts.json'),
    });
    // Loaded here, so that the tests without a browser do not load playwright.
    const { launchChromium } = await import('./chromium.js');
    browser = await launchChromium();
  } catch (err) {
    await close();
    throw err;
  }
  const started = { web, browser };
  return {
    home,
    get engine() {
      return engine!;
    },
    ...started,
    restartEngine: async (port) => {
      engine = await startEngine(port);
      return engine;
    },
    close,
  };
}

/** Logs in to the engine named lab on the console's start page (`url`) and waits for the live log. */
export async function logInToLab(page: Page, url: string, user = 'alice'): Promise<void> {
  await page.goto(url);
  const card = page.locator('[data-engine="lab"]');
  await card.getByLabel('User').fill(user);
  await card.getByLabel('Password').fill(USERS[user]!.password);
  await card.getByRole('button', { name: 'Log in' }).click();
  await page.getByRole('heading', { name: 'Live log' }).waitFor();
}

/** A child process (Node) holding one TCP connection to a listener of this process. */
export interface ConnectedChild {
  readonly child: ChildProcess;
  /** The listener's port on 127.0.0.1. */
  readonly port: number;
  close(): void;
}

/** Starts a listener and a child that connects to it and waits, `marker` on its command line. */
export async function startConnectedChild(marker: string): Promise<ConnectedChild> {
  const accepted: Socket[] = [];
  const server: Server = createServer((s) => {
    accepted.push(s);
    s.on('error', () => {});
  });
  server.on('error', () => {});
  await new Promise<void>((ok) => server.listen(0, '127.0.0.1', ok));
  const port = (server.address() as { port: number }).port;
  const child = spawn(
    process.execPath,
    [
      '-e',
      'const s=require("net").connect(Number(process.argv[1]),"127.0.0.1",()=>console.log("up"));s.on("error",()=>process.exit(1));setInterval(()=>{},1000)',
      String(port),
      marker,
    ],
    { stdio: ['ignore', 'pipe', 'inherit'] },
  );
  const close = () => {
    child.kill();
    for (const s of accepted) s.destroy();
    server.close();
  };
  try {
    await new Promise<void>((ok, fail) => {
      child.stdout!.once('data', () => ok());
      child.once('error', fail);
      child.once('exit', (code) => fail(new Error(`the connecting child exited (${code})`)));
    });
  } catch (err) {
    close();
    throw err;
  }
  return { child, port, close };
}

/** A connection held for a prompt, as the enforcer hands it to the ask desk: curl to example.org:443. */
export const heldCurl: HeldConnection = {
  defaultVerdict: 'deny',
  direction: 'outgoing',
  protocol: 'tcp',
  application: '/usr/bin/curl',
  pid: 4242,
  commandLine: ['curl', 'https://example.org/'],
  user: 'alice',
  uid: 1000,
  local: '10.200.0.1:40000',
  remote: '93.184.215.14:443',
  remoteAddress: '93.184.215.14',
  remotePort: 443,
  hosts: ['example.org'],
  rule: 'ask everything',
};
