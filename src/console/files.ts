/** Reading the files console commands are given, with errors that say which file and why. */
import { readFile } from 'node:fs/promises';
import { ErrorCode, WardenError } from '../errors.js';
import { readListFiles } from '../list-files.js';
import type { CompiledPolicy } from '../policy/index.js';
import {
  compilePolicy,
  type HostEnvironment,
  internalRules,
  type Policy,
  parseIncludedRules,
  parsePolicyText,
  type Rule,
  withIncludes,
} from '../policy/index.js';
import { type ListContent, ListParser } from '../policy/list-format.js';
import { defaultSettings, parseSettingsText, type Settings } from '../settings/index.js';

/** Reads a UTF-8 text file; a missing or unreadable file throws WARDEN_E_FILE_IO naming it. */
export async function readTextFile(path: string, what: string): Promise<string> {
  try {
    return await readFile(path, 'utf8');
  } catch (cause) {
    const code = (cause as NodeJS.ErrnoException).code;
    const why =
      code === 'ENOENT'
        ? 'does not exist'
        : code === 'EACCES'
          ? 'is not readable (permission denied)'
          : code === 'EISDIR'
            ? 'is a directory'
            : `could not be read (${code ?? String(cause)})`;
    throw new WardenError(ErrorCode.FILE_IO, `${what} ${path} ${why}`, {
      cause,
      suggestion: 'Check the path; relative paths start from the current directory.',
    });
  }
}

/** Reads and validates a policy file. */
export async function loadPolicy(path: string): Promise<Policy> {
  return parsePolicyText(await readTextFile(path, 'policy file'), { file: path });
}

/** Reads and validates a settings file, or returns the defaults when no file is given. */
export async function loadSettings(path: string | undefined): Promise<Settings> {
  if (path === undefined) return defaultSettings();
  return parseSettingsText(await readTextFile(path, 'settings file'), { file: path });
}

/** Executable identities of Warden's parts on a host, as installed by the packaging (overridable per command). */
export const DEFAULT_EXECUTABLES = {
  engine: '/usr/lib/warden/wardend',
  console: '/usr/lib/warden/warden',
  assistant: '/usr/lib/warden/warden-assist',
} as const;

/** Gathers this host's environment for the internal rules: executables, process environment, /etc/environment. */
export async function hostEnvironment(
  executables: Partial<HostEnvironment['executables']> = {},
): Promise<HostEnvironment> {
  let etcEnvironment = '';
  try {
    etcEnvironment = await readFile('/etc/environment', 'utf8');
  } catch {
    // No /etc/environment is an ordinary state: no proxy configured there.
  }
  return {
    executables: { ...DEFAULT_EXECUTABLES, ...executables },
    environment: { ...process.env },
    etcEnvironment,
  };
}

/** Loads policy and settings and compiles them with this host's internal rules. */
export async function loadCompiled(
  policyPath: string,
  settingsPath: string | undefined,
): Promise<{ policy: Policy; settings: Settings; compiled: CompiledPolicy }> {
  const [policy, settings, host] = await Promise.all([
    loadPolicy(policyPath),
    loadSettings(settingsPath),
    hostEnvironment(),
  ]);
  // Explain and lint see the rules in force: the policy's own, then its file subscriptions'.
  const inForce = withIncludes(policy, await loadFileIncludes(policy));
  return {
    policy,
    settings,
    compiled: compilePolicy(inForce, {
      settings,
      internalRules: internalRules(settings, host, policy),
      lists: await loadFileLists(policy),
    }),
  };
}

/**
 * The rules of the policy's file subscriptions as this host has them (a URL subscription is the
 * engine's to fetch: nothing here). An unreadable or invalid included file throws with its file,
 * line, rule and field, so check, lint and explain of a policy name what is wrong in what it includes.
 */
export async function loadFileIncludes(policy: Policy): Promise<Map<string, Rule[]>> {
  const out = new Map<string, Rule[]>();
  for (const inc of policy.include ?? []) {
    if (inc.file === undefined) continue;
    out.set(
      inc.name,
      parseIncludedRules(await readTextFile(inc.file, `included file (${inc.name})`), inc.file),
    );
  }
  return out;
}

/**
 * The policy's file lists as this host has them, so explain and lint of a file see what the engine
 * would (a URL list is the engine's to fetch: it is empty here). A list that cannot be read is empty.
 */
async function loadFileLists(policy: Policy): Promise<Map<string, ListContent>> {
  const out = new Map<string, ListContent>();
  for (const [name, list] of Object.entries(policy.lists ?? {})) {
    if (list.file === undefined) continue;
    try {
      const parser = new ListParser(list.format, list);
      await readListFiles(list.file, list.maxBytes, (chunk) => parser.push(chunk));
      out.set(name, parser.end().content);
    } catch {
      // Unreadable or over its bounds: empty, as the engine would have nothing from it either.
    }
  }
  return out;
}
