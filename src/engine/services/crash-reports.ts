/**
 * Crash reports. The engine writes one JSON file per unhandled error into <stateDir>/crash-reports/
 * (directory 0700, files 0600, written atomically and synchronously: the process is about to exit).
 * The crash assistant (`warden-assist`) uploads pending reports to settings crashReports.server, by
 * POST of the report as JSON, only when crashReports.sendingAllowed is true; a report is deleted
 * after a 2xx answer and kept otherwise. Uploads leave the host as the assistant, not as the engine:
 * the internal rule "crash reports" allows only the assistant to reach the crash server.
 */
import { spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import {
  closeSync,
  fsyncSync,
  mkdirSync,
  openSync,
  readdirSync,
  readFileSync,
  renameSync,
  unlinkSync,
  writeSync,
} from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { ErrorCode, WardenError } from '../../errors.js';
import type { Settings } from '../../settings/index.js';
import type { ProxyRoute } from '../../settings/proxy.js';
import { trackAssistant } from '../own-parts.js';
import { httpRequest } from './http-client.js';

export const CRASH_DIR = 'crash-reports';

/** One crash report as written and as uploaded. */
export interface CrashReport {
  readonly format: 1;
  readonly id: string;
  readonly program: string;
  readonly version: string;
  /** ISO 8601 instant of the crash. */
  readonly time: string;
  readonly error: { readonly name: string; readonly message: string; readonly stack: string };
  /** 'uncaughtException' or 'unhandledRejection'. */
  readonly origin: string;
  readonly node: string;
  readonly platform: string;
  readonly hostname: string;
  readonly pid: number;
  readonly uptimeSeconds: number;
}

function describe(error: unknown): CrashReport['error'] {
  if (error instanceof Error) {
    return {
      name: error.name,
      message: error.message,
      stack: error.stack ?? `${error.name}: ${error.message}`,
    };
  }
  const text = (() => {
    try {
      return typeof error === 'string' ? error : JSON.stringify(error);
    } catch {
      return String(error);
    }
  })();
  return { name: 'NonError', message: String(text), stack: String(text) };
}

/** Builds the report for an error (pure apart from the clock and process facts). */
export function crashReport(error: unknown, origin: string, program: string, version: string): CrashReport {
  return {
    format: 1,
    id: randomUUID(),
    program,
    version,
    time: new Date().toISOString(),
    error: describe(error),
    origin,
    node: process.version,
    platform: `${process.platform} ${process.arch}`,
    hostname: hostname(),
    pid: process.pid,
    uptimeSeconds: Math.round(process.uptime()),
  };
}

/** Writes a report synchronously and atomically into <stateDir>/crash-reports/; returns its path. */
export function writeCrashReportSync(stateDir: string, report: CrashReport): string {
  const dir = join(stateDir, CRASH_DIR);
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const name = `${report.time.replace(/[:.]/g, '-')}-${report.id}.json`;
  const path = join(dir, name);
  const tmp = join(dir, `.${name}.tmp`);
  const fd = openSync(tmp, 'wx', 0o600);
  try {
    writeSync(fd, `${JSON.stringify(report, null, 2)}\n`);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  renameSync(tmp, path);
  const dirFd = openSync(dir, 'r');
  try {
    fsyncSync(dirFd);
  } finally {
    closeSync(dirFd);
  }
  return path;
}

/**
 * Makes an unhandled error end the process with a crash report: `onCrash` gets the report's path
 * (or the write error) and must exit. Installed by `wardend run` only.
 */
export function installCrashHandler(
  stateDir: string,
  program: string,
  version: string,
  onCrash: (error: unknown, reportPath: string | undefined, writeError: unknown) => void,
): void {
  const handle = (error: unknown, origin: string) => {
    let path: string | undefined;
    let writeError: unknown;
    try {
      path = writeCrashReportSync(stateDir, crashReport(error, origin, program, version));
    } catch (e) {
      writeError = e;
    }
    onCrash(error, path, writeError);
  };
  process.on('uncaughtException', (e) => handle(e, 'uncaughtException'));
  process.on('unhandledRejection', (e) => handle(e, 'unhandledRejection'));
}

/** Paths of the reports waiting in <stateDir>/crash-reports/, oldest first; none when the directory does not exist. */
export function pendingReports(stateDir: string): string[] {
  const dir = join(stateDir, CRASH_DIR);
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw new WardenError(
      ErrorCode.FILE_IO,
      `cannot read the crash reports in ${dir}: ${(e as Error).message}`,
      {
        suggestion: 'The directory belongs to the engine (root): run warden-assist as root.',
      },
    );
  }
  return names
    .filter((n) => n.endsWith('.json') && !n.startsWith('.'))
    .sort()
    .map((n) => join(stateDir, CRASH_DIR, n));
}

export interface UploadResult {
  readonly sent: string[];
  readonly kept: { readonly path: string; readonly reason: string }[];
}

/**
 * Uploads every pending report when sending is allowed (each deleted after a 2xx, kept on failure).
 * When it is not allowed nothing leaves the host and every report is kept.
 */
export async function uploadPendingReports(options: {
  readonly stateDir: string;
  readonly settings: Settings;
  readonly route: (url: string) => ProxyRoute;
  readonly ca?: string | Buffer;
  readonly timeoutMs?: number;
}): Promise<UploadResult> {
  const paths = pendingReports(options.stateDir);
  const result: UploadResult = { sent: [], kept: [] };
  const { sendingAllowed, server } = options.settings.crashReports;
  for (const path of paths) {
    if (!sendingAllowed) {
      result.kept.push({ path, reason: 'sending is not allowed (settings crashReports.sendingAllowed)' });
      continue;
    }
    let report: unknown;
    try {
      report = JSON.parse(readFileSync(path, 'utf8'));
    } catch (e) {
      result.kept.push({ path, reason: `not a readable JSON report: ${(e as Error).message}` });
      continue;
    }
    try {
      await httpRequest({
        url: server,
        method: 'POST',
        json: report,
        route: options.route(server),
        ...(options.ca !== undefined ? { ca: options.ca } : {}),
        ...(options.timeoutMs !== undefined ? { timeoutMs: options.timeoutMs } : {}),
      });
      unlinkSync(path);
      result.sent.push(path);
    } catch (e) {
      result.kept.push({ path, reason: (e as Error).message });
    }
  }
  return result;
}

/**
 * Runs `warden-assist send` as a child process (the assistant's own identity) and resolves with its
 * exit status and output. The engine does this at start and when sending becomes allowed.
 */
export function runAssistant(
  assistantScript: string,
  dirs: { configDir: string; stateDir: string },
): Promise<{ code: number | null; output: string }> {
  return new Promise((resolve) => {
    const child = spawn(
      process.execPath,
      [assistantScript, 'send', '--config-dir', dirs.configDir, '--state-dir', dirs.stateDir],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    trackAssistant(child); // its connections are the assistant's because this process spawned it
    let output = '';
    const take = (d: Buffer) => {
      if (output.length < 16_384) output += d.toString('utf8');
    };
    child.stdout.on('data', take);
    child.stderr.on('data', take);
    child.once('error', (e) => resolve({ code: null, output: e.message }));
    child.once('close', (code) => resolve({ code, output: output.trim() }));
  });
}
