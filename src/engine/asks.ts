/**
 * The ask desk: connections an `ask` rule holds while the connected consoles are asked.
 * Retransmitted packets of a held connection (and new connections of the same application
 * to the same service) join its prompt instead of asking again. An answer decides every
 * packet of the prompt and, unless it is `once`, adds a rule; no answer within the timeout,
 * or no console to ask, means the default action of the connection's direction.
 * A connection keeps the verdict it got: its retransmissions (same addresses, ports and protocol)
 * get the same verdict for REMEMBER_MS without a new prompt, so "deny, once" holds for the
 * connection and a prompt nobody answers cannot be re-opened until its default is different.
 */
import { randomBytes } from 'node:crypto';
import { ErrorCode, WardenError } from '../errors.js';
import type { Rule } from '../policy/index.js';
import type { AskAnswer, AskPrompt, AskResolution } from '../protocol/asks.js';
import { ruleForAnswer } from './ask-rule.js';

/** Who answered (for the audit item and the resolution). */
export interface AskCaller {
  readonly user: string;
  readonly source: string;
}

/** Where an answer's rule goes: the policy's rule list (the admin handlers validate, store and audit it). */
export interface AskRuleSink {
  /** Names of the rules that exist, so a new rule's name is unique. */
  names(): ReadonlySet<string>;
  /** Adds a rule at position 0 on behalf of `caller`; returns its name. */
  add(rule: Rule, caller: AskCaller): Promise<string>;
}

/** A connection the engine holds, with what is known about it. */
export type HeldConnection = Omit<AskPrompt, 'id' | 'time' | 'expiresAt' | 'waiting'>;

export interface AskDeskOptions {
  /** How long a prompt waits for an answer (read per prompt, so a settings change applies to new prompts). */
  readonly timeoutMs: () => number;
  /** How many consoles are logged in: with none, nobody can answer and the default decides at once. */
  readonly consoles: () => number;
  /** Tells the consoles (asks.prompt / asks.resolved). */
  readonly notify: (event: 'prompt' | 'resolved', params: AskPrompt | AskResolution) => void;
  readonly now?: () => number;
}

/**
 * How long a decided connection's retransmissions get its verdict (ms): TCP gives up on a SYN after
 * about 127 s (tcp_syn_retries 6); UDP programs retry within the same time or use a new port.
 */
export const REMEMBER_MS = 130_000;

/** Decided connections remembered at most (the oldest are forgotten first). */
const REMEMBERED_MAX = 16_384;

interface Pending {
  prompt: AskPrompt;
  readonly key: string;
  /** The connections (connectionKeyOf) whose packets wait for this prompt. */
  readonly connections: Set<string>;
  readonly timer: NodeJS.Timeout;
  readonly waiters: ((r: AskResolution) => void)[];
}

/** Pending prompts, by id. */
export class AskDesk {
  readonly #options: AskDeskOptions;
  readonly #now: () => number;
  readonly #byId = new Map<string, Pending>();
  readonly #byKey = new Map<string, Pending>();
  readonly #byConnection = new Map<string, Pending>();
  readonly #decided = new Map<string, { resolution: AskResolution; until: number }>();

  constructor(options: AskDeskOptions) {
    this.#options = options;
    this.#now = options.now ?? Date.now;
  }

