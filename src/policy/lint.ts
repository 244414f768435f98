/**
 * lint(policy): rules that can never decide anything, or that the user
 * probably did not mean. Findings name the rules involved.
 * - never-matches: the rule cannot match any connection (expired, empty address group)
 * - shadowed: an earlier rule covers all its traffic with another action, so it never decides
 * - redundant: removing it changes nothing (an earlier rule, or the default, does the same)
 * - conflict: it overlaps an earlier rule with another action; the earlier one wins on the overlap
 * - any-arguments: its arguments glob matches every command line (only stars): the field adds nothing
 *   but a need for the command line (a process whose command line is unknown no longer matches)
 */
import {
  type AddressSet,
  type CompiledPolicy,
  type CompiledRule,
  type InterfaceSet,
  interfaceInSet,
} from './compile.js';
import { globMatchesEverything } from './glob.js';
import type { ListContent } from './list-format.js';
import { listFindings } from './list-lint.js';
import type { PortRange } from './rule.js';

export type FindingKind =
  | 'never-matches'
  | 'shadowed'
  | 'redundant'
  | 'conflict'
  | 'missing-application'
  | 'pin-mismatch'
  | 'any-arguments'
  | 'missing-interface'
  | 'list-empty'
  | 'list-unreachable'
  | 'list-overlap';

/** One lint finding. */
export interface Finding {
  readonly kind: FindingKind;
  readonly severity: 'error' | 'warning';
  /** The rule the finding is about. */
  readonly rule: string;
  readonly ruleIndex: number;
  /** The other rule involved (the shadowing, covering or overlapping one), if any. */
  readonly other?: string;
  readonly otherIndex?: number;
  readonly message: string;
}

/** Options for lint: the instant that decides which rules have expired (milliseconds since the epoch). */
export interface LintOptions {
  readonly now: number;
  /**
   * What the engine knows of the policy's lists (src/engine/lists.ts): without it (a file linted
   * offline) a list's content is unknown and no list finding is made.
   */
  readonly lists?: ReadonlyMap<string, ListLintFacts>;
}

/** One list as lint sees it. */
export interface ListLintFacts {
  /** The content in force, or undefined when no copy was ever loaded. */
  readonly content?: ListContent;
  /** Why the last load or refresh failed, when it did. */
  readonly error?: string;
}

/** Lints the user rules of a compiled policy (internal rules count as earlier rules). */
export function lint(policy: CompiledPolicy, options: LintOptions): Finding[] {
  const findings: Finding[] = [];
  const rules = policy.rules;
  const permanent = (r: CompiledRule) => r.active && r.expiresAt === Number.POSITIVE_INFINITY;
  // Rules already found never to decide; conflicts with them would be noise.
  const dead = new Set<number>();
  for (let b = policy.internalCount; b < rules.length; b++) {
    const B = rules[b]!;
    if (!B.active) continue;
    const name = B.rule.name;
    const at = (
      kind: FindingKind,
      severity: Finding['severity'],
      message: string,
      other?: CompiledRule,
    ): Finding => ({
      kind,
      severity,
      rule: name,
      ruleIndex: b,
      ...(other ? { other: other.rule.name, otherIndex: other.index } : {}),
      message,
    });
    if (B.expiresAt <= options.now) {
      dead.add(b);
      findings.push(
        at(
          'never-matches',
          'warning',
          `rule "${name}" expired at ${new Date(B.expiresAt).toISOString()}; delete it or extend it`,
        ),
      );
      continue;
    }
    if (B.remote !== null && isEmptySet(B.remote) && B.remote.lists.length === 0) {
      dead.add(b);
      findings.push(
        at(
          'never-matches',
          'error',
          `rule "${name}" can never match: its remote addresses are an empty address group`,
        ),
      );
      continue;
    }
    if (B.argumentsGlob !== null && globMatchesEverything(B.argumentsGlob))
      findings.push(
        at(
          'any-arguments',
          'warning',
          `rule "${name}": arguments "${B.argumentsGlob.source}" matches every command line; leave the field out (as it is, a process whose command line is unknown does not match)`,
        ),
      );
    let decided = false;
    for (let a = 0; a < b && !decided; a++) {
      const A = rules[a]!;
      if (!A.active || !overlaps(A, B)) continue;
      if (permanent(A) && covers(A, B)) {
        decided = true;
        dead.add(b);
        const who = A.source === 'internal' ? `internal rule "${A.rule.name}"` : `rule "${A.rule.name}"`;
        if (A.rule.action === B.rule.action) {
          findings.push(
            at(
              'redundant',
              'warning',
              `rule "${name}" is redundant: ${who} above it already ${verb(A)} all its traffic`,
              A,
            ),
          );
        } else {
          findings.push(
            at(
              'shadowed',
              'error',
              `rule "${name}" is shadowed: ${who} above it ${verb(A)} all its traffic, so "${name}" (${B.rule.action}) never decides`,
              A,
            ),
          );
        }
      } else if (actionClass(A) !== actionClass(B) && A.source === 'user' && !dead.has(a)) {
        findings.push(
          at(
            'conflict',
            'warning',
            `rules "${A.rule.name}" (${A.rule.action}) and "${name}" (${B.rule.action}) overlap; for traffic matching both, "${A.rule.name}" wins`,
            A,
          ),
        );
      }
    }
    if (decided) continue;
    const sameAsDefault = defaultsCover(policy, B);
    if (
      sameAsDefault &&
      !rules.slice(b + 1).some((C) => C.active && mayOverlap(B, C) && C.rule.action !== B.rule.action)
    ) {
      findings.push(
        at(
          'redundant',
          'warning',
          `rule "${name}" is redundant: without it the default (${B.rule.action}) decides the same`,
        ),
      );
    }
  }
  findings.push(...listFindings(policy, options.lists));
  return findings;
}

