#!/usr/bin/env node
/**
 * `wardend`, the engine. `wardend run` starts it (SIGHUP reloads the configuration files, SIGTERM
 * and SIGINT stop it cleanly); `wardend fingerprint` prints the TLS fingerprint consoles pin;
 * `wardend user add|remove|list|passwd` manages the console users. Its own log lines go to stderr
 * as JSON. The only file here that sets the exit status: 0 success, 1 failure, 2 usage error.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Command, CommanderError } from 'commander';
import { UserStore } from '../admin/auth/users.js';
import { loadOrCreateIdentity } from '../admin/tls-identity.js';
import { ErrorCode, formatProblem, WardenError } from '../errors.js';
import type { Role } from '../protocol/methods.js';
import { DEFAULT_DIRS, DEFAULT_LOCAL_TOKEN, Engine, type EngineLog, VERSION } from './daemon.js';
import { startKernelBackend } from './kernel-backend.js';
import { installCrashHandler } from './services/crash-reports.js';

const log: EngineLog = (level, message, fields = {}) =>
  process.stderr.write(`${JSON.stringify({ time: new Date().toISOString(), level, message, ...fields })}\n`);

/** How often the engine started by `npm start` checks that its parent is still there. */
const PARENT_POLL_MS = 500;

/** Fields of /proc/PID/stat after the command name: [state, ppid, ...]; undefined when the pid is gone. */
function procStat(pid: number): string[] | undefined {
  try {
    const text = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return text.slice(text.lastIndexOf(')') + 2).split(' ');
  } catch {
    return undefined;
  }
}

/** The start time of a process (field 22 of /proc/PID/stat), so a reused pid is not taken for it. */
function procStartTime(pid: number): string | undefined {
  const f = procStat(pid);
  return f === undefined || f[0] === 'Z' ? undefined : f[19];
}

/** Up to `n` ancestors of this process, nearest first, stopping before pid 1. */
function ancestors(n: number): { pid: number; start: string }[] {
  const out: { pid: number; start: string }[] = [];
  let pid = process.ppid;
  while (out.length < n && pid > 1) {
    const start = procStartTime(pid);
    if (start === undefined) break;
    out.push({ pid, start });
    pid = Number(procStat(pid)?.[1] ?? 0);
  }
  return out;
}

interface DirOptions {
  readonly configDir: string;
  readonly stateDir: string;
}

interface RunOptions extends DirOptions {
  readonly port?: string;
  readonly bind?: string;
  readonly kernel: boolean;
}

function portOption(text: string | undefined): number | undefined {
  if (text === undefined) return undefined;
  if (!/^[0-9]{1,5}$/.test(text) || Number(text) > 65535) {
    throw new WardenError(ErrorCode.USAGE, `--port "${text}" is not a port number (0-65535)`);
  }
  return Number(text);
}

/** What the user sees on start: where the engine listens, what it enforces, how to connect a console. */
function greeting(engine: Engine, o: RunOptions): string {
  const p = engine.server.port;
  const policy = engine.config.policy();
  const warden = process.env.WARDEN_CONSOLE_COMMAND ?? 'warden';
  const tokenPrefix =
    engine.localTokenPath === DEFAULT_LOCAL_TOKEN ? '' : `WARDEN_LOCAL_TOKEN_FILE=${engine.localTokenPath} `;
  const remote = engine.config.settings().remoteAdministration.enabled;
  return [
    `wardend ${VERSION} listening on port ${p} (TCP and UDP)`,
    `fingerprint ${engine.identity.fingerprint}`,
    `configuration ${join(o.configDir, 'policy.yaml')}: ${policy.rules.length} rules, mode ${policy.mode}, ` +
      `incoming ${policy.defaults.incoming.action} and outgoing ${policy.defaults.outgoing.action} by default`,
    o.kernel
      ? "enforcing: replies and Warden's internal rules always pass"
      : 'unprivileged mode (--no-kernel): nothing is enforced',
    `connect a console on this host (as root):  ${tokenPrefix}${warden} connect 127.0.0.1:${p} --local`,
    remote
      ? `from elsewhere:  ${warden} connect HOST:${p} --user NAME  (add users with: wardend user add NAME)`
      : 'remote administration is off (settings remoteAdministration.enabled): consoles on this host only',
    '',
  ].join('\n');
}

