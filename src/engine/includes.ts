/**
 * The policy's rule subscriptions in the engine (docs/policy.md, "Included rules"): one
 * RemoteSource per `include:` entry (the same fetcher, proxy, size bound, refresh and last good
 * copy as lists), each text validated as an included rules file. A text that is invalid, or whose
 * rules would cut off an administrator connected now (the lockout guard), is refused whole and the
 * rules in force stay; the reason is in engine.status and the log. `effective` is the policy in
 * force: the policy's own rules and the included ones (src/policy/include.ts).
 */
import { join } from 'node:path';
import { isDeepStrictEqual } from 'node:util';
import { formatProblem, WardenError } from '../errors.js';
import { includeLabel, parseIncludedRules, withIncludes } from '../policy/include.js';
import type { IncludeSource, Policy, Rule } from '../policy/rule.js';
import type { ProxyRoute } from '../settings/proxy.js';
import type { EngineLog } from './daemon.js';
import { RemoteSource, type RemoteSourceState } from './remote-source.js';

/** One subscription's state in engine.status. */
export interface IncludeState extends RemoteSourceState {
  readonly name: string;
  /** Rules of the copy in force. */
  readonly rules: number;
}

export interface PolicyIncludesOptions {
  /** The state directory; last good copies go to its `includes` directory. */
  readonly stateDir: string;
  readonly route: (url: string) => ProxyRoute;
  readonly ca?: string | Buffer;
  readonly timeoutMs?: number;
  readonly log: EngineLog;
  /**
   * Why the policy with these rules in force would cut an administrator off, or null. Called
   * before a new text is taken: a risk refuses it (the last good copy stays).
   */
  readonly lockoutRisk?: (next: Policy) => string | null;
  /** The policy the subscriptions belong to (the user's, without included rules). */
  readonly policy: () => Policy;
  /** A subscription's rules changed. */
  readonly onChange: () => void;
}

interface Entry {
  readonly key: string;
  readonly source: RemoteSource<Rule[]>;
  rules?: readonly Rule[];
}

/** Problems a refused subscription's message names (the count says how many there were). */
const SHOWN_PROBLEMS = 5;

export class PolicyIncludes {
  readonly #o: PolicyIncludesOptions;
  readonly #entries = new Map<string, Entry>();
  #rules: ReadonlyMap<string, readonly Rule[]> = new Map();
  #cache: { policy: Policy; rules: ReadonlyMap<string, readonly Rule[]>; effective: Policy } | undefined;

  constructor(options: PolicyIncludesOptions) {
    this.#o = options;
  }

  /**
   * Follows the policy's subscriptions: new ones start (a file is read, a URL's last good copy
   * taken and its fetch started), removed or changed ones stop; with `reread` (SIGHUP, apply) file
   * subscriptions are read again. Resolves when what is at hand is loaded.
   */
  async follow(include: Policy['include'], options: { reread?: boolean } = {}): Promise<void> {
    const wanted = new Map((include ?? []).map((i) => [i.name, i]));
    for (const [name, e] of this.#entries) {
      const w = wanted.get(name);
      if (w === undefined || e.key !== JSON.stringify(w)) {
        e.source.stop();
        this.#entries.delete(name);
      }
    }
    const work: Promise<void>[] = [];
    for (const [name, definition] of wanted) {
      const known = this.#entries.get(name);
      if (known !== undefined) {
        if (definition.file !== undefined && options.reread === true) work.push(known.source.reread());
        continue;
      }
      const entry = this.#entry(definition);
      this.#entries.set(name, entry);
      work.push(entry.source.start());
    }
    await Promise.all(work);
    this.#publish();
  }

  /** Fetches (or reads) one subscription now; resolves when done, whether it worked or not. */
  async refresh(name: string): Promise<void> {
    const e = this.#entries.get(name);
    if (e === undefined) throw new Error(`subscription "${name}" is not in the policy's include list`);
    await e.source.reread();
  }

