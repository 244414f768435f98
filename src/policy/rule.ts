/**
 * The rule model of the network security policy (SPEC section 1). These are
 * plain, validated values: parse.ts makes them from files, compile.ts turns
 * them into something fast to evaluate, serialize.ts writes them back.
 */
import type { IpAddress, IpRange } from '../ip/index.js';
import type { AddressLists } from './address-lists.js';
import type { HostLists } from './domain-lists.js';

/** Which way a connection goes, seen from this host. */
export type Direction = 'incoming' | 'outgoing' | 'both';
/** The protocols a rule can name; `tcp+udp` is both, `any` includes ICMP and everything else. */
export type Protocol = 'tcp' | 'udp' | 'tcp+udp' | 'icmp' | 'any';
/** What a rule does with a matching connection. `reject` refuses at once (TCP reset / ICMP), `deny` drops. */
export type Action = 'allow' | 'deny' | 'reject' | 'ask';
/** enforce: decide; learning: allow what no rule decides and propose a rule; monitor: log only, never block. */
export type Mode = 'enforce' | 'learning' | 'monitor';

export const DIRECTIONS: readonly Direction[] = ['incoming', 'outgoing', 'both'];
export const PROTOCOLS: readonly Protocol[] = ['tcp', 'udp', 'tcp+udp', 'icmp', 'any'];
export const ACTIONS: readonly Action[] = ['allow', 'deny', 'reject', 'ask'];
export const MODES: readonly Mode[] = ['enforce', 'learning', 'monitor'];

/** An inclusive port range; a single port has from === to. */
export interface PortRange {
  readonly from: number;
  readonly to: number;
}

/**
 * One entry of a remote address list.
 * - `localhost`: 127.0.0.0/8 and ::1
 * - `ip`: one address, a CIDR or a first-last range (kept with the text the user wrote, canonicalised)
 * - `host`: a DNS name, matched against the names the engine resolved for the remote address;
 *   `*.example.com` matches every name below example.com (not example.com itself)
 * - `group`: a named address group of the policy, written `@name`
 * - `list`: a named list of the policy (`lists:`), written `list:name`: its addresses and names
 */
export type AddressSpec =
  | { readonly kind: 'localhost' }
  | { readonly kind: 'ip'; readonly range: IpRange }
  | { readonly kind: 'host'; readonly name: string }
  | { readonly kind: 'group'; readonly name: string }
  | { readonly kind: 'list'; readonly name: string };

/** How a list's text is read (docs/policy.md, "Lists"). */
export type ListFormat = 'hosts' | 'domains' | 'ips';
export const LIST_FORMATS: readonly ListFormat[] = ['hosts', 'domains', 'ips'];

/** Where a list comes from: a local file, or an https URL fetched and refreshed by the engine. */
export type ListSource = (
  | { readonly file: string; readonly url?: undefined }
  | { readonly url: string; readonly file?: undefined; readonly refreshSeconds: number }
) & {
  readonly format: ListFormat;
  /** Largest list accepted, in bytes and in entries; a bigger one is refused whole (the last good copy stays). */
  readonly maxBytes: number;
  readonly maxEntries: number;
};

/**
 * A rule subscription (docs/policy.md, "Included rules"): a rules file at a local path or an https
 * URL whose rules join the policy, named `<name>/<rule name>`, after the policy's own rules.
 */
export type IncludeSource = (
  | { readonly file: string; readonly url?: undefined }
  | { readonly url: string; readonly file?: undefined; readonly refreshSeconds: number }
) & {
  readonly name: string;
  /** Largest rules file accepted, in bytes; a bigger one is refused whole (the last good copy stays). */
  readonly maxBytes: number;
};

/** A rule applies only while a setting has a value (e.g. `syslog.enabled` equals true). */
export interface RuleCondition {
  readonly setting: string;
  readonly equals: boolean | number | string;
}

/** One rule of the policy. Absent optional fields mean "any". */
export interface Rule {
  readonly name: string;
  readonly enabled: boolean;
  readonly direction: Direction;
  readonly protocol: Protocol;
  /** Absolute executable path, or 'any'. */
  readonly application: string;
  /** SHA-256 of the application's executable (64 lower-case hex): the rule matches only that file content. */
  readonly sha256?: string;
  /** A numeric uid or a user name. */
  readonly user?: number | string;
  readonly localPorts?: readonly PortRange[];
  readonly remotePorts?: readonly PortRange[];
  /** Remote addresses; absent means any. */
  readonly remote?: readonly AddressSpec[];
  /** Executable path of the process's direct parent (program context). */
  readonly parent?: string;
  /** Executable path of any ancestor of the process, its parent up to init. */
  readonly ancestor?: string;
  /** A glob over the command line (argv joined by single spaces); see glob.ts. */
  readonly arguments?: string;
  /**
   * Network interfaces (the outgoing one for outgoing connections, the incoming one for incoming):
   * exact names, or a prefix written with one trailing `*` (`wg*`); absent means any.
   */
  readonly interface?: readonly string[];
  readonly action: Action;
  /** Log allowed connections too; blocks and asks are always logged. */
  readonly log: boolean;
  readonly condition?: RuleCondition;
  /** ISO 8601 instant after which the rule no longer matches (temporary rules). */
  readonly expires?: string;
  readonly comment?: string;
}

