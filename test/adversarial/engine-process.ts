/**
 * For the adversarial tests: the real `wardend run --no-kernel` as a child process on loopback, with
 * its pop-up and metrics ports moved to free ones (so parallel runs do not collide), a console that
 * logs in with its local token, and attack scripts run by another uid (nobody) from a directory it
 * can read. The engine is a separate process so that anything that would stop it shows as its exit.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import {
  chmodSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  writeFileSync,
} from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { EngineClient } from '../../src/client/engine-client.js';
import { NODE, useFixtureIdentity, WARDEND } from '../kernel/wardend.js';

export const NOBODY = 65534;

/** A TCP port free on 127.0.0.1 now (bound and released). */
export async function freePort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const port = (s.address() as { port: number }).port;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

export interface EngineProcess {
  readonly child: ChildProcess;
  readonly dir: string;
  readonly port: number;
  readonly popupPort: number;
  readonly metricsPort: number;
  output(): string;
  /** Whether the engine process still runs. */
  alive(): boolean;
  /** Crash reports the engine wrote. */
  crashReports(): string[];
  /** A console logged in as root with the local token. */
  console(): Promise<EngineClient>;
  /** Sends `signal` and resolves with the exit code (null when killed by a signal). */
  stop(signal?: NodeJS.Signals): Promise<number | null>;
}

/** Starts wardend --no-kernel on an ephemeral port; resolves once it listens. */
export async function startEngine(extraSettings = ''): Promise<EngineProcess> {
  const dir = mkdtempSync(join(tmpdir(), 'warden-adv-'));
  const popupPort = await freePort();
  const metricsPort = await freePort();
  mkdirSync(join(dir, 'etc'), { recursive: true });
  writeFileSync(
    join(dir, 'etc/settings.yaml'),
    `blockedPopups:\n  port: ${popupPort}\nmetrics:\n  enabled: true\n  port: ${metricsPort}\n${extraSettings}`,
  );
  useFixtureIdentity(join(dir, 'state'));
  const child = spawn(
    NODE,
    [WARDEND, 'run', '--no-kernel', '--port', '0', '--bind', '127.0.0.1'].concat([
      '--config-dir',
      join(dir, 'etc'),
      '--state-dir',
      join(dir, 'state'),
    ]),
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let out = '';
  child.stdout!.on('data', (d) => (out += d));
  child.stderr!.on('data', (d) => (out += d));
  const end = Date.now() + 15_000;
  let port = 0;
  while (port === 0) {
    const m = /listening on port (\d+)/.exec(out);
    if (m) port = Number(m[1]);
    else if (Date.now() > end || child.exitCode !== null) throw new Error(`wardend did not start: ${out}`);
    else await new Promise((r) => setTimeout(r, 20));
  }
  // The pop-up endpoint and the metrics endpoint start just after the greeting.
  while (!(await listening(popupPort)) || !(await listening(metricsPort))) {
    if (Date.now() > end) throw new Error(`pop-up or metrics endpoint did not start: ${out}`);
    await new Promise((r) => setTimeout(r, 50));
  }
  const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
  return {
    child,
    dir,
    port,
    popupPort,
    metricsPort,
    output: () => out,
    alive: () => child.exitCode === null && child.signalCode === null,
    crashReports: () => {
      const d = join(dir, 'state/crash-reports');
      return existsSync(d) ? readdirSync(d) : [];
    },
    console: async () => {
      const c = await EngineClient.connect({
        host: '127.0.0.1',
        port,
        verifyFingerprint: async () => {},
        timeoutMs: 10_000,
      });
      await c.login({ localToken: readFileSync(join(dir, 'state/local-token'), 'utf8').trim() });
      return c;
    },
    stop: async (signal = 'SIGTERM') => {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
      const t = setTimeout(() => child.kill('SIGKILL'), 15_000);
      const code = await exited;
      clearTimeout(t);
      return code;
    },
  };
}

async function listening(port: number): Promise<boolean> {
  const { connect } = await import('node:net');
  return new Promise((resolve) => {
    const s = connect(port, '127.0.0.1');
    s.on('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.on('error', () => resolve(false));
  });
}

/**
 * Runs `source` (an ES module using only node: modules) with node as user nobody, with `args`
 * (JSON) in process.argv[2]; resolves with its stdout parsed as JSON (its last line).
 */
export async function runAsNobody(source: string, args: unknown, timeoutMs = 45_000): Promise<unknown> {
  const dir = mkdtempSync(join(tmpdir(), 'warden-adv-nobody-'));
  chmodSync(dir, 0o755);
  const file = join(dir, 'attack.mjs');
  writeFileSync(file, source, { mode: 0o644 });
  const child = spawn(NODE, [file, JSON.stringify(args)], {
    uid: NOBODY,
    gid: NOBODY,
    cwd: dir,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  let err = '';
  child.stdout!.on('data', (d) => (out += d));
  child.stderr!.on('data', (d) => (err += d));
  const t = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
  const code = await new Promise<number | null>((r) => child.once('exit', (c) => r(c)));
  clearTimeout(t);
  if (code !== 0) throw new Error(`attack as nobody exited ${code}: ${err}`);
  const last = out.trim().split('\n').pop() ?? 'null';
  return JSON.parse(last);
}
