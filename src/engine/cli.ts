/**
 * The command tree of `wardend` (bin.ts runs it; the man page generator reads it): `wardend run`
 * starts the engine (SIGHUP reloads the configuration files, SIGTERM and SIGINT stop it cleanly);
 * `wardend fingerprint` prints the TLS fingerprint consoles pin; `wardend user add|remove|list|passwd`
 * manages the console users. Its own log lines go to stderr (log-format.ts: human on a terminal,
 * JSON for a service manager).
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Command } from 'commander';
import { UserStore } from '../admin/auth/users.js';
import { loadOrCreateIdentity } from '../admin/tls-identity.js';
import { ErrorCode, WardenError } from '../errors.js';
import type { Role } from '../protocol/methods.js';
import { DEFAULT_DIRS, DEFAULT_LOCAL_TOKEN, Engine, type EngineLog, VERSION } from './daemon.js';
import { startKernelBackend } from './kernel-backend.js';
import { chooseLogFormat, engineLog } from './log-format.js';
import { installCrashHandler } from './services/crash-reports.js';

/** The engine's log; `run` sets its format (--log-format) before anything is logged. */
let log: EngineLog = engineLog('json', (line) => process.stderr.write(line));

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
  readonly logFormat?: string;
}

function portOption(text: string | undefined): number | undefined {
  if (text === undefined) return undefined;
  if (!/^[0-9]{1,5}$/.test(text) || Number(text) > 65535) {
    throw new WardenError(ErrorCode.USAGE, `--port "${text}" is not a port number (0-65535)`);
  }
  return Number(text);
}

/** What a configuration file holds now: its path when it exists, else that the defaults are in force. */
function fileLine(dir: string, file: string, what: string): string {
  const path = join(dir, file);
  return existsSync(path)
    ? `${what} ${path}`
    : `${what}: the built-in defaults (no ${path} yet; written on the first change)`;
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
    `${fileLine(o.configDir, 'policy.yaml', 'policy')}: ${policy.rules.length} rules, mode ${policy.mode}, ` +
      `incoming ${policy.defaults.incoming.action} and outgoing ${policy.defaults.outgoing.action} by default`,
    fileLine(o.configDir, 'settings.yaml', 'settings'),
    `state ${o.stateDir} (TLS identity, local token, logs.db)`,
    o.kernel
      ? "enforcing: replies and Warden's internal rules always pass"
      : 'unprivileged mode (--no-kernel): nothing is enforced',
    `connect a console on this host (as root):  ${tokenPrefix}${warden} connect 127.0.0.1:${p} --local`,
    remote
      ? `from elsewhere:  ${warden} connect HOST:${p} --user NAME  (add users with: wardend user add NAME)`
      : 'remote administration is off (settings remoteAdministration.enabled): consoles on this host only',
    'stop with Ctrl-C or SIGTERM; SIGHUP re-reads the files',
    '',
  ].join('\n');
}

async function run(o: RunOptions): Promise<number> {
  log = engineLog(chooseLogFormat(o.logFormat, process.env, process.stderr.isTTY === true), (line) =>
    process.stderr.write(line),
  );
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
  // SIGTERM and SIGINT are handled from before the start: one that comes while the engine starts (or
  // right after its greeting) stops it cleanly once it is up, instead of killing it half-started.
  let engine: Engine | undefined;
  let requested: string | undefined;
  let stopping = false;
  let finish: (status: number) => void = () => {};
  const done = new Promise<number>((resolve) => {
    finish = resolve;
  });
  const stop = (why: string) => {
    if (engine === undefined) {
      requested ??= why;
      return;
    }
    if (stopping) return;
    stopping = true;
    log('info', `${why}: stopping`);
    engine.stop().then(
      () => finish(0),
      (e: Error) => {
        log('error', `stop failed: ${e.message}`);
        finish(1);
      },
    );
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
  engine = await Engine.start({
    configDir: o.configDir,
    stateDir: o.stateDir,
    ...(port !== undefined ? { port } : {}),
    ...(o.bind !== undefined ? { bindAddress: o.bind } : {}),
    ...(o.kernel ? { kernel: startKernelBackend } : {}),
    log,
  });
  const started = engine;
  process.stdout.write(greeting(started, o));
  if (requested !== undefined) stop(requested);
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
    void started.reloadFiles();
  });
  return done;
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

