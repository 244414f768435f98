/**
 * Judges one queued packet (the first packet of a new connection the kernel could not decide):
 * who sent or receives it, what the policy says, and what the kernel should do. The policy core
 * decides; `ask` holds the packet at the ask desk; every decision the policy wants logged becomes
 * a connection log item. No kernel I/O here: the caller reads packets and gives verdicts, so
 * this runs and is tested without a kernel.
 */

import { parseIp } from '../ip/index.js';
import type { DecisionMetrics } from '../metrics/warden.js';
import { LearnedHost, type RemoteAnswer, remoteFactsOf } from '../policy/address-lists.js';
import { applicationIdOf, NO_APPLICATION_ID } from '../policy/application-ids.js';
import type { CompiledPolicy, ConnectionFacts, Decision, HostEnvironment, Rule } from '../policy/index.js';
import { decide, decisionFor } from '../policy/index.js';
import type { NewLogItem } from '../protocol/log-item.js';
import type { AskDesk } from './asks.js';
import { decidingRuleWithoutProcess, mayDecideUnlogged } from './early-decision.js';
import type { FileHash } from './exe-hash.js';
import { withDeadline } from './exe-hash.js';
import type { OwnPart } from './own-parts.js';
import { PIN_HASH_DEADLINE_MS, type PinChange, type PinHashing, pinNotes, pinnedRulesOf } from './pins.js';

/** A command line longer than this (characters) is not matched: `arguments` is then unknown. */
export const MAX_ARGUMENTS_CHARS = 65_536;

/** The command line as `arguments` sees it: argv joined by single spaces; null when unknown or too long. */
export function argumentsText(commandLine: readonly string[] | undefined): string | null {
  if (commandLine === undefined || commandLine.length === 0) return null;
  // Attribution keeps one command line array per process: joined once, not at every connection.
  const known = joined.get(commandLine);
  if (known !== undefined) return known;
  let length = commandLine.length - 1;
  for (const arg of commandLine) length += arg.length;
  const text = length > MAX_ARGUMENTS_CHARS ? null : commandLine.join(' ');
  joined.set(commandLine, text);
  return text;
}

const joined = new WeakMap<readonly string[], string | null>();

/**
 * What the engine knows of a remote address: plain names, names as it learned them (with their
 * domain lists remembered), or its LearnedHost for that address (host-names.ts: the address, its
 * names, and the bits of the policy's lists remembered for both).
 */
export type HostsAnswer = RemoteAnswer;

/**
 * The remote part of a connection's facts under the policy: the address (parsed once per address
 * the engine remembers: the LearnedHost's, when it is the one of this address's text), the names,
 * and the bits of the policy's lists for both (a LearnedHost's only when it is this address).
 */
function remoteFacts(
  policy: CompiledPolicy,
  answer: HostsAnswer,
  remote: string,
): Pick<ConnectionFacts, 'remoteAddress' | 'remoteHosts' | 'remoteHostLists' | 'remoteAddressLists'> {
  const remoteAddress =
    answer instanceof LearnedHost && answer.text === remote && answer.address !== null
      ? answer.address
      : parseIp(remote);
  return { remoteAddress, ...remoteFactsOf(policy, answer, remoteAddress) };
}

/** The parts of a packet's headers the policy needs. */
export interface PacketTuple {
  readonly protocol: 'tcp' | 'udp' | 'icmp' | 'other';
  readonly source: string;
  readonly destination: string;
  readonly sourcePort?: number;
  readonly destinationPort?: number;
}

/** The process on this host that owns the connection. */
export interface ProcessInfo {
  readonly pid?: number;
  readonly executable?: string;
  /** applicationIdOf(executable), given where the executable was learned (src/policy/application-ids.ts). */
  readonly applicationId?: number;
  /** For interpreters (node, python): the script it runs, absolute. */
  readonly script?: string;
  readonly commandLine?: readonly string[];
  readonly uid?: number;
  readonly user?: string;
  /** Set when the process is one of Warden's own parts (OwnParts: by pid, or the verified console). */
  readonly part?: OwnPart;
}

