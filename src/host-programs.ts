/**
 * Warnings for rules naming an application path that does not exist on this host: not a refusal (the
 * program may be installed later), but a finding in the lint channel with a hint — an executable of the
 * same or a similar name in the usual program directories, or "the rule will match once it exists".
 */
import { createHash } from 'node:crypto';
import { accessSync, constants, createReadStream, readdirSync, realpathSync, statSync } from 'node:fs';
import { stat } from 'node:fs/promises';
import { basename } from 'node:path';
import type { Finding } from './policy/lint.js';
import { shortHash } from './policy/match.js';
import type { Rule } from './policy/rule.js';

/** Where programs are looked for when the named path is missing (PATH dirs of a root shell, plus the caller's PATH). */
const PROGRAM_DIRS = ['/usr/local/sbin', '/usr/local/bin', '/usr/sbin', '/usr/bin', '/sbin', '/bin'];

function isExecutableFile(path: string): boolean {
  try {
    if (!statSync(path).isFile()) return false;
    accessSync(path, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/** Levenshtein distance, bounded: names further apart than `max` are not "similar". */
function distance(a: string, b: string, max: number): number {
  if (Math.abs(a.length - b.length) > max) return max + 1;
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const row = [i];
    for (let j = 1; j <= b.length; j++) {
      row[j] = Math.min(prev[j]! + 1, row[j - 1]! + 1, prev[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
    }
    prev = row;
  }
  return prev[b.length]!;
}

/** Executables in the program directories with the same name as `path`, or else the closest similar names. */
export function similarExecutables(path: string, dirs: readonly string[] = programDirs()): string[] {
  const name = basename(path);
  const same: string[] = [];
  let best = Math.max(1, Math.floor(name.length / 4)) + 1;
  let similar: string[] = [];
  for (const dir of dirs) {
    let entries: string[];
    try {
      entries = readdirSync(dir);
    } catch {
      continue;
    }
    for (const entry of entries) {
      const d = entry === name ? 0 : distance(entry, name, best);
      if (d > best) continue;
      const full = `${dir}/${entry}`;
      if (full === path || !isExecutableFile(full)) continue;
      if (d === 0) same.push(full);
      else if (d < best) {
        best = d;
        similar = [full];
      } else similar.push(full);
    }
  }
  // /bin/curl and /usr/bin/curl are one file on a merged-/usr system: name it once.
  const seen = new Set<string>();
  return (same.length > 0 ? same : similar)
    .filter((f) => {
      let real = f;
      try {
        real = realpathSync(f);
      } catch {}
      if (seen.has(real)) return false;
      seen.add(real);
      return true;
    })
    .slice(0, 3);
}

function programDirs(): string[] {
  const fromEnv = (process.env.PATH ?? '').split(':').filter((d) => d.startsWith('/'));
  return [...new Set([...PROGRAM_DIRS, ...fromEnv])];
}

/**
 * One warning per program path of a rule (application, parent, ancestor) that is not an executable
 * file on this host.
 */
export function missingApplications(rules: readonly Rule[], firstIndex = 0): Finding[] {
  const findings: Finding[] = [];
  rules.forEach((rule, i) => {
    const paths: [string, string | undefined][] = [
      ['application', rule.application === 'any' ? undefined : rule.application],
      ['parent', rule.parent],
      ['ancestor', rule.ancestor],
    ];
    for (const [field, path] of paths) {
      if (path === undefined || isExecutableFile(path)) continue;
      const found = similarExecutables(path);
      const hint =
        found.length > 0
          ? `did you mean ${found.map((f) => `"${f}"`).join(' or ')}?`
          : 'check the path; the rule will match once it exists';
      findings.push({
        kind: 'missing-application',
        severity: 'warning',
        rule: rule.name,
        ruleIndex: firstIndex + i,
        message: `rule "${rule.name}": ${field} "${path}" does not exist on this host (the rule is kept; ${hint})`,
      });
    }
  });
  return findings;
}

/** Hashes the file at an absolute path (the engine's ExeHasher: off the event loop, once per version). */
export interface FileHasher {
  ofPath(path: string): Promise<{ readonly sha256: string }>;
}

/** The SHA-256 of a file, streamed (for the console's offline explain and lint). */
export function fileSha256(path: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const hash = createHash('sha256');
    createReadStream(path)
      .on('error', reject)
      .on('data', (chunk) => hash.update(chunk))
      .on('end', () => resolve(hash.digest('hex')));
  });
}

/** A FileHasher of plain streamed reads (no cache), for the console. */
export const streamedHasher: FileHasher = { ofPath: async (path) => ({ sha256: await fileSha256(path) }) };

/**
 * policy.lint's warnings about pinned rules (kind pin-mismatch): the application's file on this host
 * has another hash than the pin (the rule does not match it), or cannot be hashed. A missing file is
 * the missing-application warning already. At most 64 files are hashed per lint.
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

/** The network interfaces of this host (/sys/class/net); empty when it cannot be read. */
export function hostInterfaces(): string[] {
  try {
    return readdirSync('/sys/class/net');
  } catch {
    return [];
  }
}

/**
 * One warning per rule naming an interface (an exact name; `wg*` globs are for interfaces that come
 * and go) that does not exist on this host: the rule is kept and matches once the interface exists.
 */
export function missingInterfaces(
  rules: readonly Rule[],
  firstIndex = 0,
  present: readonly string[] = hostInterfaces(),
): Finding[] {
  const findings: Finding[] = [];
  rules.forEach((rule, i) => {
    const missing = (rule.interface ?? []).filter((n) => !n.endsWith('*') && !present.includes(n));
    if (missing.length === 0) return;
    findings.push({
      kind: 'missing-interface',
      severity: 'warning',
      rule: rule.name,
      ruleIndex: firstIndex + i,
      message: `rule "${rule.name}": interface ${missing.map((n) => `"${n}"`).join(', ')} does not exist on this host (the rule is kept and matches once it exists; here: ${present.join(', ') || 'none found'})`,
    });
  });
  return findings;
}
