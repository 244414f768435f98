#!/usr/bin/env node
/**
 * `warden`, the Administration Console's command line. The only file that
 * sets the exit status: 0 success, 1 failure or a "no" answer, 2 usage error.
 */
import { Command, CommanderError } from 'commander';
import { ErrorCode, formatProblem, WardenError } from '../errors.js';
import { registerAsks } from './commands/asks.js';
import { registerConfig } from './commands/config.js';
import { registerConnect } from './commands/connect.js';
import { registerConsole } from './commands/console.js';
import { registerEngines } from './commands/engines.js';
import { registerHints } from './commands/hints.js';
import { registerLogs } from './commands/logs.js';
import { registerGroups, registerPolicyAdmin } from './commands/policy-admin.js';
import { registerPolicyCheck } from './commands/policy-check.js';
import { registerPolicyExplain } from './commands/policy-explain.js';
import { registerPolicyExport } from './commands/policy-export.js';
import { registerPolicyImport } from './commands/policy-import.js';
import { registerPolicyInternal } from './commands/policy-internal.js';
import { registerPolicyLint } from './commands/policy-lint.js';
import { registerProposals } from './commands/proposals.js';
import { registerRules } from './commands/rules.js';
import { registerSettings } from './commands/settings.js';
import { registerStatus } from './commands/status.js';
import { registerUsers } from './commands/users.js';
import { type CommandIo, type CommandStatus, quietOnClosedPipe } from './io.js';
import { neutralizeControls } from './terminal-text.js';

// Every line printed passes neutralizeControls: what the engine, a policy or a local program wrote
// into a log item, prompt, rule or error cannot drive the terminal.
const io: CommandIo = {
  out: (text) => process.stdout.write(`${neutralizeControls(text)}\n`),
  err: (text) => process.stderr.write(`${neutralizeControls(text)}\n`),
};

quietOnClosedPipe([process.stdout, process.stderr]);

const jsonOutput = process.argv.includes('--json');

function report(error: unknown): number {
  if (error instanceof WardenError && jsonOutput) {
    const { code, message, problems, suggestion } = error;
    io.err(JSON.stringify({ error: { code, message, problems, ...(suggestion ? { suggestion } : {}) } }));
    return code === ErrorCode.USAGE ? 2 : 1;
  }
  if (error instanceof WardenError) {
    io.err(`error: ${error.message}`);
    const lines = error.problems.map(formatProblem);
    if (!(lines.length === 1 && error.message.includes(lines[0]!)))
      for (const line of lines) io.err(`  ${line}`);
    if (error.suggestion) io.err(`hint: ${error.suggestion}`);
    return error.code === ErrorCode.USAGE ? 2 : 1;
  }
  io.err(
    `error: unexpected failure: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`,
  );
  return 1;
}

let pending: Promise<CommandStatus> | undefined;
const run = (status: Promise<CommandStatus>) => {
  pending = status;
};

const program = new Command('warden')
  .description(
    'Warden Administration Console: check, explain and lint firewall policies; manage Warden engines',
  )
  .version(process.env.npm_package_version ?? '0.1.0')
  .showSuggestionAfterError()
  .exitOverride()
  .configureOutput({
    writeErr: (s) => process.stderr.write(neutralizeControls(s)),
    writeOut: (s) => process.stdout.write(neutralizeControls(s)),
  });

const policy = program
  .command('policy')
  .description(
    "work with policy files offline (check, explain, lint, internal, import, export) and an engine's policy (show, mode, default)",
  )
  .exitOverride()
  .addHelpText(
    'after',
    `
A policy file is YAML: mode, defaults, addressGroups and an ordered list of rules.
The first matching rule decides. See docs/policy.md.

Examples:
  warden policy check policy.yaml
  warden policy explain policy.yaml --app /usr/bin/curl --to example.com:443
  warden policy lint policy.yaml
  warden policy internal settings.yaml
  warden policy import --from ufw /etc/ufw -o policy.yaml
  warden policy export policy.yaml --to firewalld
  warden policy show
  warden policy mode learning
  warden policy default outgoing deny --log`,
  );
registerPolicyCheck(policy, run, io);
registerPolicyExplain(policy, run, io);
registerPolicyLint(policy, run, io);
registerPolicyInternal(policy, run, io);
registerPolicyImport(policy, run, io);
registerPolicyExport(policy, run, io);
registerPolicyAdmin(policy, run, io);
registerHints(program, run, io);
registerConnect(program, run, io);
registerStatus(program, run, io);
registerRules(program, run, io);
registerGroups(program, run, io);
registerProposals(program, run, io);
registerSettings(program, run, io);
registerConfig(program, run, io);
registerLogs(program, run, io);
registerAsks(program, run, io);
registerUsers(program, run, io);
registerEngines(program, run, io);
registerConsole(program, run, io);
// Every command and subcommand reports usage errors to main() instead of exiting on its own.
const overrideAll = (c: Command): void => {
  c.exitOverride();
  for (const sub of c.commands) overrideAll(sub);
};
overrideAll(program);

async function main(): Promise<number> {
  try {
    await program.parseAsync(process.argv);
  } catch (error) {
    if (error instanceof CommanderError) {
      // Help and version asked for exit 0; help shown because a command was incomplete is a usage error.
      return error.exitCode === 0 ? 0 : 2;
    }
    return report(error);
  }
  if (pending === undefined) return 0;
  try {
    return await pending;
  } catch (error) {
    return report(error);
  }
}

process.exitCode = await main();
