/**
 * The ask desk: connections an `ask` rule holds while the connected consoles are asked.
 * Retransmitted packets of a held connection (and new connections of the same application
 * to the same service) join its prompt instead of asking again. An answer decides every
 * packet of the prompt and, unless it is `once`, adds a rule; no answer within the timeout,
 * or no console to ask, means the default action of the connection's direction.
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

interface Pending {
  prompt: AskPrompt;
  readonly key: string;
  readonly timer: NodeJS.Timeout;
  readonly waiters: ((r: AskResolution) => void)[];
}

/** Pending prompts, by id. */
export class AskDesk {
  readonly #options: AskDeskOptions;
  readonly #now: () => number;
  readonly #byId = new Map<string, Pending>();
  readonly #byKey = new Map<string, Pending>();

  constructor(options: AskDeskOptions) {
    this.#options = options;
    this.#now = options.now ?? Date.now;
  }

  /** Holds a connection until it is answered or times out; resolves with the verdict to apply. */
  hold(connection: HeldConnection): Promise<AskResolution> {
    const key = keyOf(connection);
    const joined = this.#byKey.get(key);
    if (joined) {
      joined.prompt = { ...joined.prompt, waiting: joined.prompt.waiting + 1 };
      return new Promise((resolve) => joined.waiters.push(resolve));
    }
    const id = randomBytes(8).toString('hex');
    if (this.#options.consoles() === 0) {
      return Promise.resolve({ id, verdict: connection.defaultVerdict, by: 'timeout' });
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
      const pending: Pending = { prompt, key, timer, waiters: [resolve] };
      this.#byId.set(id, pending);
      this.#byKey.set(key, pending);
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
          suggestion: 'List the waiting prompts with asks.list (warden asks list).',
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
    for (const w of pending.waiters) w(resolution);
    this.#options.notify('resolved', resolution);
  }
}

/** Connections that would get the same answer share a prompt: same application and service. */
function keyOf(c: HeldConnection): string {
  const service = c.direction === 'outgoing' ? `${c.remoteAddress}:${c.remotePort ?? ''}` : c.local;
  return [c.direction, c.protocol, c.application ?? '?', c.uid ?? '?', service].join('|');
}
