/**
 * The enforcer's side of sha256-pinned rules: which applications some rule pins (only their
 * connections are hashed; every other connection never waits for a hash), and what a connection's
 * log item and ask prompt say when a pin did not hold ("pinned sha256 abc… but /usr/bin/curl is now
 * def…").
 */
import type { CompiledPolicy, CompiledRule, ConnectionFacts } from '../policy/index.js';
import { findMismatch } from '../policy/match.js';
import type { FileHash } from './exe-hash.js';

/** How long a connection of a not yet hashed file waits for its hash before pinned rules count as not matching. */
export const PIN_HASH_DEADLINE_MS = 3000;

/** What the enforcer needs to hash a process's executable (ExeHasher implements it). */
export interface PinHashing {
  ofProcess(pid: number, executable: string): Promise<FileHash>;
}

/** A pin that no longer holds, with the file's current hashes (for a Debian re-pin: repin.ts). */
export interface PinChange {
  readonly application: string;
  readonly hash: FileHash;
  /** The rules whose pin differs (names, in order). */
  readonly rules: readonly string[];
}

const pinnedByPolicy = new WeakMap<CompiledPolicy, ReadonlyMap<string, readonly CompiledRule[]>>();

/** The active rules that pin `application`'s hash, in order; undefined when none does. */
export function pinnedRulesOf(
  policy: CompiledPolicy,
  application: string | null,
): readonly CompiledRule[] | undefined {
  if (application === null) return undefined;
  let byApp = pinnedByPolicy.get(policy);
  if (byApp === undefined) {
    const m = new Map<string, CompiledRule[]>();
    for (const r of policy.rules) {
      if (!r.active || r.sha256 === null || r.application === null) continue;
      const list = m.get(r.application);
      if (list === undefined) m.set(r.application, [r]);
      else list.push(r);
    }
    byApp = m;
    pinnedByPolicy.set(policy, byApp);
  }
  return byApp.get(application);
}

/**
 * Why each pinned rule ahead of the deciding one (`decidedBy`, -1: the default) did not decide
 * although everything but the hash matched: one sentence per rule, naming it.
 */
export function pinNotes(
  pinned: readonly CompiledRule[],
  facts: ConnectionFacts,
  decidedBy: number,
  problem?: string,
): { notes: string[]; changed: string[] } {
  const notes: string[] = [];
  const changed: string[] = [];
  for (const r of pinned) {
    if (decidedBy >= 0 && r.index >= decidedBy) break;
    const miss = findMismatch(r, facts);
    if (miss?.field !== 'sha256') continue;
    if (facts.applicationSha256 == null && problem !== undefined)
      notes.push(`rule "${r.rule.name}" not applied: the hash of ${r.application} is not known (${problem})`);
    else notes.push(`rule "${r.rule.name}" not applied: ${miss.reason}`);
    if (facts.applicationSha256 != null) changed.push(r.rule.name);
  }
  return { notes, changed };
}
