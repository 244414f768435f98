/**
 * Every method of the administration protocol as a typed value shared by
 * the engine and the console: its name, its params schema, its result type
 * and the least role that may call it. docs/protocol.md documents this table;
 * a test keeps the two in step.
 */
import { z } from 'zod';
import { type AskAnswerParams, type AskPrompt, type AskResolution, askAnswerSchema } from './asks.js';
import type { ConnectionsListResult } from './connections.js';
import { LIMITS } from './limits.js';
import type { LogItem } from './log-item.js';
import { logQuerySchema } from './log-item.js';
import { PolicyMethods } from './policy-methods.js';

/** Who may call a method: anyone (to log in), an auditor (read-only) or an administrator. */
export type Role = 'auditor' | 'administrator';
export type Access = 'anyone' | Role;

/** A method: name, params schema, result type (phantom) and access. */
export interface Method<P, R> {
  readonly name: string;
  readonly params: z.ZodType<P, unknown>;
  readonly access: Access;
  /** Never set; carries the result type for callers. */
  readonly result?: R;
  readonly summary: string;
}

function method<P, R>(
  name: string,
  access: Access,
  params: z.ZodType<P, unknown>,
  summary: string,
): Method<P, R> {
  return { name, access, params, summary };
}

const empty = z.strictObject({});
type Empty = z.output<typeof empty>;

/** A console user as the protocol shows it. */
export interface UserJson {
  readonly name: string;
  readonly role: Role;
}

const roleSchema = z.enum(['administrator', 'auditor'], {
  error: 'role must be "administrator" or "auditor"',
});

/** A rule as JSON on the wire: the same shape as in policy files (docs/policy.md). */
export type RuleJson = Record<string, unknown>;
/** A warning about a stored rule (not a refusal), e.g. kind "missing-application"; the lint channel's wording. */
export interface RuleWarning {
  kind: string;
  message: string;
}

export interface LoginResult {
  /** Hex, 32 characters (128 random bits): names this connection on the UDP channel. */
  readonly connectionId: string;
  /** Base64, 32 bytes: the AES-256-GCM key of this connection's datagrams. */
  readonly udpKey: string;
  readonly user: string;
  readonly role: Role;
  /** Seconds the engine waits for a UDP registration before it pushes log items over TCP. */
  readonly udpGraceSeconds: number;
}

export interface WhoamiResult {
  readonly user: string;
  readonly role: Role;
  readonly connectionId: string;
  readonly remoteAddress: string;
  readonly since: string;
  readonly logTransport: LogTransport;
}

/** How log items reach this console: over UDP, over the TCP channel, or not yet decided. */
export type LogTransport = 'udp' | 'tcp' | 'pending';

export interface StatusResult {
  readonly version: string;
  readonly hostname: string;
  readonly startedAt: string;
  readonly applicationPort: number;
  readonly fingerprint: string;
  readonly remoteAdministration: boolean;
  readonly mode: string;
  readonly rules: number;
  readonly internalRules: number;
  readonly consoles: number;
  readonly lastLogSeq: number;
  readonly kernel: string;
  /**
   * How connections are attributed to processes: `bpf (cgroup PATH)`, `proc (why BPF is not
   * used)`, or `none` without a kernel backend (docs/attribution.md).
   */
  readonly attribution: string;
  /** The configuration version in force and its policy's hash (src/policy-hash.ts), for the fleet. */
  readonly policyVersion: number;
  readonly policyHash: string;
  /**
   * The hash of the rules in force: the policy with its subscriptions' rules as fetched (`include:`),
   * the same as policyHash when it includes nothing; two engines with one policy and different copies
   * of a subscription differ here.
   */
  readonly rulesHash?: string;
  /** Queued packets decided in the last 60 s (0 without a kernel backend). */
  readonly decisionsPerMinute: number;
  /** What is wrong now (a ruleset the kernel refused); empty when all is well. */
  readonly problems: string[];
  /** The policy's lists as the engine loaded them (docs/policy.md, "Lists"); absent without lists. */
  readonly lists?: readonly ListStatus[];
  /** The policy's rule subscriptions as the engine loaded them (docs/policy.md, "Included rules"); absent without any. */
  readonly includes?: readonly IncludeStatus[];
  /** The kernel's verdict cache (docs/attribution.md, "Verdict cache"); absent without a kernel backend. */
  readonly verdictCache?: VerdictCacheState;
  /** Which way the BPF path found connections' sockets (docs/attribution.md, "Connect-time slots"); absent on /proc. */
  readonly attributionLookups?: AttributionLookups;
}

