/**
 * programs.hash: the SHA-256 of a program on the engine's host, for `warden rules add --pin` and the
 * web rule form's "pin current". Only an absolute path to a regular, executable file is hashed (not
 * any file root can read: a hash of a secret is a way to test guesses of it), by the engine's hasher
 * (a worker thread, once per file version, bounded in size).
 */
import { constants } from 'node:fs';
import { access, stat } from 'node:fs/promises';
import { ErrorCode, WardenError } from '../errors.js';
import type { Finding, Rule } from '../policy/index.js';
import { shortHash } from '../policy/match.js';
import type { FileHasher } from './handlers.js';

/** The programs.hash handler; without a hasher (an administration server alone) it says so. */
export function programHashHandler(
  hasher: FileHasher | undefined,
): (p: { path: string }) => Promise<{ path: string; sha256: string }> {
  return async ({ path }) => {
    if (hasher === undefined)
      throw new WardenError(ErrorCode.NOT_FOUND, 'this administration server hashes no programs', {
        suggestion: 'Connect to the engine wardend started.',
      });
    const st = await stat(path).catch((e: NodeJS.ErrnoException) => {
      throw new WardenError(
        e.code === 'ENOENT' ? ErrorCode.NOT_FOUND : ErrorCode.FILE_IO,
        `programs.hash: ${path}: ${e.code === 'ENOENT' ? 'no such file on the engine host' : e.message}`,
      );
    });
    const executable = await access(path, constants.X_OK).then(
      () => true,
      () => false,
    );
    if (!st.isFile() || !executable || (st.mode & 0o111) === 0)
      throw new WardenError(
        ErrorCode.PARAMS_INVALID,
        `programs.hash: ${path} is not an executable file (only programs are hashed)`,
      );
    try {
      return { path, sha256: (await hasher.ofPath(path)).sha256 };
    } catch (e) {
      throw new WardenError(ErrorCode.FILE_IO, `programs.hash: ${(e as Error).message}`);
    }
  };
}

/**
 * policy.lint's warnings about pinned rules (kind pin-mismatch): the application's file on this host
 * has another hash than the pin (the rule does not match it), or cannot be hashed. A missing file is
 * the missing-application warning already. At most 64 files are hashed per lint (each once per version).
 */
export async function pinFindings(
  rules: readonly Rule[],
  hasher: FileHasher | undefined,
  firstIndex = 0,
): Promise<Finding[]> {
  if (hasher === undefined) return [];
  const findings: Finding[] = [];
  const pinned = rules.map((rule, i) => ({ rule, i })).filter(({ rule }) => rule.sha256 !== undefined);
  for (const { rule, i } of pinned.slice(0, 64)) {
    const app = rule.application;
    if (
      !(await stat(app).then(
        (s) => s.isFile(),
        () => false,
      ))
    )
      continue;
    const at = {
      kind: 'pin-mismatch' as const,
      severity: 'warning' as const,
      rule: rule.name,
      ruleIndex: firstIndex + i,
    };
    try {
      const { sha256 } = await hasher.ofPath(app);
      if (sha256 !== rule.sha256)
        findings.push({
          ...at,
          message: `rule "${rule.name}": pinned sha256 ${shortHash(rule.sha256!)} but ${app} on this host is ${shortHash(sha256)}: the rule does not match it (pin it again: warden rules update, or add it with --pin)`,
        });
    } catch (e) {
      findings.push({
        ...at,
        message: `rule "${rule.name}": ${app} cannot be hashed (${(e as Error).message}): the pinned rule does not match it`,
      });
    }
  }
  return findings;
}
