/** `warden policy internal [SETTINGS]`: the hidden internal rules these settings produce on this host (read-only). */
import type { Command } from 'commander';
import { internalRules, ruleToPlain } from '../../policy/index.js';
import { hostEnvironment, loadPolicy, loadSettings } from '../files.js';
import type { CommandIo, CommandStatus } from '../io.js';
import { portsText, remoteText } from '../render/rule-text.js';
import { renderTable } from '../render/table.js';

export interface PolicyInternalOptions {
  readonly enginePath?: string;
  readonly consolePath?: string;
  readonly assistantPath?: string;
  readonly json?: boolean;
  /** A policy file: its URL lists and rule subscriptions add the engine's rules to fetch them. */
  readonly policy?: string;
}

/** Prints the internal rules in evaluation order. */
export async function policyInternal(
  settingsFile: string | undefined,
  options: PolicyInternalOptions,
  io: CommandIo,
): Promise<CommandStatus> {
  const settings = await loadSettings(settingsFile);
  const host = await hostEnvironment({
    ...(options.enginePath ? { engine: options.enginePath } : {}),
    ...(options.consolePath ? { console: options.consolePath } : {}),
    ...(options.assistantPath ? { assistant: options.assistantPath } : {}),
  });
  const rules = internalRules(settings, host, options.policy ? await loadPolicy(options.policy) : undefined);
  if (options.json) {
    io.out(
      JSON.stringify(
        rules.map((r) => ({ id: r.id, purpose: r.purpose, because: r.because, ...ruleToPlain(r) })),
        null,
        2,
      ),
    );
    return 0;
  }
  io.out(
    `Internal rules for ${settingsFile ?? 'the default settings'} (evaluated before every user rule, in this order):\n`,
  );
  io.out(
    renderTable(
      [
        'id',
        'application',
        'direction',
        'protocol',
        'local port',
        'remote port',
        'remote address',
        'because',
      ],
      rules.map((r) => [
        r.id,
        r.application,
        r.direction,
        r.protocol,
        portsText(r.localPorts),
        portsText(r.remotePorts),
        remoteText(r),
        r.because,
      ]),
    ),
  );
  return 0;
}

/** Adds the command to `warden policy`. */
export function registerPolicyInternal(
  policy: Command,
  run: (status: Promise<CommandStatus>) => void,
  io: CommandIo,
): void {
  policy
    .command('internal')
    .description(
      "print the hidden internal rules that keep Warden's own parts able to talk, for these settings",
    )
    .argument('[settings]', 'settings file (YAML); the defaults when left out')
    .option('--engine-path <path>', 'executable identity of the engine')
    .option('--console-path <path>', 'executable identity of the console')
    .option('--assistant-path <path>', 'executable identity of the crash assistant')
    .option(
      '--policy <file>',
      "a policy file: its URL lists and rule subscriptions add the engine's rules to fetch them",
    )
    .option('--json', 'print the rules as JSON')
    .addHelpText(
      'after',
      `
The proxy for update checks and registration comes from https_proxy/http_proxy/no_proxy
(and upper-case forms) in this process's environment, then /etc/environment.

Examples:
  https_proxy=http://proxy.lan:3128 warden policy internal /etc/warden/settings.yaml`,
    )
    .action((settings: string | undefined, options: PolicyInternalOptions) =>
      run(policyInternal(settings, options, io)),
    );
}