/**
 * engine.status `attributionLookups`, counts since the engine started: TCP connections answered
 * from the connect-time slots (memory, no system call), lookups sock_diag answered, and the slots'
 * misses by reason (empty: no connect seen or its socket closed; other: another connection's tuple;
 * busy: being written; poisoned: two connects met on the slot; unread: no record or socket owner).
 */
export interface AttributionLookups {
  /** `on`, `off`, or why the kernel refused the slots. */
  readonly slots: string;
  readonly fromSlots: number;
  readonly bySockDiag: number;
  readonly slotMisses: {
    readonly empty: number;
    readonly other: number;
    readonly busy: number;
    readonly poisoned: number;
    readonly unread: number;
  };
}

/** engine.status `verdictCache`: in use or why not, and its counts since the engine started. */
export interface VerdictCacheState {
  readonly inUse: boolean;
  /** Why it is not in use (off by the setting, /proc attribution, refused by the kernel). */
  readonly why?: string;
  /** Entries of the policy in force, the generation (one per policy change), entries inserted. */
  readonly entries?: number;
  readonly generation?: number;
  readonly inserted?: number;
  /** Connections decided in the kernel by an entry / looked up and not found (queued). */
  readonly hits?: number;
  readonly misses?: number;
  /** Entries found whose event the ring buffer had no room for (then queued, decided and logged as misses), hits of forgotten entries. */
  readonly dropped?: number;
  readonly unknown?: number;
  /** Allowed connections that were not inserted, by reason (e.g. "its rules use fields outside the key"). */
  readonly skipped?: Readonly<Record<string, number>>;
  /** Entries of an earlier policy that a change kept (its policy decides them alike: inserted anew, or by a new decision first) / did not keep. */
  readonly carried?: number;
  readonly notCarried?: number;
  /** The liveness element the ruleset requires to accept the cache's connections (src/engine/cache-live.ts). */
  readonly liveness?: VerdictCacheLiveness;
}

/**
 * engine.status `verdictCache.liveness`: `live` while the element is in the kernel (renewed within its
 * 2 s timeout); `state` is `waiting` (for `unguarded` connections), `starting`, `renewing`, `failing` (nft refuses the renewals, or none came),
 * `restarting` (the renewer ended: started again after a wait) or `stopped`; counts since the engine started.
 */
export interface VerdictCacheLiveness {
  readonly state: 'waiting' | 'starting' | 'renewing' | 'failing' | 'restarting' | 'stopped';
  readonly live: boolean;
  readonly renewals: number;
  readonly failures: number;
  readonly restarts: number;
  /** ISO 8601 time of the last renewal the kernel took. */
  readonly lastRenewal?: string;
  /** The last failure: nft's error, or how the renewer ended. */
  readonly lastError?: string;
  /** While `waiting`: TCP connections begun before the mark guards were attached, still connecting. */
  readonly unguarded?: number;
}

/** One rule subscription of the policy in engine.status. */
export interface IncludeStatus {
  readonly name: string;
  /** The file path or URL. */
  readonly source: string;
  /** Where the rules in force came from: `file`, `network`, `last good copy` (on disk) or `none`. */
  readonly copy: string;
  /** Rules of the copy in force. */
  readonly rules: number;
  readonly bytes: number;
  readonly loadedAt?: string;
  readonly lastAttempt?: string;
  /** Why the last attempt failed (with the located problems of a refused file); absent after a success. */
  readonly lastError?: string;
  readonly nextRefresh?: string;
}

/** One list of the policy in engine.status. */
export interface ListStatus {
  readonly name: string;
  readonly format: string;
  /** The file path or URL. */
  readonly source: string;
  /** Where the content in force came from: `file`, `network`, `last good copy` (on disk) or `none`. */
  readonly copy: string;
  readonly entries: number;
  readonly bytes: number;
  /** Lines skipped as bad, and the first few with their line numbers. */
  readonly badLines: number;
  readonly problems: readonly { readonly line: number; readonly message: string }[];
  readonly loadedAt?: string;
  readonly lastAttempt?: string;
  readonly lastError?: string;
  readonly nextRefresh?: string;
}