/** deny and reject both block; a conflict is between allowing, blocking and asking. */
function actionClass(r: CompiledRule): 'allow' | 'block' | 'ask' {
  return r.rule.action === 'deny' || r.rule.action === 'reject' ? 'block' : r.rule.action;
}

function verb(r: CompiledRule): string {
  return { allow: 'allows', deny: 'denies', reject: 'rejects', ask: 'asks about' }[r.rule.action];
}

function defaultsCover(policy: CompiledPolicy, r: CompiledRule): boolean {
  const same = (d: { action: string; log: boolean }) => d.action === r.rule.action && d.log === r.rule.log;
  return (!r.incoming || same(policy.defaults.incoming)) && (!r.outgoing || same(policy.defaults.outgoing));
}

function isEmptySet(s: AddressSet): boolean {
  return s.v4.length === 0 && s.v6.length === 0 && s.hosts.size === 0 && s.suffixes.length === 0;
}

// ---- set algebra over match spaces ----

/** True when every connection B matches, A matches too (A is permanent and active; checked by the caller). */
export function covers(A: CompiledRule, B: CompiledRule): boolean {
  if ((B.incoming && !A.incoming) || (B.outgoing && !A.outgoing)) return false;
  if ((B.protocols & ~A.protocols) !== 0) return false;
  if (A.application !== null && A.application !== B.application) return false;
  if (A.sha256 !== null && A.sha256 !== B.sha256) return false;
  if (A.uid !== null && A.uid !== B.uid) return false;
  if (A.userName !== null && A.userName !== B.userName) return false;
  if (!portsCover(A.remotePorts, B.remotePorts) || !portsCover(A.localPorts, B.localPorts)) return false;
  if (!contextCovers(A, B)) return false;
  if (!interfacesCover(A.interfaces, B.interfaces)) return false;
  return addressesCover(A.remote, B.remote);
}

/** True when some connection surely matches both rules (a host name and an address are not assumed to meet). */
export function overlaps(A: CompiledRule, B: CompiledRule): boolean {
  return overlapsExceptAddresses(A, B) && addressesOverlap(A.remote, B.remote);
}

/** False only when no connection can match both rules (a host name may resolve to any address). */
export function mayOverlap(A: CompiledRule, B: CompiledRule): boolean {
  return overlapsExceptAddresses(A, B) && addressesMayOverlap(A.remote, B.remote);
}

function overlapsExceptAddresses(A: CompiledRule, B: CompiledRule): boolean {
  if (!((A.incoming && B.incoming) || (A.outgoing && B.outgoing))) return false;
  if ((A.protocols & B.protocols) === 0) return false;
  if (A.application !== null && B.application !== null && A.application !== B.application) return false;
  if (A.sha256 !== null && B.sha256 !== null && A.sha256 !== B.sha256) return false;
  if (A.uid !== null && B.uid !== null && A.uid !== B.uid) return false;
  if (A.userName !== null && B.userName !== null && A.userName !== B.userName) return false;
  if (A.parent !== null && B.parent !== null && A.parent !== B.parent) return false;
  // Ports only exist for TCP and UDP; a rule with ports and one without overlap only on those protocols.
  if (
    (A.remotePorts !== null || B.remotePorts !== null || A.localPorts !== null || B.localPorts !== null) &&
    (A.protocols & B.protocols & 3) === 0
  ) {
    return false;
  }
  if (!interfacesOverlap(A.interfaces, B.interfaces)) return false;
  return portsOverlap(A.remotePorts, B.remotePorts) && portsOverlap(A.localPorts, B.localPorts);
}

/**
 * Program context: A covers B when each field A sets, B sets the same (a parent is not taken for an
 * ancestor, and two globs are only compared as text: `*` still needs a known command line).
 * Different globs are taken to overlap.
 */
function contextCovers(A: CompiledRule, B: CompiledRule): boolean {
  if (A.parent !== null && A.parent !== B.parent) return false;
  if (A.ancestor !== null && A.ancestor !== B.ancestor) return false;
  return A.argumentsGlob === null || A.argumentsGlob.source === B.argumentsGlob?.source;
}