/** What the kernel is told. `reject` is an accept carrying Warden's reject mark (a later chain refuses it). */
export type KernelVerdict = 'accept' | 'drop' | 'reject';

export interface Judgement {
  readonly verdict: KernelVerdict;
  readonly decision: Decision;
  readonly facts: ConnectionFacts;
  readonly process: ProcessInfo | null;
}

export interface EnforcerOptions {
  /** The policy in force (internal rules first), recompiled by the caller on change. */
  readonly policy: () => CompiledPolicy;
  /** Finds the local process of a connection; null when it cannot be found (it exited, say). */
  readonly identify: (
    tuple: PacketTuple,
    direction: 'incoming' | 'outgoing',
    uidHint: number | undefined,
  ) => Promise<ProcessInfo | null>;
  /**
   * Host names the engine knows for an address (from resolving the policy's host names). As
   * LearnedNames (host-names.ts) they also say which domain lists they are in, remembered per name;
   * as the address's LearnedHost, also which of the policy's address sets it is in, remembered per
   * address (used only when it is the connection's address).
   */
  readonly hostsOf: (address: string) => HostsAnswer | Promise<HostsAnswer>;
  readonly asks: AskDesk;
  readonly log: (item: NewLogItem) => void;
  /** Executables of Warden's own parts: the application of a process whose `part` is set. */
  readonly executables: HostEnvironment['executables'];
  readonly now?: () => number;
  /** Counts each decision by verdict and its latency (default: not counted). */
  readonly metrics?: DecisionMetrics;
  /** Learning mode: a connection no rule decided and the rule proposed for it (the proposal book). */
  readonly propose?: (rule: Rule, facts: ConnectionFacts) => void;
  /** Hashes executables for sha256-pinned rules (and for ask prompts); absent: pinned rules never match. */
  readonly pins?: PinHashing;
  /** How long a connection waits for its executable's hash (default PIN_HASH_DEADLINE_MS). */
  readonly pinDeadlineMs?: number;
  /**
   * A pinned rule's hash no longer holds for its application's file (the Debian re-pin looks at it).
   * A promise returned is the look: the connection that found the change waits for it (within the
   * pin deadline), so a package update's re-pin decides that very connection.
   */
  readonly onPinChange?: (change: PinChange) => void | Promise<void>;
  /**
   * Parent and ancestors of a process (src/kernel/process-context.ts), asked only when a rule of the
   * policy uses them; without it they are unknown and such rules do not match.
   */
  readonly programContext?: (
    pid: number,
    ancestors: boolean,
  ) => { readonly parent: string | null; readonly ancestors: readonly string[] };
  /** Counts the deciding rule by its slot in the policy (rule-counters.ts), right after each decision. */
  readonly counters?: { hit(slot: number, now: number): void };
}

/** Decides queued packets. */
export class Enforcer {
  readonly #o: EnforcerOptions;
  readonly #now: () => number;

  constructor(options: EnforcerOptions) {
    this.#o = options;
    this.#now = options.now ?? Date.now;
  }

