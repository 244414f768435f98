/**
 * `warden policy import --from opensnitch|ufw|firewalld FILE_OR_DIR... [-o FILE]`:
 * turns another tool's rules into a Warden policy. What cannot be imported
 * faithfully is listed on stderr (file, line or field, rule, reason) and makes
 * the exit status 1; notes are imported rules with a caveat.
 */
import { readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import type { Command } from 'commander';
import { writeFileAtomic } from '../../atomic-file.js';
import { ErrorCode, formatProblem, type Problem, WardenError } from '../../errors.js';
import { importPolicy, type SourceFile, TOOLS, type Tool } from '../../policy/import/index.js';
import { policyToPlain, serializePolicy } from '../../policy/index.js';
import { readTextFile } from '../files.js';
import type { CommandIo, CommandStatus } from '../io.js';

export interface PolicyImportOptions {
  readonly from?: string;
  readonly output?: string;
  readonly services?: string[];
  readonly json?: boolean;
}

/** firewalld's service directories, the vendor one first so /etc overrides it. */
const FIREWALLD_SERVICE_DIRS = ['/usr/lib/firewalld/services', '/etc/firewalld/services'];

/** Which files of a directory each tool reads. */
const WANTED: Record<Tool, (name: string) => boolean> = {
  opensnitch: (n) => n.endsWith('.json'),
  ufw: (n) => n === 'user.rules' || n === 'user6.rules' || n === 'ufw.conf' || n === 'ufw',
  firewalld: (n) => n.endsWith('.xml'),
};

async function isDirectory(path: string): Promise<boolean> {
  try {
    return (await stat(path)).isDirectory();
  } catch {
    return false;
  }
}

/** Reads the files named, and the tool's files inside the directories named. */
async function readSources(
  paths: readonly string[],
  wanted: (name: string) => boolean,
  what: string,
): Promise<SourceFile[]> {
  const out: SourceFile[] = [];
  for (const path of paths) {
    if (await isDirectory(path)) {
      const names = (await readdir(path)).filter(wanted).sort();
      for (const n of names) out.push({ name: join(path, n), text: await readTextFile(join(path, n), what) });
    } else out.push({ name: path, text: await readTextFile(path, what) });
  }
  return out;
}

function parseTool(text: string | undefined, option: string): Tool {
  if (text === undefined || !(TOOLS as readonly string[]).includes(text)) {
    throw new WardenError(
      ErrorCode.USAGE,
      `${option} ${text === undefined ? 'is required' : `"${text}" is not a known tool`}`,
      {
        suggestion: `Use ${option} ${TOOLS.join('|')}`,
      },
    );
  }
  return text as Tool;
}

function header(from: Tool, files: readonly SourceFile[], problems: number): string {
  return [
    `# Imported from ${from} by warden policy import.`,
    `# Source files: ${files.map((f) => f.name).join(', ') || '(none)'}`,
    problems === 0
      ? '# Every rule was imported.'
      : `# ${problems} rule(s) or part(s) could NOT be imported; run the import again to see them.`,
    '',
  ].join('\n');
}

/** Runs the import; returns 1 when anything was not imported. */
export async function policyImport(
  paths: readonly string[],
  options: PolicyImportOptions,
  io: CommandIo,
): Promise<CommandStatus> {
  const from = parseTool(options.from, '--from');
  const files = await readSources(paths, WANTED[from], `${from} file`);
  let services: SourceFile[] = [];
  if (from === 'firewalld') {
    const dirs = options.services ?? [];
    const defaults =
      dirs.length === 0
        ? await Promise.all(FIREWALLD_SERVICE_DIRS.map(async (d) => ((await isDirectory(d)) ? d : null)))
        : [];
    const use = dirs.length > 0 ? dirs : defaults.filter((d): d is string => d !== null);
    services = await readSources(use, (n) => n.endsWith('.xml'), 'firewalld service file');
  }
  const { policy, problems, notes } = importPolicy(from, files, { services, now: Date.now() });
  const yaml = header(from, files, problems.length) + serializePolicy(policy);
  if (options.output !== undefined) await writeFileAtomic(options.output, yaml, 0o644);
  if (options.json) {
    io.out(
      JSON.stringify(
        {
          from,
          files: files.map((f) => f.name),
          output: options.output ?? null,
          policy: policyToPlain(policy),
          notImported: problems,
          notes,
        },
        null,
        2,
      ),
    );
  } else if (options.output === undefined) io.out(yaml.trimEnd());
  const list = (title: string, items: readonly Problem[]) => {
    if (items.length === 0) return;
    io.err(title);
    for (const p of items) io.err(`  ${formatProblem(p)}`);
  };
  if (!options.json) {
    list(`not imported (${problems.length}):`, problems);
    list(`imported with a caveat (${notes.length}):`, notes);
    io.err(
      `${policy.rules.length} rule(s) imported from ${files.length} file(s)${options.output ? ` into ${options.output}` : ''}; ` +
        `${problems.length} not imported, ${notes.length} note(s)`,
    );
  }
  return problems.length === 0 ? 0 : 1;
}

/** Adds the command to `warden policy`. */
export function registerPolicyImport(
  policy: Command,
  run: (status: Promise<CommandStatus>) => void,
  io: CommandIo,
): void {
  policy
    .command('import')
    .description('import rules from OpenSnitch, ufw or firewalld into a Warden policy')
    .argument(
      '<paths...>',
      'rule files or directories (/etc/opensnitchd/rules, /etc/ufw, /etc/firewalld/zones/public.xml)',
    )
    .option('--from <tool>', `the tool the rules come from: ${TOOLS.join(', ')}`)
    .option('-o, --output <file>', 'write the policy here (atomically) instead of printing it')
    .option(
      '--services <dir...>',
      'firewalld service directories (default: /usr/lib/firewalld/services and /etc/firewalld/services)',
    )
    .option('--json', 'print the policy and the problems as JSON')
    .addHelpText(
      'after',
      `
What cannot be imported faithfully is listed on stderr with file, line or field, rule and reason;
nothing is dropped or widened silently. See docs/import-export.md.

Exit status: 0 everything imported, 1 something was not imported (or a file is unreadable), 2 usage error.

Examples:
  warden policy import --from opensnitch /etc/opensnitchd/rules -o policy.yaml
  warden policy import --from ufw /etc/ufw/user.rules /etc/ufw/user6.rules /etc/default/ufw
  warden policy import --from firewalld /etc/firewalld/zones/public.xml`,
    )
    .action((paths: string[], options: PolicyImportOptions) => run(policyImport(paths, options, io)));
}
