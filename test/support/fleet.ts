/**
 * A fleet for tests (issue 14, item 6): N real engines in unprivileged mode on 127.0.0.1 (the daemon's
 * own Engine.start, each with its own configuration and state directories and TLS identity), started
 * in parallel; a console home (XDG_CONFIG_HOME) that remembers engines with their pinned
 * fingerprints; and the built `warden` CLI run against it. The e2e, kernel and web fleet tests share it.
 */
import { type ChildProcess, execFile, type SpawnOptions, spawn } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { UserStore } from '../../src/admin/auth/users.js';
import { KnownHosts } from '../../src/client/known-hosts.js';
import { EngineList } from '../../src/console/engines.js';
import { Engine } from '../../src/engine/daemon.js';
import { USERS } from '../integration/admin-harness.js';
import { repoRoot } from '../repo-root.js';

const root = repoRoot(import.meta.url);
export const WARDEN_BIN = join(root, 'dist/src/console/bin.js');

/** A console's home: XDG_CONFIG_HOME for the CLI, and where its engines and known hosts live. */
export interface ConsoleHome {
  readonly dir: string;
  readonly enginesPath: string;
  readonly knownHostsPath: string;
  /** Remembers an engine by name (log in as `user`) with its fingerprint pinned, as `warden connect` does. */
  remember(name: string, host: string, port: number, fingerprint: string, user?: string): Promise<void>;
}

export function consoleHome(dir = mkdtempSync(join(tmpdir(), 'warden-fleet-console-'))): ConsoleHome {
  const enginesPath = join(dir, 'warden/engines.json');
  const knownHostsPath = join(dir, 'warden/known-hosts.json');
  return {
    dir,
    enginesPath,
    knownHostsPath,
    remember: async (name, host, port, fingerprint, user = 'alice') => {
      await (await KnownHosts.open(knownHostsPath)).pin(`${host}:${port}`, fingerprint);
      await (await EngineList.open(enginesPath)).save(name, { host, port, user });
    },
  };
}

/** users.json with the test users (alice administrator, bob auditor), cheap hashes; copied to each engine. */
export async function usersFile(dir: string): Promise<string> {
  const path = join(dir, 'users.json');
  const users = await UserStore.open(path, { scryptCost: { N: 2 ** 12, r: 8, p: 1 } });
  for (const [name, u] of Object.entries(USERS)) await users.add(name, u.role, u.password);
  return path;
}

export interface LoopbackFleet {
  /** Engine names e1..eN, in order. */
  readonly names: string[];
  readonly engines: Engine[];
  /** Stops one engine (it goes away, as a crashed host would); the others keep running. */
  stopEngine(i: number): Promise<void>;
  stop(): Promise<void>;
}

/** Starts `n` unprivileged engines under `dir` in parallel and has `home` remember them as e1..eN. */
export async function startLoopbackFleet(n: number, dir: string, home: ConsoleHome): Promise<LoopbackFleet> {
  const users = await usersFile(dir);
  const names = Array.from({ length: n }, (_, i) => `e${i + 1}`);
  const engines = await Promise.all(
    names.map((name) => {
      const configDir = join(dir, name, 'etc');
      mkdirSync(configDir, { recursive: true });
      copyFileSync(users, join(configDir, 'users.json'));
      return Engine.start({
        configDir,
        stateDir: join(dir, name, 'state'),
        port: 0,
        bindAddress: '127.0.0.1',
        // Several engines on one host: each its own pop-up port, not the one the settings name.
        services: { popupPort: 0 },
      });
    }),
  );
  // The engines file is written by one writer at a time (as the console does).
  for (const [i, e] of engines.entries())
    await home.remember(names[i]!, '127.0.0.1', e.server.port, e.identity.fingerprint);
  const stopped = new Set<number>();
  const stopEngine = async (i: number) => {
    if (stopped.has(i)) return;
    stopped.add(i);
    await engines[i]!.stop();
  };
  return {
    names,
    engines,
    stopEngine,
    stop: async () => void (await Promise.all(engines.map((_, i) => stopEngine(i)))),
  };
}

export interface WardenRun {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

const env = (home: ConsoleHome, extra: Record<string, string>) => ({
  PATH: process.env.PATH ?? '',
  XDG_CONFIG_HOME: home.dir,
  WARDEN_PASSWORD: USERS.alice!.password,
  NO_COLOR: '1',
  ...extra,
});

/** Runs the built `warden` CLI with `home` as its configuration. */
export function warden(
  home: ConsoleHome,
  args: string[],
  extra: Record<string, string> = {},
): Promise<WardenRun> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [WARDEN_BIN, ...args],
      { env: env(home, extra), maxBuffer: 16 * 1024 * 1024 },
      (error, stdout, stderr) => resolve({ code: error ? Number(error.code ?? 1) : 0, stdout, stderr }),
    );
  });
}

/**
 * Starts the CLI and lets the test act when its output shows `line` (e.g. kill an engine once the
 * canary is confirmed); resolves with the whole run.
 */
export function wardenWatching(
  home: ConsoleHome,
  args: string[],
  line: RegExp,
  onLine: () => void | Promise<void>,
  /** How to start it (default: here; kernel tests start it in a namespace with NetnsPair.spawn). */
  launch: (command: string, args: string[], options: SpawnOptions) => ChildProcess = spawn,
): { child: ChildProcess; done: Promise<WardenRun & { sawLine: boolean }> } {
  const child = launch(process.execPath, [WARDEN_BIN, ...args], {
    env: env(home, {}),
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  let sawLine = false;
  child.stdout!.on('data', (d) => {
    stdout += d;
    if (!sawLine && line.test(stdout)) {
      sawLine = true;
      void onLine();
    }
  });
  child.stderr!.on('data', (d) => (stderr += d));
  const done = new Promise<WardenRun & { sawLine: boolean }>((resolve) => {
    child.on('error', (e) => resolve({ code: -1, stdout, stderr: `${stderr}${e.message}`, sawLine }));
    child.on('close', (code) => resolve({ code: code ?? -1, stdout, stderr, sawLine }));
  });
  return { child, done };
}
