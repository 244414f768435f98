/**
 * Warnings for rules naming an application path that does not exist on this host: not a refusal (the
 * program may be installed later), but a finding in the lint channel with a hint — an executable of the
 * same or a similar name in the usual program directories, or "the rule will match once it exists".
 */
import { accessSync, constants, readdirSync, realpathSync, statSync } from 'node:fs';
import { basename } from 'node:path';
import type { Finding } from './policy/lint.js';
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

/** One warning per rule whose application path is not an executable file on this host. */
export function missingApplications(rules: readonly Rule[], firstIndex = 0): Finding[] {
  const findings: Finding[] = [];
  rules.forEach((rule, i) => {
    if (rule.application === 'any' || isExecutableFile(rule.application)) return;
    const found = similarExecutables(rule.application);
    const hint =
      found.length > 0
        ? `did you mean ${found.map((f) => `"${f}"`).join(' or ')}?`
        : 'check the path; the rule will match once it exists';
    findings.push({
      kind: 'missing-application',
      severity: 'warning',
      rule: rule.name,
      ruleIndex: firstIndex + i,
      message: `rule "${rule.name}": application "${rule.application}" does not exist on this host (the rule is kept; ${hint})`,
    });
  });
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
