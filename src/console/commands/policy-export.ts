/**
 * `warden policy export POLICY --to opensnitch|ufw|firewalld [-o DIR_OR_FILE]`:
 * writes a Warden policy in another tool's terms. Rules the tool cannot
 * express are listed on stderr and make the exit status 1.
 */
import { statSync } from 'node:fs';
import { mkdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import type { Command } from 'commander';
import { writeFileAtomic } from '../../atomic-file.js';
import { ErrorCode, formatProblem, WardenError } from '../../errors.js';
import {
  type ExportResult,
  exportFirewalld,
  exportOpenSnitch,
  exportUfw,
} from '../../policy/export/index.js';
import { TOOLS, type Tool } from '../../policy/import/index.js';
import { loadPolicy } from '../files.js';
import type { CommandIo, CommandStatus } from '../io.js';

export interface PolicyExportOptions {
  readonly to?: string;
  readonly output?: string;
  readonly zone?: string;
  readonly json?: boolean;
}

async function isDirectory(path: string): Promise<boolean> {
  try {
    return (await stat(path)).isDirectory();
  } catch {
    return false;
  }
}

/** Runs the export; returns 1 when any rule was not exported. */
export async function policyExport(
  file: string,
  options: PolicyExportOptions,
  io: CommandIo,
): Promise<CommandStatus> {
  if (options.to === undefined || !(TOOLS as readonly string[]).includes(options.to)) {
    throw new WardenError(
      ErrorCode.USAGE,
      `--to ${options.to === undefined ? 'is required' : `"${options.to}" is not a known tool`}`,
      {
        suggestion: `Use --to ${TOOLS.join('|')}`,
      },
    );
  }
  const to = options.to as Tool;
  const policy = await loadPolicy(file);
  let result: ExportResult;
  let main: string | undefined;
  if (to === 'opensnitch')
    // OpenSnitch reads a list from a directory: a list's path is checked here, on this machine.
    result = exportOpenSnitch(policy, new Date().toISOString(), {
      isDirectory: (path) => statSync(path, { throwIfNoEntry: false })?.isDirectory() === true,
    });
  else if (to === 'ufw') {
    const r = exportUfw(policy);
    result = r;
    main = r.script;
  } else {
    const r = exportFirewalld(policy, options.zone ?? 'public');
    result = r;
    main = r.script;
  }
  const out = options.output;
  const written: string[] = [];
  if (out !== undefined) {
    if (to === 'opensnitch' || (await isDirectory(out))) {
      await mkdir(out, { recursive: true }).catch((cause: unknown) => {
        throw new WardenError(
          ErrorCode.FILE_IO,
          `cannot create the directory ${out}: ${(cause as Error).message}`,
          { cause },
        );
      });
      for (const f of result.files) {
        await writeFileAtomic(join(out, f.name), f.text, f.name.endsWith('.sh') ? 0o755 : 0o644);
        written.push(join(out, f.name));
      }
    } else {
      await writeFileAtomic(out, main ?? '', 0o755);
      written.push(out);
    }
  }
  if (options.json)
    io.out(JSON.stringify({ file, to, written, files: result.files, notExported: result.skipped }, null, 2));
  else if (out === undefined) {
    if (main !== undefined) io.out(main.trimEnd());
    else for (const f of result.files) io.out(`==> ${f.name} <==\n${f.text.trimEnd()}`);
  }
  if (!options.json) {
    if (result.skipped.length > 0) {
      io.err(`not exported (${result.skipped.length}):`);
      for (const p of result.skipped) io.err(`  ${formatProblem({ ...p, file })}`);
    }
    io.err(
      `${policy.rules.length - new Set(result.skipped.map((p) => p.path[1])).size} of ${policy.rules.length} rule(s) exported to ${to}` +
        (written.length > 0 ? `: ${written.join(', ')}` : ''),
    );
  }
  return result.skipped.length === 0 ? 0 : 1;
}

/** Adds the command to `warden policy`. */
export function registerPolicyExport(
  policy: Command,
  run: (status: Promise<CommandStatus>) => void,
  io: CommandIo,
): void {
  policy
    .command('export')
    .description('export a policy to OpenSnitch rule files, ufw commands or firewalld commands')
    .argument('<file>', 'policy file (YAML)')
    .option('--to <tool>', `the target: ${TOOLS.join(', ')}`)
    .option(
      '-o, --output <path>',
      'a directory (all files: rule files, script, user.rules, zone XML) or, for ufw and firewalld, the script file',
    )
    .option('--zone <name>', 'firewalld zone the rules go to', 'public')
    .option('--json', 'print the files and what was not exported as JSON')
    .addHelpText(
      'after',
      `
Rules the target cannot express (applications in ufw/firewalld, incoming rules in OpenSnitch,
ask actions, host names in ufw/firewalld) are listed on stderr. See docs/import-export.md.

Exit status: 0 every rule exported, 1 some rule was not exported, 2 usage error.

Examples:
  warden policy export policy.yaml --to ufw > ufw-rules.sh
  warden policy export policy.yaml --to opensnitch -o /etc/opensnitchd/rules
  warden policy export policy.yaml --to firewalld --zone public -o exported/`,
    )
    .action((file: string, options: PolicyExportOptions) => run(policyExport(file, options, io)));
}
