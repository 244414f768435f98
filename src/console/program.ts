/**
 * The `warden` command tree: every command registered on one commander program. bin.ts runs it;
 * `warden completion` and the man page generator (src/man/) read it.
 */
import { Command } from 'commander';
import { neutralizeControls } from '../text.js';
import { registerAsks } from './commands/asks.js';
import { registerCompletion } from './commands/completion.js';
import { registerConfig } from './commands/config.js';
import { registerConnect } from './commands/connect.js';
import { registerConsole } from './commands/console.js';
import { registerEngines } from './commands/engines.js';
import { registerFleet } from './commands/fleet.js';
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
import { registerSources } from './commands/sources.js';
import { registerStatus } from './commands/status.js';
import { registerUsers } from './commands/users.js';
import { addHelpExamples } from './help-examples.js';
import type { CommandIo, CommandStatus } from './io.js';

/** The console's version (package.json's, also when run outside npm). */
export const CONSOLE_VERSION = '0.1.0';

/** "error: unknown option '--limt'\n(Did you mean --limit?)" -> "error: ...\nhint: did you mean --limit? ..." */
export function usageErrorText(text: string): string {
  const m = /^([\s\S]*?)\n\(Did you mean ([^?]+)\?\)\n?$/.exec(text);
  if (m === null) return text;
  return `${m[1]}\nhint: did you mean ${m[2]}? (--help lists them all)\n`;
}

/** Builds the command tree; each action hands its result to `run`, output goes through `io`. */
export function buildProgram(run: (status: Promise<CommandStatus>) => void, io: CommandIo): Command {
  const program = new Command('warden')
    .description(
      'Warden Administration Console: check, explain and lint firewall policies; manage Warden engines',
    )
    .version(CONSOLE_VERSION)
    .showSuggestionAfterError()
    .exitOverride()
    .configureOutput({
      writeErr: (s) => process.stderr.write(neutralizeControls(s)),
      writeOut: (s) => process.stdout.write(neutralizeControls(s)),
      // Commander's usage errors in the form of every other error: `error: ...` then `hint: ...`.
      outputError: (s, write) => write(usageErrorText(s)),
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
  registerSources(program, run, io);
  registerRules(program, run, io);
  registerGroups(program, run, io);
  registerProposals(program, run, io);
  registerSettings(program, run, io);
  registerConfig(program, run, io);
  registerLogs(program, run, io);
  registerAsks(program, run, io);
  registerUsers(program, run, io);
  registerEngines(program, run, io);
  registerFleet(program, run, io);
  registerConsole(program, run, io);
  registerCompletion(program, run, io);
  // Every command and subcommand reports usage errors to main() instead of exiting on its own.
  const overrideAll = (c: Command): void => {
    c.exitOverride();
    for (const sub of c.commands) overrideAll(sub);
  };
  overrideAll(program);
  addHelpExamples(program);

  return program;
}
