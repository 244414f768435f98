/**
 * Opening a logged-in connection to an engine for a console command:
 * resolve the engine by name or address, pin or check its fingerprint, and
 * log in with a password (from WARDEN_PASSWORD or a prompt, never argv) or
 * the local administrator token.
 */
import { X509Certificate } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import type { Command } from 'commander';
import { EngineClient } from '../client/engine-client.js';
import {
  defaultKnownHostsPath,
  fingerprintMismatchError,
  fingerprintUnknownError,
  KnownHosts,
  normalizeFingerprint,
} from '../client/known-hosts.js';
import { readLocalToken } from '../client/local-token.js';
import { ErrorCode, WardenError } from '../errors.js';
import { fingerprintOfDer } from '../protocol/fingerprint.js';
import { type EngineEntry, EngineList, hostPortKey } from './engines.js';
import type { CommandIo, CommandStatus } from './io.js';
import { ask, canPrompt } from './prompt.js';

/** Options every command that talks to an engine takes. */
export interface RemoteOptions {
  readonly engine?: string;
  readonly user?: string;
  readonly local?: boolean;
  readonly accept?: string;
}

/** Adds --engine, --user and --local to a command. */
export function remoteOptions(cmd: Command): Command {
  return cmd
    .option(
      '--engine <name|host[:port]>',
      'engine to talk to (a name from `warden engines list`, or an address); default: the default engine',
    )
    .option('--user <name>', 'log in as this user (password from WARDEN_PASSWORD or a prompt)')
    .option('--local', 'log in as the local administrator with the root-only token file');
}

/** Where the engine keeps its local administrator token (WARDEN_LOCAL_TOKEN_FILE overrides). */
export function localTokenPath(): string {
  return process.env.WARDEN_LOCAL_TOKEN_FILE ?? '/var/lib/warden/local-token';
}

/** Hosts that can only be this machine. */
function isLoopback(host: string): boolean {
  return host === 'localhost' || host === '::1' || /^127\./.test(host);
}

/**
 * The fingerprint of the engine's certificate beside the local token (<state>/tls/cert.pem), or
 * undefined when it cannot be read. Whoever can read the token is root on the engine host and may
 * trust that file as much as the token: a local login needs no fingerprint to be accepted by hand.
 */
async function localEngineFingerprint(): Promise<string | undefined> {
  try {
    const pem = await readFile(join(dirname(localTokenPath()), 'tls', 'cert.pem'), 'utf8');
    return fingerprintOfDer(new X509Certificate(pem).raw);
  } catch {
    return undefined;
  }
}

/**
 * A password asked once for several engines (`warden fleet`), kept in this process's memory only:
 * never in process.env, which every child process (a pager, a browser) would inherit.
 */
let promptedPassword: string | undefined;

/** Remembers the password the user typed for the engines this command opens. */
export function usePromptedPassword(password: string): void {
  promptedPassword = password;
}

/** Connects and logs in. With `firstUse`, an unknown engine may be pinned (--accept or a prompt). */
export async function openEngine(
  o: RemoteOptions,
  io: CommandIo,
  options: {
    firstUse?: boolean;
    engines?: EngineList;
    /** An engine not (yet) in the list: `warden connect` remembers it only after a successful login. */
    target?: { name: string; entry: EngineEntry };
    /** Connection and request timeout in ms (default: EngineClient's). */
    timeoutMs?: number;
  } = {},
): Promise<{ client: EngineClient; name: string; entry: EngineEntry }> {
  const { name, entry } = options.target ?? (options.engines ?? (await EngineList.open())).resolve(o.engine);
  const key = hostPortKey(entry);
  const knownPath = defaultKnownHostsPath();
  const known = await KnownHosts.open(knownPath);
  const client = await EngineClient.connect({
    host: entry.host,
    port: entry.port,
    ...(options.timeoutMs !== undefined ? { timeoutMs: options.timeoutMs } : {}),
    verifyFingerprint: async (fp) => {
      const check = known.check(key, fp);
      if (check.status === 'known') return;
      if (check.status === 'changed') throw fingerprintMismatchError(key, check.pinned, fp, knownPath);
      const accepted = o.accept === undefined ? undefined : normalizeFingerprint(o.accept);
      if (o.accept !== undefined && accepted === undefined) {
        throw new WardenError(
          ErrorCode.USAGE,
          `--accept "${o.accept}" is not a SHA-256 fingerprint (SHA256:AB:CD:...)`,
        );
      }
      if (accepted !== undefined) {
        if (accepted !== fp) throw fingerprintUnknownError(key, fp);
      } else if (o.local && isLoopback(entry.host) && (await localEngineFingerprint()) === fp) {
        // Root on the engine host: the certificate is the one in the engine's own state directory.
      } else if (options.firstUse && canPrompt()) {
        io.err(`The engine at ${key} is not known yet. Its certificate fingerprint is:\n  ${fp}`);
        io.err('Compare it with the one wardend printed when it started (or `wardend --fingerprint` there).');
        const answer = (await ask('Trust this engine and remember it? (yes/no) ')).trim().toLowerCase();
        if (answer !== 'yes' && answer !== 'y') throw fingerprintUnknownError(key, fp);
      } else {
        throw fingerprintUnknownError(key, fp);
      }
      await known.pin(key, fp);
      io.err(`Pinned ${fp} for ${key} in ${knownPath}.`);
    },
  });
  try {
    const user = o.local ? undefined : (o.user ?? entry.user);
    if (user === undefined) {
      const token = await readLocalToken(localTokenPath());
      if (token === null) {
        throw new WardenError(
          ErrorCode.AUTH_FAILED,
          `cannot read the local administrator token ${localTokenPath()}`,
          {
            suggestion: 'Run as root on the engine host, or log in with --user NAME.',
          },
        );
      }
      await client.login({ localToken: token });
    } else {
      const password =
        process.env.WARDEN_PASSWORD ??
        promptedPassword ??
        (canPrompt() ? await ask(`Password for ${user}@${key}: `, { secret: true }) : undefined);
      if (password === undefined) {
        throw new WardenError(ErrorCode.USAGE, `no password for ${user}`, {
          suggestion: 'Set WARDEN_PASSWORD, or run in a terminal to be asked.',
        });
      }
      await client.login({ user, password });
    }
  } catch (e) {
    client.close();
    throw e;
  }
  return { client, name, entry };
}

/** Opens a logged-in connection for one command, runs `fn` with it and always closes it. */
export async function withEngine(
  o: RemoteOptions,
  io: CommandIo,
  fn: (client: EngineClient) => Promise<CommandStatus>,
): Promise<CommandStatus> {
  const { client } = await openEngine(o, io);
  try {
    return await fn(client);
  } finally {
    client.close();
  }
}

/**
 * For commands that keep listening (logs --follow, asks watch): resolves 0 on Ctrl-C or SIGTERM
 * (closing the connection), 1 when the engine closes it; `stop` ends what the command started.
 */
export function untilInterrupted(
  client: EngineClient,
  io: CommandIo,
  stop: () => void = () => {},
): Promise<CommandStatus> {
  return new Promise<CommandStatus>((resolve) => {
    let ending = false;
    const interrupted = () => {
      ending = true; // our own close below is not the engine closing on us
      stop();
      resolve(0);
      client.close();
    };
    process.once('SIGINT', interrupted);
    process.once('SIGTERM', interrupted);
    client.onClose((reason) => {
      if (ending) return;
      io.err(`(connection closed: ${reason})`);
      stop();
      resolve(1);
    });
  });
}