  /** Holds a connection until it is answered or times out; resolves with the verdict to apply. */
  hold(connection: HeldConnection): Promise<AskResolution> {
    const conn = connectionKeyOf(connection);
    const decided = this.#decided.get(conn);
    if (decided !== undefined) {
      if (decided.until > this.#now()) return Promise.resolve(decided.resolution);
      this.#decided.delete(conn);
    }
    const key = keyOf(connection);
    // The same connection first (its application may read differently once the program exits).
    const joined = this.#byConnection.get(conn) ?? this.#byKey.get(key);
    if (joined) {
      joined.prompt = { ...joined.prompt, waiting: joined.prompt.waiting + 1 };
      joined.connections.add(conn);
      this.#byConnection.set(conn, joined);
      return new Promise((resolve) => joined.waiters.push(resolve));
    }
    const id = randomBytes(8).toString('hex');
    if (this.#options.consoles() === 0) {
      const resolution: AskResolution = { id, verdict: connection.defaultVerdict, by: 'timeout' };
      this.#remember([conn], resolution);
      return Promise.resolve(resolution);
    }
    const now = this.#now();
    const timeoutMs = this.#options.timeoutMs();
    const prompt: AskPrompt = {
      ...connection,
      id,
      time: new Date(now).toISOString(),
      expiresAt: new Date(now + timeoutMs).toISOString(),
      waiting: 1,
    };
    return new Promise((resolve) => {
      const timer = setTimeout(
        () => this.#finish(id, { id, verdict: prompt.defaultVerdict, by: 'timeout' }),
        timeoutMs,
      );
      timer.unref();
      const pending: Pending = { prompt, key, connections: new Set([conn]), timer, waiters: [resolve] };
      this.#byId.set(id, pending);
      this.#byKey.set(key, pending);
      this.#byConnection.set(conn, pending);
      this.#options.notify('prompt', prompt);
    });
  }

  /** The prompts waiting now, oldest first. */
  list(): AskPrompt[] {
    return [...this.#byId.values()].map((p) => p.prompt);
  }

  /** Answers a prompt: decides its packets and, unless `once`, adds a rule for the scope. */
  async answer(answer: AskAnswer, caller: AskCaller, rules: AskRuleSink): Promise<AskResolution> {
    const pending = this.#byId.get(answer.id);
    if (!pending) {
      throw new WardenError(
        ErrorCode.NOT_FOUND,
        `no prompt has id ${answer.id}: it was answered or timed out`,
        {
          suggestion: 'List the waiting prompts with `warden asks list`.',
        },
      );
    }
    let rule: string | undefined;
    if (answer.duration !== 'once') {
      const draft = ruleForAnswer(pending.prompt, answer, this.#now(), rules.names());
      rule = await rules.add(draft, caller);
    }
    const resolution: AskResolution = {
      id: answer.id,
      verdict: answer.verdict,
      by: 'console',
      user: caller.user,
      ...(rule !== undefined ? { rule } : {}),
    };
    // The prompt may have timed out while the rule was written; the rule stays, the packets are decided.
    this.#finish(answer.id, resolution);
    return resolution;
  }

  /** Ends every prompt with its default (the engine stops). */
  close(): void {
    for (const p of [...this.#byId.values()]) {
      this.#finish(p.prompt.id, { id: p.prompt.id, verdict: p.prompt.defaultVerdict, by: 'engine' });
    }
  }

  #finish(id: string, resolution: AskResolution): void {
    const pending = this.#byId.get(id);
    if (!pending) return;
    clearTimeout(pending.timer);
    this.#byId.delete(id);
    this.#byKey.delete(pending.key);
    for (const conn of pending.connections) this.#byConnection.delete(conn);
    // The engine stopping decides nothing for the connections: the next engine asks again.
    if (resolution.by !== 'engine') this.#remember(pending.connections, resolution);
    for (const w of pending.waiters) w(resolution);
    this.#options.notify('resolved', resolution);
  }

  /** Each connection's verdict is kept for REMEMBER_MS (bounded: the oldest go first). */
  #remember(connections: Iterable<string>, resolution: AskResolution): void {
    const until = this.#now() + REMEMBER_MS;
    for (const conn of connections) {
      this.#decided.delete(conn); // re-inserted last: the map's order is the age
      this.#decided.set(conn, { resolution, until });
    }
    for (const [conn, entry] of this.#decided) {
      if (this.#decided.size <= REMEMBERED_MAX && entry.until > this.#now()) break;
      this.#decided.delete(conn);
    }
  }
}

/** One connection: its protocol and both endpoints with ports (the 5-tuple), and its direction. */
function connectionKeyOf(c: HeldConnection): string {
  return [c.direction, c.protocol, c.local, c.remote].join('|');
}

/** Connections that would get the same answer share a prompt: same application and service. */
function keyOf(c: HeldConnection): string {
  const service = c.direction === 'outgoing' ? `${c.remoteAddress}:${c.remotePort ?? ''}` : c.local;
  return [c.direction, c.protocol, c.application ?? '?', c.uid ?? '?', service].join('|');
}
