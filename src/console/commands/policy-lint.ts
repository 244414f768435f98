/** `warden policy lint FILE`: shadowed, redundant, conflicting and never-matching rules. */
import type { Command } from 'commander';
import { missingApplications, missingInterfaces, pinFindings, streamedHasher } from '../../host-programs.js';
import { lint } from '../../policy/index.js';
import { loadCompiled } from '../files.js';
import type { CommandIo, CommandStatus } from '../io.js';
import { parseInstant } from './options.js';

export interface PolicyLintOptions {
  readonly settings?: string;
  readonly at?: string;
  readonly json?: boolean;
}

/** Lints the policy; returns 1 when there is any finding. */
export async function policyLint(
  file: string,
  options: PolicyLintOptions,
  io: CommandIo,
): Promise<CommandStatus> {
  const now = parseInstant(options.at);
  const { compiled } = await loadCompiled(file, options.settings);
  const userRules = compiled.rules.slice(compiled.internalCount).map((r) => r.rule);
  const findings = [
    ...lint(compiled, { now }),
    ...missingApplications(userRules, compiled.internalCount),
    ...(await pinFindings(userRules, streamedHasher, compiled.internalCount)),
    ...missingInterfaces(userRules, compiled.internalCount),
  ];
  if (options.json) {
    io.out(JSON.stringify({ file, findings }, null, 2));
  } else if (findings.length === 0) {
    io.out(`${file}: no findings`);
  } else {
    for (const f of findings) io.out(`${f.severity} ${f.kind}: ${f.message}`);
    const errors = findings.filter((f) => f.severity === 'error').length;
    io.out(
      `${file}: ${findings.length} finding(s), ${errors} error(s), ${findings.length - errors} warning(s)`,
    );
  }
  return findings.length === 0 ? 0 : 1;
}

/** Adds the command to `warden policy`. */
export function registerPolicyLint(
  policy: Command,
  run: (status: Promise<CommandStatus>) => void,
  io: CommandIo,
): void {
  policy
    .command('lint')
    .description('find shadowed, redundant, conflicting and never-matching rules')
    .argument('<file>', 'policy file (YAML)')
    .option('--settings <file>', 'settings the rule conditions are evaluated with (default: the defaults)')
    .option('--at <instant>', 'judge rule expiry at this ISO 8601 instant instead of now')
    .option('--json', 'print findings as JSON')
    .addHelpText(
      'after',
      `
Findings:
  never-matches  the rule cannot match anything (expired, empty address group)
  shadowed       an earlier rule covers all its traffic with another action
  redundant      an earlier rule or the default already does the same
  conflict       it overlaps an earlier rule with another action (the earlier one wins)
  missing-application  its application, parent or ancestor path does not exist on this host (a warning: it may be installed later)
  pin-mismatch         its application's file on this host has another SHA-256 than the rule's sha256 (a warning)
  any-arguments        its arguments glob matches every command line (leave the field out)

Exit status: 0 no findings, 1 findings, 2 usage error.`,
    )
    .action((file: string, options: PolicyLintOptions) => run(policyLint(file, options, io)));
}