  /** The loaded rules of every subscription (their own names); a new map after every change. */
  rules(): ReadonlyMap<string, readonly Rule[]> {
    return this.#rules;
  }

  /** The policy in force: `policy` with the included rules; the same object while nothing changed. */
  effective(policy: Policy): Policy {
    const c = this.#cache;
    if (c !== undefined && c.policy === policy && c.rules === this.#rules) return c.effective;
    const effective = withIncludes(policy, this.#rules);
    this.#cache = { policy, rules: this.#rules, effective };
    return effective;
  }

  states(): IncludeState[] {
    return [...this.#entries].map(([name, e]) => ({
      name,
      rules: e.rules?.length ?? 0,
      ...e.source.state(),
    }));
  }

  stop(): void {
    for (const e of this.#entries.values()) e.source.stop();
    this.#entries.clear();
  }

  #entry(definition: IncludeSource): Entry {
    const name = definition.name;
    const label = includeLabel(definition);
    const entry: Entry = {
      key: JSON.stringify(definition),
      source: new RemoteSource<Rule[]>({
        name: `include-${name}`,
        origin:
          definition.url !== undefined
            ? { url: definition.url, refreshSeconds: definition.refreshSeconds }
            : { file: definition.file },
        maxBytes: definition.maxBytes,
        stateDir: join(this.#o.stateDir, 'includes'),
        route: this.#o.route,
        ...(this.#o.ca !== undefined ? { ca: this.#o.ca } : {}),
        ...(this.#o.timeoutMs !== undefined ? { timeoutMs: this.#o.timeoutMs } : {}),
        log: this.#o.log,
        reader: () => {
          const chunks: Buffer[] = [];
          let quotable = true;
          return {
            push: (chunk, q) => {
              chunks.push(chunk);
              quotable &&= q;
            },
            end: () => this.#validate(name, label, Buffer.concat(chunks).toString('utf8'), quotable),
          };
        },
        onValue: (rules) => {
          if (this.#entries.get(name) !== entry) return;
          // The same rules written otherwise (comments, spacing) change nothing in force.
          if (entry.rules !== undefined && isDeepStrictEqual(entry.rules, rules)) return;
          entry.rules = rules;
          this.#publish();
        },
      }),
    };
    return entry;
  }

  /**
   * Parses a text and runs the lockout guard; throws to refuse it, naming its first located problems
   * (only where they are, not what, when the file may not be quoted: list-files.ts).
   */
  #validate(name: string, label: string, text: string, quotable: boolean): Rule[] {
    let rules: Rule[];
    try {
      rules = parseIncludedRules(text, label);
    } catch (e) {
      if (!(e instanceof WardenError)) throw e;
      const shown = e.problems
        .slice(0, SHOWN_PROBLEMS)
        .map((p) => (quotable ? formatProblem(p) : `${p.file ?? label}:${p.line ?? '?'}:${p.column ?? '?'}`));
      const more = e.problems.length > SHOWN_PROBLEMS ? `; ... (${e.problems.length} problems)` : '';
      const unquoted = quotable
        ? ''
        : ' (not quoted: the file is a symlink or others may write it or its directory)';
      throw new Error(`refused: ${shown.length > 0 ? shown.join('; ') + more + unquoted : e.message}`);
    }
    if (this.#o.lockoutRisk !== undefined) {
      const next = new Map(this.#rules);
      next.set(name, rules);
      const risk = this.#o.lockoutRisk(withIncludes(this.#o.policy(), next));
      if (risk !== null) throw new Error(`refused: these rules could cut an administrator off: ${risk}`);
    }
    return rules;
  }

  #publish(): void {
    const next = new Map<string, readonly Rule[]>();
    for (const [name, e] of this.#entries) if (e.rules !== undefined) next.set(name, e.rules);
    const before = this.#rules;
    if (next.size === before.size && [...next].every(([k, v]) => before.get(k) === v)) return;
    this.#rules = next;
    this.#o.onChange();
  }
}
