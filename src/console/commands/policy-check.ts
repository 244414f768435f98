/** `warden policy check FILE [--settings FILE]`: validates a policy (and settings) file. */
import type { Command } from 'commander';
import { missingApplications, missingInterfaces } from '../../host-programs.js';
import { policyToPlain } from '../../policy/index.js';
import { loadFileIncludes, loadPolicy, loadSettings } from '../files.js';
import type { CommandIo, CommandStatus } from '../io.js';

export interface PolicyCheckOptions {
  readonly settings?: string;
  readonly json?: boolean;
}

/** Validates the files; invalid input throws WardenError (bin.ts prints every problem and exits 1). */
export async function policyCheck(
  file: string,
  options: PolicyCheckOptions,
  io: CommandIo,
): Promise<CommandStatus> {
  const [policy] = await Promise.all([loadPolicy(file), loadSettings(options.settings)]);
  // The file subscriptions are checked too (a URL subscription is the engine's to fetch).
  await loadFileIncludes(policy);
  const enabled = policy.rules.filter((r) => r.enabled).length;
  // Warnings, not errors: the file is valid and a missing program may be installed later.
  const warnings = [...missingApplications(policy.rules), ...missingInterfaces(policy.rules)].map((f) => ({
    kind: f.kind,
    rule: f.rule,
    message: f.message,
  }));
  if (options.json) {
    io.out(
      JSON.stringify(
        {
          ok: true,
          file,
          settings: options.settings ?? null,
          rules: policy.rules.length,
          enabled,
          warnings,
          policy: policyToPlain(policy),
        },
        null,
        2,
      ),
    );
    return 0;
  }
  const d = policy.defaults;
  io.out(
    `${file}: OK: ${policy.rules.length} rule${policy.rules.length === 1 ? '' : 's'} (${enabled} enabled), ` +
      `${Object.keys(policy.addressGroups).length} address group(s), mode ${policy.mode}, ` +
      `default incoming ${d.incoming.action}, default outgoing ${d.outgoing.action}` +
      (options.settings === undefined ? '' : `; settings ${options.settings}: OK`),
  );
  for (const w of warnings) io.err(`warning: ${w.message}`);
  return 0;
}

/** Adds the command to `warden policy`. */
export function registerPolicyCheck(
  policy: Command,
  run: (status: Promise<CommandStatus>) => void,
  io: CommandIo,
): void {
  policy
    .command('check')
    .description(
      'validate a policy file (and a settings file); every problem is listed with file, line, rule and field',
    )
    .argument('<file>', 'policy file (YAML)')
    .option('--settings <file>', 'settings file to validate too (conditions are checked against it)')
    .option('--json', 'print the parsed policy as JSON')
    .addHelpText(
      'after',
      '\nExit status: 0 valid, 1 invalid, 2 usage error.\n\nExamples:\n  warden policy check /etc/warden/policy.yaml --settings /etc/warden/settings.yaml',
    )
    .action((file: string, options: PolicyCheckOptions) => run(policyCheck(file, options, io)));
}