export interface LogsQueryResult {
  readonly items: readonly LogItem[];
  /** The newest seq the engine has stored (0 when none). */
  readonly lastSeq: number;
  /**
   * Present when the answer stopped before the query's end: a text search stopped at the engine's
   * work budget, or the answer reached its size cap with fewer items than `limit`. The items up to
   * this seq were searched (every match up to it is in `items`); ask again with fromSeq = searchedTo + 1.
   */
  readonly searchedTo?: number;
}

const ruleName = z.string().min(1).max(120);
const userName = z.string().max(LIMITS.userName);

/** Confirmed apply: the change is rolled back by itself unless config.confirm arrives within `seconds`. */
const confirmSchema = z.strictObject({ seconds: z.number().int().min(1).max(3600).default(60) }).optional();
export interface ConfirmParam {
  confirm?: { seconds: number };
}
/** Present in a change's result when it was applied with confirm. */
export interface Pending {
  pending?: { version: number; previous: number; deadline: string };
}

/** One configuration version as listed by config.history. */
export interface VersionJson {
  readonly version: number;
  readonly time: string;
  readonly user: string;
  readonly source: string;
  readonly what: 'policy' | 'settings' | 'rollback' | 'revert' | 'reload' | 'initial';
  readonly restores?: number;
  /** For a revert: the unconfirmed version whose effect it undid (changes after it were kept). */
  readonly reverts?: number;
}
const versionNumber = z.number().int().min(1);
/** The name of a list or rule subscription of the policy. */
const sourceName = z.string().min(1).max(64);

/** A connection for policy.explain, described like the CLI describes one. */
export const explainConnectionSchema = z.strictObject({
  direction: z.enum(['incoming', 'outgoing']),
  protocol: z.enum(['tcp', 'udp', 'icmp', 'other']).default('tcp'),
  application: z.string().max(LIMITS.path).optional(),
  uid: z.number().int().min(0).optional(),
  user: z.string().max(LIMITS.userName).optional(),
  remoteAddress: z.string().max(LIMITS.address).optional(),
  remotePort: z.number().int().min(1).max(65535).optional(),
  localPort: z.number().int().min(1).max(65535).optional(),
  hosts: z.array(z.string().max(LIMITS.hostName)).max(LIMITS.hosts).default([]),
  /** The interface (rules with `interface`): outgoing leaves by it, incoming came in by it. */
  interface: z.string().min(1).max(15).optional(),
  at: z.string().max(LIMITS.instant).datetime({ offset: true }).optional(),
  /** Program context: the parent's executable, the ancestors' (parent first), the command line. */
  parent: z.string().max(LIMITS.path).optional(),
  ancestors: z.array(z.string().max(LIMITS.path)).max(32).optional(),
  arguments: z.string().max(65_536).optional(),
});