/** What happens to a connection no rule decides, per direction. */
export interface DefaultAction {
  readonly action: Action;
  readonly log: boolean;
}

/** A whole policy file. */
export interface Policy {
  readonly mode: Mode;
  readonly defaults: { readonly incoming: DefaultAction; readonly outgoing: DefaultAction };
  readonly addressGroups: Readonly<Record<string, readonly AddressSpec[]>>;
  /** Named lists (`list:name` in `remote`); absent when the policy defines none. */
  readonly lists?: Readonly<Record<string, ListSource>>;
  readonly rules: readonly Rule[];
  /** Rule subscriptions, in order; their rules come after `rules`. Absent when there are none. */
  readonly include?: readonly IncludeSource[];
  /** Included rules (`sub/rule`) switched off by the administrator; kept across refreshes. */
  readonly disabled?: readonly string[];
}

/** A rule generated from the settings (SPEC section 2): evaluated before user rules, never listed with them. */
export interface InternalRule extends Rule {
  /** Stable identifier, e.g. `internal.dns.engine`. */
  readonly id: string;
  /** The spec's row this rule implements, e.g. "DNS queries". */
  readonly purpose: string;
  /** Why the rule has its current shape, e.g. "remote administration disabled: localhost only". */
  readonly because: string;
}

/**
 * A rule's stable identity for its counters: `internal <id>` for internal rules, `user <name>` for
 * the user's (names are unique in a policy; positions change, names stay).
 */
export function ruleIdentity(rule: Rule | InternalRule): string {
  return 'id' in rule && typeof rule.id === 'string' ? `internal ${rule.id}` : `user ${rule.name}`;
}

/**
 * One connection as the policy sees it, with every fact already resolved
 * (process path, uid and user name, host names of the remote address).
 * Evaluation never does I/O and never reads the clock: `now` is a fact too.
 */
export interface ConnectionFacts {
  readonly direction: 'incoming' | 'outgoing';
  readonly protocol: 'tcp' | 'udp' | 'icmp' | 'other';
  /** Executable path of the local process; null when it could not be attributed. */
  readonly application: string | null;
  /**
   * SHA-256 (lower-case hex) of the file the process runs, computed only when a rule pins this
   * application (src/engine/exe-pin.ts); absent or null when not computed or not computable.
   */
  readonly applicationSha256?: string | null;
  /**
   * applicationIdOf(application) (application-ids.ts), given by the engine once per executable it
   * knows, not per connection; it must number `application`. Absent or NO_APPLICATION_ID: the
   * application is looked up by its path.
   */
  readonly applicationId?: number;
  readonly uid: number | null;
  readonly user: string | null;
  readonly localAddress: IpAddress | null;
  readonly localPort: number | null;
  readonly remoteAddress: IpAddress | null;
  readonly remotePort: number | null;
  /** Lower-case DNS names known for the remote address (from the engine's resolver). */
  readonly remoteHosts: readonly string[];
  /**
   * Which of the policy's domain lists remoteHosts are in, as the engine remembers it per learned
   * name (domain-lists.ts: hostListsOf); it must describe remoteHosts. Bits for another policy's
   * table are not used; absent: the names are looked up in the lists.
   */
  readonly remoteHostLists?: HostLists;
  /**
   * Which of the policy's large address sets (a list's networks) remoteAddress is in, as the engine
   * remembers it per remote address (address-lists.ts: remoteFactsOf); it must describe
   * remoteAddress. Bits for another policy's table are not used; absent: the sets are searched.
   */
  readonly remoteAddressLists?: AddressLists;
  /**
   * The interface the connection leaves by (outgoing) or came in by (incoming); null or absent
   * when unknown (then a rule naming interfaces does not match). Gathered only for policies with
   * an `interface` rule.
   */
  readonly interface?: string | null;
  /** Milliseconds since the epoch. */
  readonly now: number;
  /**
   * Program context, gathered only when a rule uses it (CompiledPolicy.needs). The executable of
   * the direct parent; null when unknown (the process is gone, not attributed, or not gathered).
   */
  readonly parent?: string | null;
  /** Executables of the ancestors, parent first, up to init; empty when unknown. */
  readonly ancestors?: readonly string[];
  /** The command line, argv joined by single spaces; null when unknown. */
  readonly arguments?: string | null;
}

/** Where a decision came from. */
export type DecisionSource = 'internal' | 'user' | 'default';

/** The outcome of evaluating one connection. */
export interface Decision {
  /** What the engine does: after the mode is applied (monitor never blocks; learning allows undecided traffic). */
  readonly verdict: Action;
  /** What the deciding rule or default says, before the mode. */
  readonly action: Action;
  readonly source: DecisionSource;
  /** Name of the deciding rule; for a default, `default incoming` / `default outgoing`. */
  readonly ruleName: string;
  /** Position of the deciding rule in evaluation order (internal rules first), -1 for a default. */
  readonly ruleIndex: number;
  /** Whether the decision is a log item. Every block and every ask is. */
  readonly log: boolean;
  readonly mode: Mode;
  /** In learning mode, the rule Warden proposes for an undecided connection. */
  readonly proposal?: Rule;
}
