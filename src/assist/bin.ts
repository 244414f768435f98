#!/usr/bin/env node
/**
 * `warden-assist`, the crash assistant. `warden-assist send` (the default) uploads the engine's
 * pending crash reports from <state-dir>/crash-reports/ to settings crashReports.server when
 * crashReports.sendingAllowed is true (read from <config-dir>/settings.yaml), through the proxy the
 * settings and the OS configuration name; each report is deleted after a 2xx answer and kept
 * otherwise. `warden-assist list` prints the pending reports. Exit status: 0 nothing failed,
 * 1 a report could not be sent (it is kept), 2 usage error. The engine runs `send` by itself.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Command, CommanderError } from 'commander';
import { VERSION } from '../engine/daemon.js';
import { pendingReports, uploadPendingReports } from '../engine/services/crash-reports.js';
import { ErrorCode, formatProblem, WardenError } from '../errors.js';
import { defaultSettings, parseSettingsText, type Settings } from '../settings/index.js';
import { resolveProxy } from '../settings/proxy.js';

interface DirOptions {
  readonly configDir: string;
  readonly stateDir: string;
}

async function readSettings(configDir: string): Promise<Settings> {
  const file = join(configDir, 'settings.yaml');
  const text = await readFile(file, 'utf8').catch((e: NodeJS.ErrnoException) => {
    if (e.code === 'ENOENT') return undefined;
    throw new WardenError(ErrorCode.FILE_IO, `cannot read ${file}: ${e.message}`);
  });
  return text === undefined ? defaultSettings() : parseSettingsText(text, { file });
}

async function send(o: DirOptions): Promise<number> {
  const settings = await readSettings(o.configDir);
  const env = {
    environment: { ...process.env },
    etcEnvironment: await readFile('/etc/environment', 'utf8').catch(() => ''),
  };
  const result = await uploadPendingReports({
    stateDir: o.stateDir,
    settings,
    route: (url) => resolveProxy(settings.proxy, env, url),
  });
  for (const path of result.sent) process.stdout.write(`sent ${path}\n`);
  for (const k of result.kept) process.stdout.write(`kept ${k.path}: ${k.reason}\n`);
  if (result.sent.length === 0 && result.kept.length === 0)
    process.stdout.write('no pending crash reports\n');
  const failed = result.kept.some((k) => !k.reason.startsWith('sending is not allowed'));
  return failed ? 1 : 0;
}

const program = new Command('warden-assist')
  .description("Warden's crash assistant: sends the engine's crash reports when the user allowed it")
  .version(VERSION)
  .exitOverride();
const dirs = (c: Command) =>
  c
    .option('--config-dir <dir>', 'where settings.yaml is', '/etc/warden')
    .option('--state-dir <dir>', 'where crash-reports/ is', '/var/lib/warden');
let pending: Promise<number> | undefined;
dirs(program.command('send').description('upload pending crash reports (the default)')).action(
  (o: DirOptions) => {
    pending = send(o);
  },
);
dirs(program.command('list').description('print the pending crash reports')).action((o: DirOptions) => {
  pending = (async () => {
    for (const p of pendingReports(o.stateDir)) process.stdout.write(`${p}\n`);
    return 0;
  })();
});

async function main(): Promise<number> {
  const argv = process.argv.length <= 2 ? [...process.argv, 'send'] : process.argv;
  try {
    await program.parseAsync(argv);
    return (await pending) ?? 0;
  } catch (error) {
    if (error instanceof CommanderError) return error.exitCode === 0 ? 0 : 2;
    if (error instanceof WardenError) {
      process.stderr.write(`warden-assist: ${error.message}\n`);
      for (const p of error.problems) process.stderr.write(`  ${formatProblem(p)}\n`);
      return error.code === ErrorCode.USAGE ? 2 : 1;
    }
    process.stderr.write(`warden-assist: unexpected failure: ${(error as Error)?.stack ?? String(error)}\n`);
    return 1;
  }
}

process.exitCode = await main();