/** The `wardend` command tree; each action hands its result to `setPending`. */
export function buildWardendProgram(setPending: (p: Promise<number>) => void): Command {
  const program = new Command('wardend')
    .description('Warden engine: enforces the policy, serves the administration protocol')
    .version(VERSION)
    .exitOverride();
  const dirs = (c: Command) =>
    c
      .option('--config-dir <dir>', 'policy.yaml, settings.yaml, users.json', DEFAULT_DIRS.config)
      .option('--state-dir <dir>', 'TLS identity, local token, logs', DEFAULT_DIRS.state);

  dirs(program.command('run').description('start the engine (the default command)'))
    .option('--port <n>', 'application port (default: settings applicationPort)')
    .option('--bind <address>', 'address to listen on (default: all)')
    .option('--no-kernel', 'unprivileged mode: serve the console, enforce nothing')
    .option(
      '--log-format <format>',
      'human, json or auto: json when stderr is not a terminal or under systemd (JOURNAL_STREAM); env WARDEN_LOG_FORMAT',
    )
    .addHelpText(
      'after',
      `
Examples:
  sudo wardend run
  wardend run --no-kernel --port 44334 --config-dir ./etc --state-dir ./state
  sudo wardend run --log-format json 2>>/var/log/wardend.json`,
    )
    .action((o: RunOptions) => {
      setPending(run(o));
    });
  dirs(program.command('fingerprint').description("print the engine's TLS fingerprint (made on first use)"))
    .addHelpText('after', '\nExamples:\n  wardend fingerprint\n  wardend fingerprint --state-dir ./state')
    .action((o: DirOptions) => {
      setPending(fingerprint(o));
    });
  program.addHelpText(
    'after',
    `
Examples:
  sudo wardend                      # the same as: wardend run
  wardend fingerprint
  WARDEN_PASSWORD=... wardend user add alice --role administrator`,
  );
  const user = program
    .command('user')
    .description('console users: add, remove, list, passwd')
    .addHelpText(
      'after',
      '\nExamples:\n  wardend user add alice --role auditor\n  wardend user list\n  wardend user passwd alice\n  wardend user remove alice',
    );
  const users = (o: DirOptions) => UserStore.open(join(o.configDir, 'users.json'));
  dirs(user.command('add <name>').description('add a user (password from WARDEN_PASSWORD or a prompt)'))
    .option('--role <role>', 'administrator or auditor', 'administrator')
    .addHelpText(
      'after',
      '\nExamples:\n  wardend user add alice\n  WARDEN_PASSWORD=s3cret wardend user add bob --role auditor',
    )
    .action((name: string, o: DirOptions & { role: string }) => {
      setPending(
        (async () => {
          await (await users(o)).add(name, o.role as Role, await readPassword(name));
          process.stdout.write(`user ${name} added (${o.role})\n`);
          return 0;
        })(),
      );
    });
  dirs(user.command('passwd <name>').description("set a user's password"))
    .addHelpText('after', '\nExamples:\n  wardend user passwd alice')
    .action((name: string, o: DirOptions) => {
      setPending(
        (async () => {
          await (await users(o)).setPassword(name, await readPassword(name));
          process.stdout.write(`password of ${name} changed\n`);
          return 0;
        })(),
      );
    });
  dirs(user.command('remove <name>').description('remove a user'))
    .addHelpText('after', '\nExamples:\n  wardend user remove alice')
    .action((name: string, o: DirOptions) => {
      setPending(
        (async () => {
          await (await users(o)).remove(name);
          process.stdout.write(`user ${name} removed\n`);
          return 0;
        })(),
      );
    });
  dirs(user.command('list').description('list users and roles'))
    .addHelpText('after', '\nExamples:\n  wardend user list\n  wardend user list --config-dir ./etc')
    .action((o: DirOptions) => {
      setPending(
        (async () => {
          for (const u of (await users(o)).list()) process.stdout.write(`${u.name}\t${u.role}\n`);
          return 0;
        })(),
      );
    });

  return program;
}