/** Every interface B matches, A matches too (null: any interface). */
function interfacesCover(a: InterfaceSet | null, b: InterfaceSet | null): boolean {
  if (a === null) return true;
  if (b === null) return false;
  return (
    [...b.names].every((n) => interfaceInSet(a, n)) &&
    b.prefixes.every((p) => a.prefixes.some((q) => p.startsWith(q)))
  );
}

/** Some interface name matches both (a prefix and a longer one meet). */
function interfacesOverlap(a: InterfaceSet | null, b: InterfaceSet | null): boolean {
  if (a === null || b === null) return true;
  if ([...b.names].some((n) => interfaceInSet(a, n)) || [...a.names].some((n) => interfaceInSet(b, n)))
    return true;
  return a.prefixes.some((p) => b.prefixes.some((q) => p.startsWith(q) || q.startsWith(p)));
}

function portsCover(a: readonly PortRange[] | null, b: readonly PortRange[] | null): boolean {
  if (a === null) return true;
  if (b === null) return false;
  return b.every((rb) => {
    // Walk A's ranges (sorted copy) and check they tile rb without gaps.
    let next = rb.from;
    for (const ra of [...a].sort((x, y) => x.from - y.from)) {
      if (ra.from <= next && ra.to >= next) next = ra.to + 1;
      if (next > rb.to) return true;
    }
    return next > rb.to;
  });
}

function portsOverlap(a: readonly PortRange[] | null, b: readonly PortRange[] | null): boolean {
  if (a === null || b === null) return true;
  return a.some((ra) => b.some((rb) => ra.from <= rb.to && rb.from <= ra.to));
}

function rangesCover<T extends number | bigint>(a: readonly T[], b: readonly T[]): boolean {
  // Both are merged, sorted [first, last, ...]: each B range must sit inside one A range. One walk
  // over both (a list holds 100,000 ranges; pairs of them would be 10 billion comparisons).
  let j = 0;
  for (let i = 0; i < b.length; i += 2) {
    while (j < a.length && a[j + 1]! < b[i]!) j += 2;
    if (j >= a.length || !(a[j]! <= b[i]! && b[i + 1]! <= a[j + 1]!)) return false;
  }
  return true;
}

/** How many ranges of b meet a range of a (both merged and sorted), in one walk; stops at `stop`. */
export function rangesMeeting<T extends number | bigint>(
  a: readonly T[],
  b: readonly T[],
  stop = Number.POSITIVE_INFINITY,
): number {
  let n = 0;
  let i = 0;
  let j = 0;
  while (i < a.length && j < b.length && n < stop) {
    if (a[i + 1]! < b[j]!) i += 2;
    else if (b[j + 1]! < a[i]!) j += 2;
    else {
      n++;
      j += 2;
    }
  }
  return n;
}

function rangesOverlap<T extends number | bigint>(a: readonly T[], b: readonly T[]): boolean {
  return rangesMeeting(a, b, 1) > 0;
}

function nameCoveredBy(name: string, set: AddressSet): boolean {
  return set.hosts.has(name) || set.suffixes.some((s) => name.endsWith(s));
}

function addressesCover(a: AddressSet | null, b: AddressSet | null): boolean {
  if (a === null) return true;
  if (b === null) return false;
  if (!rangesCover(a.v4, b.v4) || !rangesCover(a.v6, b.v6)) return false;
  // A domain list is covered only by the same list: its content changes with every refresh.
  if (b.domainLists.some((l) => !a.domainLists.some((m) => m.name === l.name))) return false;
  for (const h of b.hosts) if (!nameCoveredBy(h, a)) return false;
  return b.suffixes.every((sb) => a.suffixes.some((sa) => sb.endsWith(sa)));
}

function addressesMayOverlap(a: AddressSet | null, b: AddressSet | null): boolean {
  if (addressesOverlap(a, b)) return true;
  const named = (s: AddressSet) => s.hosts.size > 0 || s.suffixes.length > 0 || s.domainLists.length > 0;
  const numbered = (s: AddressSet) => s.v4.length > 0 || s.v6.length > 0;
  return a !== null && b !== null && ((named(a) && (numbered(b) || named(b))) || (named(b) && numbered(a)));
}

function addressesOverlap(a: AddressSet | null, b: AddressSet | null): boolean {
  if (a === null || b === null) return true;
  if (rangesOverlap(a.v4, b.v4) || rangesOverlap(a.v6, b.v6)) return true;
  for (const h of a.hosts) if (nameCoveredBy(h, b)) return true;
  for (const h of b.hosts) if (nameCoveredBy(h, a)) return true;
  if (a.domainLists.some((l) => b.domainLists.some((m) => m.name === l.name))) return true;
  return a.suffixes.some((sa) => b.suffixes.some((sb) => sa.endsWith(sb) || sb.endsWith(sa)));
}