export const Methods = {
  login: method<{ user?: string; password?: string; localToken?: string }, LoginResult>(
    'session.login',
    'anyone',
    z.strictObject({
      user: z.string().min(1).max(LIMITS.userName).optional(),
      password: z.string().max(LIMITS.password).optional(),
      localToken: z.string().max(256).optional(),
    }),
    'log in with user and password, or with the local administrator token',
  ),
  logout: method<Empty, Empty>(
    'session.logout',
    'auditor',
    empty,
    'end the session (the TCP connection closes)',
  ),
  whoami: method<Empty, WhoamiResult>(
    'session.whoami',
    'auditor',
    empty,
    'who this session is and how it receives log items',
  ),
  status: method<Empty, StatusResult>('engine.status', 'auditor', empty, "the engine's state at a glance"),
  settingsGet: method<Empty, { settings: Record<string, unknown> }>(
    'settings.get',
    'auditor',
    empty,
    'the settings',
  ),
  settingsSet: method<
    { settings: Record<string, unknown> } & ConfirmParam,
    { settings: Record<string, unknown> } & Pending
  >(
    'settings.set',
    'administrator',
    z.strictObject({ settings: z.record(z.string(), z.unknown()), confirm: confirmSchema }),
    'change settings: the keys given are merged into the current ones and validated',
  ),
  rulesList: method<{ internal: boolean }, { rules: RuleJson[]; internal?: RuleJson[] }>(
    'rules.list',
    'auditor',
    z.strictObject({ internal: z.boolean().default(false) }),
    'the ordered user rules; with internal: true also the internal rules (read-only)',
  ),
  rulesGet: method<{ name: string }, { rule: RuleJson; position: number }>(
    'rules.get',
    'auditor',
    z.strictObject({ name: ruleName }),
    'one rule by name',
  ),
  rulesAdd: method<
    { rule: Record<string, unknown>; position?: number } & ConfirmParam,
    { rule: RuleJson; position: number; warnings?: RuleWarning[] } & Pending
  >(
    'rules.add',
    'administrator',
    z.strictObject({
      rule: z.record(z.string(), z.unknown()),
      position: z.number().int().min(0).optional(),
      confirm: confirmSchema,
    }),
    'add a rule at a position (0 = first; default: last)',
  ),
  rulesUpdate: method<
    { name: string; rule: Record<string, unknown> } & ConfirmParam,
    { rule: RuleJson; position: number; warnings?: RuleWarning[] } & Pending
  >(
    'rules.update',
    'administrator',
    z.strictObject({ name: ruleName, rule: z.record(z.string(), z.unknown()), confirm: confirmSchema }),
    'replace a rule (it keeps its position; it may be renamed)',
  ),
  rulesRemove: method<{ name: string } & ConfirmParam, Pending>(
    'rules.remove',
    'administrator',
    z.strictObject({ name: ruleName, confirm: confirmSchema }),
    'remove a rule',
  ),
  rulesMove: method<{ name: string; position: number } & ConfirmParam, { position: number } & Pending>(
    'rules.move',
    'administrator',
    z.strictObject({ name: ruleName, position: z.number().int().min(0), confirm: confirmSchema }),
    'move a rule to a position (0 = first)',
  ),
  explain: method<z.output<typeof explainConnectionSchema>, Record<string, unknown>>(
    'policy.explain',
    'auditor',
    explainConnectionSchema,
    'which rule decides a connection and why each earlier rule did not match',
  ),
  lint: method<Empty, { findings: Record<string, unknown>[] }>(
    'policy.lint',
    'auditor',
    empty,
    'shadowed, redundant and conflicting rules',
  ),
  logsQuery: method<z.output<typeof logQuerySchema>, LogsQueryResult>(
    'logs.query',
    'auditor',
    logQuerySchema,
    'stored log items, oldest first, filtered',
  ),
  logsSubscribe: method<{ fromSeq?: number }, { transport: LogTransport; lastSeq: number }>(
    'logs.subscribe',
    'auditor',
    z.strictObject({ fromSeq: z.number().int().positive().optional() }),
    'start receiving new log items (over UDP once registered, else over TCP)',
  ),
  logsTransport: method<{ udpReceiving: boolean }, { transport: LogTransport }>(
    'logs.transport',
    'auditor',
    z.strictObject({ udpReceiving: z.boolean() }),
    'the console reports whether UDP datagrams arrive; false moves log items to TCP',
  ),
  asksList: method<Empty, { prompts: AskPrompt[] }>(
    'asks.list',
    'auditor',
    empty,
    'connections held by an `ask` rule, waiting for an answer',
  ),
  asksAnswer: method<AskAnswerParams, AskResolution>(
    'asks.answer',
    'administrator',
    // Callers may leave out defaulted fields; the handler receives them filled in (the server parses first).
    askAnswerSchema as unknown as z.ZodType<AskAnswerParams, unknown>,
    'answer a prompt: allow or deny, once / temporary / always, for the application, port or host',
  ),
  configHistory: method<
    Empty,
    { versions: VersionJson[]; pending: { version: number; previous: number; deadline: string }[] }
  >(
    'config.history',
    'auditor',
    empty,
    'the kept configuration versions, newest first (without the texts), and changes waiting for confirm',
  ),
  configDiff: method<{ a: number; b: number }, { policy: string; settings: string }>(
    'config.diff',
    'auditor',
    z.strictObject({ a: versionNumber, b: versionNumber }),
    'unified line diffs of policy.yaml and settings.yaml from version a to version b',
  ),
  configRollback: method<{ version: number } & ConfirmParam, { version: number } & Pending>(
    'config.rollback',
    'administrator',
    z.strictObject({ version: versionNumber, confirm: confirmSchema }),
    'make the configuration of a version current again, as a new version',
  ),
  configConfirm: method<{ version: number }, { version: number }>(
    'config.confirm',
    'administrator',
    z.strictObject({ version: versionNumber }),
    'keep a change applied with confirm (else it is rolled back at its deadline)',
  ),
  configUndo: method<{ version: number }, { version: number; current: number }>(
    'config.undo',
    'administrator',
    z.strictObject({ version: versionNumber }),
    'undo a change waiting for confirm now, as its deadline would (a failed check need not wait for it)',
  ),
  usersList: method<Empty, { users: UserJson[] }>(
    'users.list',
    'auditor',
    empty,
    'the users who may log in remotely, with their roles (never their passwords)',
  ),
  usersAdd: method<{ name: string; role: Role; password: string }, UserJson>(
    'users.add',
    'administrator',
    z.strictObject({ name: userName, role: roleSchema, password: z.string().max(LIMITS.password) }),
    'add a user with a role and a password (at least 12 characters)',
  ),
  usersRemove: method<{ name: string }, Empty>(
    'users.remove',
    'administrator',
    z.strictObject({ name: userName }),
    'remove a user (their consoles are logged out); never the last administrator',
  ),
  usersSetRole: method<{ name: string; role: Role }, UserJson>(
    'users.setRole',
    'administrator',
    z.strictObject({ name: userName, role: roleSchema }),
    "change a user's role (their consoles are logged out); never demotes the last administrator",
  ),
  usersSetPassword: method<{ name: string; password: string }, Empty>(
    'users.setPassword',
    'administrator',
    z.strictObject({ name: userName, password: z.string().max(LIMITS.password) }),
    "set a user's password (their other consoles are logged out)",
  ),
  hints: method<Empty, Record<string, unknown>>(
    'firewall.hints',
    'auditor',
    empty,
    'what to open in a network firewall, as ready rules',
  ),
  ...PolicyMethods,
  connectionsList: method<Empty, ConnectionsListResult>(
    'connections.list',
    'auditor',
    empty,
    'connections open on the engine host now, with the processes that own them',
  ),
  programsHash: method<{ path: string }, { path: string; sha256: string }>(
    'programs.hash',
    'administrator',
    z.strictObject({
      path: z
        .string()
        .max(4096, 'path is longer than 4096 characters')
        .regex(/^\/[^\0]*[^/]$/, 'path must be an absolute path to a program, e.g. /usr/bin/curl'),
    }),
    "the SHA-256 of a program on the engine's host (to pin a rule to it)",
  ),
  listsRefresh: method<{ name: string }, { list: ListStatus; done: boolean }>(
    'lists.refresh',
    'administrator',
    z.strictObject({ name: sourceName }),
    "fetch (or read) one of the policy's lists now; its state once done (done false: still fetching after 8 s)",
  ),
  includesRefresh: method<{ name: string }, { include: IncludeStatus; done: boolean }>(
    'includes.refresh',
    'administrator',
    z.strictObject({ name: sourceName }),
    "fetch (or read) one of the policy's rule subscriptions now; its state once done (done false: still fetching after 8 s)",
  ),
} as const;

/** All methods by wire name. */
export const METHODS_BY_NAME: ReadonlyMap<string, Method<unknown, unknown>> = new Map(
  Object.values(Methods).map((m) => [m.name, m as Method<unknown, unknown>]),
);

/** Notifications the engine sends to a console. */
export const Notifications = {
  /** Log items pushed over TCP (fallback). Params: { items: LogItem[] }. */
  logItems: 'logs.items',
  /** The log transport changed. Params: { transport: LogTransport, reason: string }. */
  logTransport: 'logs.transport',
  /** A connection waits for an answer. Params: AskPrompt. */
  askPrompt: 'asks.prompt',
  /** A prompt ended (answered, timed out or dropped). Params: AskResolution. */
  askResolved: 'asks.resolved',
  /** The engine is about to close this session (its user was removed, re-roled, or got a new password). Params: { reason }. */
  sessionEnded: 'session.ended',
} as const;