  /**
   * Judges one packet; `uid` is the sending socket's uid when the kernel gave it, `iface` the
   * interface it leaves by (outgoing) or came in by (incoming) when the policy names interfaces.
   *
   * Attribution (finding the process, most of a decision's cost) is skipped when nothing needs it:
   * the decision is one no process can change (no rule naming an application, uid or user could
   * match before the deciding one: early-decision.ts) and it is not logged (an ask, a learning-mode
   * proposal and every block are). A logged decision keeps attribution before the verdict: the
   * queued SYN is what keeps a short-lived socket there to be attributed.
   */
  async judge(
    tuple: PacketTuple,
    direction: 'incoming' | 'outgoing',
    uid?: number,
    iface: string | null = null,
  ): Promise<Judgement> {
    const started = performance.now();
    const now = this.#now();
    const local = direction === 'outgoing' ? tuple.source : tuple.destination;
    const remote = direction === 'outgoing' ? tuple.destination : tuple.source;
    const localPort = direction === 'outgoing' ? tuple.sourcePort : tuple.destinationPort;
    const remotePort = direction === 'outgoing' ? tuple.destinationPort : tuple.sourcePort;
    // The host names (a reverse lookup when wildcard rules need one) are looked up while the process is.
    const hosts = this.#o.hostsOf(remote);
    if (hosts instanceof Promise) hosts.catch(() => {}); // awaited below; meanwhile not "unhandled"
    // Checked here first: a connection no unlogged allow could decide (with the shipped defaults, all but
    // local reports to Warden itself) makes no promise for it.
    const unattributed = mayDecideUnlogged(
      this.#o.policy(),
      direction,
      tuple.protocol,
      localPort ?? null,
      remotePort ?? null,
    )
      ? await this.#withoutProcess(direction, tuple.protocol, {
          local,
          remote,
          localPort,
          remotePort,
          hosts,
          iface,
          now,
        })
      : undefined;
    if (unattributed !== undefined) {
      const { decision, facts } = unattributed;
      const v = decision.verdict;
      if (v !== 'ask') this.#o.metrics?.decided(v, (performance.now() - started) / 1000); // never ask here
      return {
        verdict: kernelVerdictOf(decision.verdict),
        decision,
        facts: { ...facts, uid: uid ?? null },
        process: null,
      };
    }
    let process: ProcessInfo | null = null;
    try {
      process = await this.#o.identify(tuple, direction, uid);
    } catch {
      process = null; // attribution is best effort: the policy then sees an unknown application
    }
    const application = this.applicationOf(process);
    const hostsAnswer = await hosts;
    // Only a connection of an application some rule pins waits for its executable's hash.
    let pin: { hash: FileHash | null; problem?: string } | undefined;
    let repinAsked = false;
    if (pinnedRulesOf(this.#o.policy(), application) !== undefined) {
      pin = await this.#hashOf(process, application);
      repinAsked = await this.#repinFirst(application, pin.hash);
    }
    // The policy in force now (a re-pin may have come while the hash was computed).
    const policy = this.#o.policy();
    const pinned = pinnedRulesOf(policy, application);
    const context = this.#contextOf(process);
    const names = remoteFacts(policy, hostsAnswer, remote);
    const remoteHosts = names.remoteHosts;
    let facts: ConnectionFacts = {
      direction,
      protocol: tuple.protocol,
      application,
      applicationId: this.#applicationIdOf(process),
      ...(pin !== undefined ? { applicationSha256: pin.hash?.sha256 ?? null } : {}),
      uid: process?.uid ?? uid ?? null,
      user: process?.user ?? null,
      localAddress: parseIp(local),
      localPort: localPort ?? null,
      remotePort: remotePort ?? null,
      ...names,
      interface: iface,
      now,
    };
    if (context !== undefined) facts = { ...facts, ...context };
    const decision = decide(policy, facts);
    this.#o.counters?.hit(decision.ruleIndex, now);
    if (decision.proposal !== undefined) this.#o.propose?.(decision.proposal, facts);
    let verdict = decision.verdict;
    let message = messageFor(decision);
    // A pin that did not hold is said in the log item (always one) and the prompt.
    const pins = pinned === undefined ? undefined : pinNotes(pinned, facts, decision.ruleIndex, pin?.problem);
    const pinText = pins !== undefined && pins.notes.length > 0 ? pins.notes.join('; ') : undefined;
    if (pinText !== undefined) message = `${message}; ${pinText}`;
    if (!repinAsked && pins !== undefined && pins.changed.length > 0 && application !== null && pin?.hash)
      void this.#o.onPinChange?.({ application, hash: pin.hash, rules: pins.changed });
    if (verdict === 'ask') {
      // The prompt carries the file's hash, so an answer "always" pins it (ask-rule.ts).
      if (pin === undefined && application !== null && this.#o.pins !== undefined)
        pin = await this.#hashOf(process, application);
      const def = direction === 'incoming' ? policy.defaults.incoming : policy.defaults.outgoing;
      const resolution = await this.#o.asks.hold({
        // An `ask` default cannot ask again: nobody answered, so the connection is denied.
        defaultVerdict: def.action === 'ask' ? 'deny' : def.action,
        direction,
        protocol: tuple.protocol,
        ...(application !== null ? { application } : {}),
        ...(process?.pid !== undefined ? { pid: process.pid } : {}),
        ...(process?.commandLine !== undefined ? { commandLine: process.commandLine } : {}),
        ...(facts.user !== null ? { user: facts.user } : {}),
        ...(facts.uid !== null ? { uid: facts.uid } : {}),
        local: endpoint(local, localPort),
        remote: endpoint(remote, remotePort),
        remoteAddress: remote,
        ...(remotePort !== undefined ? { remotePort } : {}),
        hosts: remoteHosts,
        rule: decision.ruleName,
        ...(pin?.hash ? { sha256: pin.hash.sha256 } : {}),
        ...(pinText !== undefined ? { change: pinText } : {}),
      });
      verdict = resolution.verdict;
      message =
        resolution.by === 'console'
          ? `asked: ${resolution.user ?? 'a console'} answered ${resolution.verdict}${resolution.rule ? ` (rule "${resolution.rule}" added)` : ''}`
          : `asked: no answer in time, default ${resolution.verdict}`;
      if (pinText !== undefined) message = `${message}; ${pinText}`;
    }
    if (decision.log || decision.action === 'ask' || pinText !== undefined) {
      this.#o.log({
        kind: 'connection',
        verdict: decision.action === 'ask' ? 'ask' : verdict,
        direction,
        protocol: tuple.protocol,
        ...(application !== null ? { application } : {}),
        local: endpoint(local, localPort),
        remote: endpoint(remote, remotePort),
        ...(remoteHosts.length > 0 ? { host: remoteHosts.join(', ') } : {}),
        rule: decision.ruleName,
        ...(facts.user !== null
          ? { user: facts.user }
          : facts.uid !== null
            ? { user: String(facts.uid) }
            : {}),
        message: process?.pid !== undefined ? `${message} (pid ${process.pid})` : message,
      });
    }
    const kernel = kernelVerdictOf(verdict);
    this.#o.metrics?.decided(verdict, (performance.now() - started) / 1000);
    return { verdict: kernel, decision, facts, process };
  }

  /**
   * The program context facts the policy's rules use (CompiledPolicy.needs), and only those:
   * undefined (no read, the facts keep their usual shape) when no rule asks. Unknown (null, empty) without a process or pid.
   */
  #contextOf(p: ProcessInfo | null): Pick<ConnectionFacts, 'parent' | 'ancestors' | 'arguments'> | undefined {
    const needs = this.#o.policy().needs;
    if (!needs.parent && !needs.ancestors && !needs.arguments) return undefined;
    const out: { parent?: string | null; ancestors?: readonly string[]; arguments?: string | null } = {};
    if (needs.arguments) out.arguments = argumentsText(p?.commandLine);
    if (needs.parent || needs.ancestors) {
      let context: { parent: string | null; ancestors: readonly string[] } = { parent: null, ancestors: [] };
      if (p?.pid !== undefined && this.#o.programContext !== undefined) {
        try {
          context = this.#o.programContext(p.pid, needs.ancestors);
        } catch {
          // best effort, like attribution: the rule then sees an unknown context and does not match
        }
      }
      out.parent = context.parent;
      out.ancestors = context.ancestors;
    }
    return out;
  }

  /** The decision when no process can change it and it is not logged (asked when mayDecideUnlogged); undefined when attribution is needed. */
  async #withoutProcess(
    direction: 'incoming' | 'outgoing',
    protocol: PacketTuple['protocol'],
    c: {
      local: string;
      remote: string;
      localPort: number | undefined;
      remotePort: number | undefined;
      hosts: HostsAnswer | Promise<HostsAnswer>;
      iface: string | null;
      now: number;
    },
  ): Promise<{ decision: Decision; facts: ConnectionFacts } | undefined> {
    const policy = this.#o.policy();
    const facts: ConnectionFacts = {
      direction,
      protocol,
      application: null,
      uid: null,
      user: null,
      localAddress: parseIp(c.local),
      localPort: c.localPort ?? null,
      remotePort: c.remotePort ?? null,
      ...remoteFacts(policy, await c.hosts, c.remote),
      interface: c.iface,
      now: c.now,
    };
    const rule = decidingRuleWithoutProcess(policy, facts);
    if (rule === undefined) return undefined;
    const decision = decisionFor(policy, facts, rule);
    // Blocks and asks are always logged (`log`), proposals name the program: those are attributed.
    if (decision.log || decision.verdict === 'ask' || decision.proposal !== undefined) return undefined;
    this.#o.counters?.hit(decision.ruleIndex, c.now);
    return { decision, facts };
  }

  /**
   * When the file's hash is not the one some rule pins it to, asks for the re-pin look first and
   * waits for it (bounded): a package update then keeps its rules from the first connection on.
   */
  async #repinFirst(application: string | null, hash: FileHash | null): Promise<boolean> {
    if (hash === null || application === null || this.#o.onPinChange === undefined) return false;
    const stale = (pinnedRulesOf(this.#o.policy(), application) ?? []).filter(
      (r) => r.sha256 !== hash.sha256,
    );
    if (stale.length === 0) return false;
    const look = this.#o.onPinChange({ application, hash, rules: stale.map((r) => r.rule.name) });
    if (look !== undefined)
      await withDeadline(look, this.#o.pinDeadlineMs ?? PIN_HASH_DEADLINE_MS, 're-pin').catch(() => {});
    return true;
  }

  /** The hash of the process's executable, or why there is none (bounded by the deadline). */
  async #hashOf(
    process: ProcessInfo | null,
    application: string | null,
  ): Promise<{ hash: FileHash | null; problem?: string }> {
    const pins = this.#o.pins;
    if (pins === undefined) return { hash: null, problem: 'this engine does not hash executables' };
    if (process?.pid === undefined || application === null || process.part !== undefined)
      return { hash: null, problem: 'the process could not be read' };
    try {
      const work = pins.ofProcess(process.pid, application);
      return { hash: await withDeadline(work, this.#o.pinDeadlineMs ?? PIN_HASH_DEADLINE_MS, 'hashing') };
    } catch (e) {
      return { hash: null, problem: (e as Error).message };
    }
  }

  /**
   * The application path the policy sees: Warden's own parts by their script's path, every other
   * process by its executable (a script on a command line alone is no part: the process wrote it).
   */
  applicationOf(p: ProcessInfo | null): string | null {
    if (p === null) return null;
    if (p.part !== undefined) return this.#o.executables[p.part];
    return p.executable ?? null;
  }

  /** The number of applicationOf(p): the one the attribution gave with the executable. */
  #applicationIdOf(p: ProcessInfo | null): number {
    if (p === null) return NO_APPLICATION_ID;
    if (p.part !== undefined) return applicationIdOf(this.#o.executables[p.part]);
    return p.executable === undefined ? NO_APPLICATION_ID : (p.applicationId ?? NO_APPLICATION_ID);
  }
}

/** What the kernel is told for a decision's verdict. */
export function kernelVerdictOf(verdict: Decision['verdict'] | Decision['action']): KernelVerdict {
  return verdict === 'allow' ? 'accept' : verdict === 'reject' ? 'reject' : 'drop';
}

function endpoint(address: string, port: number | undefined): string {
  const a = address.includes(':') ? `[${address}]` : address;
  return port === undefined ? a : `${a}:${port}`;
}

function messageFor(d: Decision): string {
  const by =
    d.source === 'default'
      ? d.ruleName
      : `${d.source === 'internal' ? 'internal rule' : 'rule'} "${d.ruleName}"`;
  const what = d.verdict === d.action ? d.verdict : `${d.action}, ${d.verdict} in ${d.mode} mode`;
  const proposal = d.proposal ? `; proposed rule "${d.proposal.name}"` : '';
  return `${what} by ${by}${proposal}`;
}