async function run(o: RunOptions): Promise<number> {
  if (o.kernel && process.getuid?.() !== 0) {
    throw new WardenError(
      ErrorCode.USAGE,
      'wardend must run as root to drive the kernel (nftables and NFQUEUE)',
      {
        suggestion:
          'Run it as root (sudo wardend run), or with --no-kernel to serve the console without enforcing.',
      },
    );
  }
  const port = portOption(o.port);
  // An unhandled error ends the engine with a crash report for warden-assist (docs/services.md).
  installCrashHandler(o.stateDir, 'wardend', VERSION, (error, reportPath, writeError) => {
    const stack = (error as Error)?.stack ?? String(error);
    log('error', `unhandled error, the engine stops: ${stack}`, {
      ...(reportPath !== undefined ? { crashReport: reportPath } : { crashReportFailed: String(writeError) }),
    });
    process.exit(1);
  });
  const engine = await Engine.start({
    configDir: o.configDir,
    stateDir: o.stateDir,
    ...(port !== undefined ? { port } : {}),
    ...(o.bind !== undefined ? { bindAddress: o.bind } : {}),
    ...(o.kernel ? { kernel: startKernelBackend } : {}),
    log,
  });
  process.stdout.write(greeting(engine, o));
  return new Promise<number>((resolve) => {
    let stopping = false;
    const stop = (signal: string) => {
      if (stopping) return;
      stopping = true;
      log('info', `${signal}: stopping`);
      engine.stop().then(
        () => resolve(0),
        (e: Error) => {
          log('error', `stop failed: ${e.message}`);
          resolve(1);
        },
      );
    };
    process.on('SIGTERM', () => stop('SIGTERM'));
    process.on('SIGINT', () => stop('SIGINT'));
    // Started by `npm start` (scripts/start.sh sets WARDEN_STOP_WITH_PARENT=1): the engine stops when
    // the command that started it is gone, however it went (a signal npm did not pass on, SIGKILL), so
    // no orphaned engine goes on enforcing. Node has no PR_SET_PDEATHSIG: the parent is watched by pid
    // and start time in /proc (npm's `sh -c` and start.sh exec, so the parent is npm itself, and npm
    // passes SIGINT and SIGTERM on to the engine).
    if (process.env.WARDEN_STOP_WITH_PARENT === '1') {
      const watched = ancestors(1);
      const watch = setInterval(() => {
        const gone = watched.find((a) => procStartTime(a.pid) !== a.start);
        if (gone === undefined) return;
        clearInterval(watch);
        stop(`parent process ${gone.pid} exited`);
      }, PARENT_POLL_MS);
      watch.unref();
    }
    process.on('SIGHUP', () => {
      engine.config
        .reload()
        .then(() => engine.reload())
        .catch((e: Error) => log('error', `reload refused, the configuration in force stays: ${e.message}`));
    });
  });
}

async function fingerprint(o: DirOptions): Promise<number> {
  const identity = await loadOrCreateIdentity(join(o.stateDir, 'tls'));
  process.stdout.write(`${identity.fingerprint}\n`);
  return 0;
}

async function readPassword(name: string): Promise<string> {
  const fromEnv = process.env.WARDEN_PASSWORD;
  if (fromEnv !== undefined) return fromEnv;
  const { ask, canPrompt } = await import('../console/prompt.js');
  if (!canPrompt()) {
    throw new WardenError(ErrorCode.USAGE, `no password for ${name}`, {
      suggestion: 'Set WARDEN_PASSWORD or run in a terminal (passwords are never taken from arguments).',
    });
  }
  return ask(`New password for ${name}: `, { secret: true });
}

const program = new Command('wardend')
  .description('Warden engine: enforces the policy, serves the administration protocol')
  .version(VERSION)
  .exitOverride();
const dirs = (c: Command) =>
  c
    .option('--config-dir <dir>', 'policy.yaml, settings.yaml, users.json', DEFAULT_DIRS.config)
    .option('--state-dir <dir>', 'TLS identity, local token, logs', DEFAULT_DIRS.state);
let pending: Promise<number> | undefined;

dirs(program.command('run').description('start the engine (the default command)'))
  .option('--port <n>', 'application port (default: settings applicationPort)')
  .option('--bind <address>', 'address to listen on (default: all)')
  .option('--no-kernel', 'unprivileged mode: serve the console, enforce nothing')
  .action((o: RunOptions) => {
    pending = run(o);
  });
dirs(
  program.command('fingerprint').description("print the engine's TLS fingerprint (made on first use)"),
).action((o: DirOptions) => {
  pending = fingerprint(o);
});
const user = program.command('user').description('console users: add, remove, list, passwd');
const users = (o: DirOptions) => UserStore.open(join(o.configDir, 'users.json'));
dirs(user.command('add <name>').description('add a user (password from WARDEN_PASSWORD or a prompt)'))
  .option('--role <role>', 'administrator or auditor', 'administrator')
  .action((name: string, o: DirOptions & { role: string }) => {
    pending = (async () => {
      await (await users(o)).add(name, o.role as Role, await readPassword(name));
      process.stdout.write(`user ${name} added (${o.role})\n`);
      return 0;
    })();
  });
dirs(user.command('passwd <name>').description("set a user's password")).action(
  (name: string, o: DirOptions) => {
    pending = (async () => {
      await (await users(o)).setPassword(name, await readPassword(name));
      process.stdout.write(`password of ${name} changed\n`);
      return 0;
    })();
  },
);
dirs(user.command('remove <name>').description('remove a user')).action((name: string, o: DirOptions) => {
  pending = (async () => {
    await (await users(o)).remove(name);
    process.stdout.write(`user ${name} removed\n`);
    return 0;
  })();
});
dirs(user.command('list').description('list users and roles')).action((o: DirOptions) => {
  pending = (async () => {
    for (const u of (await users(o)).list()) process.stdout.write(`${u.name}\t${u.role}\n`);
    return 0;
  })();
});

function report(error: unknown): number {
  if (error instanceof WardenError) {
    process.stderr.write(`wardend: ${error.message}\n`);
    for (const p of error.problems) process.stderr.write(`  ${formatProblem(p)}\n`);
    if (error.suggestion) process.stderr.write(`hint: ${error.suggestion}\n`);
    return error.code === ErrorCode.USAGE ? 2 : 1;
  }
  const e = error as NodeJS.ErrnoException;
  if (e?.code === 'EADDRINUSE') {
    process.stderr.write(`wardend: the application port is taken by another program (${e.message})\n`);
    return 1;
  }
  process.stderr.write(`wardend: unexpected failure: ${e?.stack ?? String(error)}\n`);
  return 1;
}

async function main(): Promise<number> {
  const argv = process.argv.length <= 2 ? [...process.argv, 'run'] : process.argv;
  try {
    await program.parseAsync(argv);
  } catch (error) {
    if (error instanceof CommanderError) return error.exitCode === 0 ? 0 : 2;
    return report(error);
  }
  try {
    return (await pending) ?? 0;
  } catch (error) {
    return report(error);
  }
}

process.exitCode = await main();
