/**
 * What the administration handlers (handlers.ts and the modules beside it) need from the engine,
 * and who calls them.
 */
import type { FileHasher } from '../host-programs.js';
import type { HostEnvironment, Policy, Rule } from '../policy/index.js';
import type { ListLintFacts } from '../policy/lint.js';
import type { ListContent } from '../policy/list-format.js';
import type { AskAnswer, AskPrompt, AskResolution } from '../protocol/asks.js';
import type { IncludeStatus, ListStatus, StatusResult } from '../protocol/methods.js';
import type { Settings } from '../settings/index.js';
import type { ConfigStore } from './config-store.js';
import type { Confirmations } from './confirm.js';
import type { ConnectionSource } from './connections.js';
import type { LogStore } from './log-store.js';
import type { ProposalBook } from './proposals.js';

export type { FileHasher };

/** Who is calling, for audit items. */
export interface Caller {
  readonly user: string;
  readonly source: string;
}

export type ParamsOf<M> = M extends { params: { _output: infer P } } ? P : never;
type ResultOf<M> = M extends { result?: infer R } ? R : never;
/** The handler of one method. */
export type Handler<M> = (params: ParamsOf<M>, caller: Caller) => Promise<ResultOf<M>> | ResultOf<M>;

/** What the handlers need from the engine. */
export interface HandlerContext {
  readonly config: ConfigStore;
  readonly logs: LogStore;
  readonly host: HostEnvironment;
  readonly now: () => number;
  /** Everything engine.status reports that the handlers do not know themselves. */
  readonly status: () => Omit<
    StatusResult,
    | 'mode'
    | 'rules'
    | 'internalRules'
    | 'lastLogSeq'
    | 'remoteAdministration'
    | 'applicationPort'
    | 'attribution'
    | 'policyVersion'
    | 'policyHash'
    | 'decisionsPerMinute'
    | 'problems'
  > & { attribution?: string; decisionsPerMinute?: number; problems?: string[] };
  /** Resolves once the configuration in force has reached the kernel (default: at once). */
  readonly settled?: () => Promise<void>;
  /**
   * The port the engine serves (wardend --port overrides the settings); engine.status and
   * firewall.hints report it. Default: settings.applicationPort.
   */
  readonly servedPort?: () => number;
  /** Firewall hints for the application port; default: src/hints for any address. */
  readonly hints?: (applicationPort: number) => Record<string, unknown>;
  /** Connections held by `ask` rules (the engine's kernel backend); absent: nothing is ever held. */
  readonly asks?: AskService;
  /** Called after the settings changed (the server re-reads remote administration, the engine reloads). */
  readonly onSettingsChanged?: (settings: Settings) => void;
  /** Changes applied with confirm, waiting for config.confirm (the server closes it); default: a new one. */
  readonly confirmations?: Confirmations;
  /** Learning mode's proposals (the engine's enforcer fills it); absent: proposals.* answer NOT_FOUND. */
  readonly proposals?: ProposalBook;
  /** The connections open on the engine's host (connections.list); absent: the method says there are none to see. */
  readonly connections?: ConnectionSource;
  /** Hashes files (the engine's ExeHasher) for programs.hash and the pin findings of policy.lint; absent: neither hashes. */
  readonly hasher?: FileHasher;
  /**
   * Per-rule counters by rule identity (ruleIdentity: `user <name>`, `internal <id>`), read fresh from
   * the kernel (src/engine/rule-counters.ts); absent: every rule shows 0 matches.
   */
  readonly ruleCounts?: () => Promise<ReadonlyMap<string, { matches: number; lastMatch: number | null }>>;
  /** The policy's lists as the engine loaded them (src/engine/lists.ts): explain and lint see their content. */
  readonly lists?: {
    contents(): ReadonlyMap<string, ListContent>;
    lintFacts(): ReadonlyMap<string, ListLintFacts>;
    /** Fetches (or reads) one list now; resolves when done, whether it worked or not. */
    refresh?(name: string): Promise<void>;
    states?(): readonly ListStatus[];
  };
  /** The policy's rule subscriptions (src/engine/includes.ts); absent: nothing is included. */
  readonly includes?: {
    effective(policy: Policy): Policy;
    refresh?(name: string): Promise<void>;
    states?(): readonly IncludeStatus[];
  };
}

export type Confirm = { seconds: number } | undefined;

/** The engine's desk of held connections (src/engine/asks.ts implements it). */
export interface AskService {
  list(): AskPrompt[];
  answer(
    answer: AskAnswer,
    caller: Caller,
    rules: { names(): ReadonlySet<string>; add(rule: Rule, caller: Caller): Promise<string> },
  ): Promise<AskResolution>;
}
