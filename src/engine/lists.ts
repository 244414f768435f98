/**
 * The policy's lists in the engine (docs/policy.md, "Lists"): one RemoteSource per list, following
 * the policy's `lists:` section, each text parsed by the streaming list parser into the content
 * compilePolicy takes. A changed content calls `onChange` (the kernel backend compiles and applies
 * again); a list that fails keeps its last good content. States are for engine.status and lint.
 */
import { join } from 'node:path';
import type { ListLintFacts } from '../policy/lint.js';
import {
  type ListContent,
  type ListLineProblem,
  ListParser,
  type ParsedList,
} from '../policy/list-format.js';
import type { ListFormat, ListSource, Policy } from '../policy/rule.js';
import type { ProxyRoute } from '../settings/proxy.js';
import type { EngineLog } from './daemon.js';
import { RemoteSource, type RemoteSourceState } from './remote-source.js';

/** One list's state in engine.status. */
export interface ListState extends RemoteSourceState {
  readonly name: string;
  readonly format: ListFormat;
  /** Entries of the content in force (names, addresses, ranges as written). */
  readonly entries: number;
  /** Lines of the text in force that were skipped as bad, and the first few of them. */
  readonly badLines: number;
  readonly problems: readonly ListLineProblem[];
}

export interface PolicyListsOptions {
  /** The state directory; last good copies go to its `lists` directory. */
  readonly stateDir: string;
  readonly route: (url: string) => ProxyRoute;
  readonly ca?: string | Buffer;
  readonly timeoutMs?: number;
  readonly log: EngineLog;
  /** A list's content changed. */
  readonly onChange: () => void;
}

interface Entry {
  readonly key: string;
  readonly definition: ListSource;
  readonly source: RemoteSource<ParsedList>;
  content?: ListContent;
  badLines: number;
  problems: readonly ListLineProblem[];
}

export class PolicyLists {
  readonly #o: PolicyListsOptions;
  readonly #lists = new Map<string, Entry>();
  #contents: ReadonlyMap<string, ListContent> = new Map();

  constructor(options: PolicyListsOptions) {
    this.#o = options;
  }

  /**
   * Follows the policy's lists: new ones start (a file is read, a URL's last good copy taken, its
   * fetch started), removed or changed ones stop; with `reread` (SIGHUP) file lists already known
   * are read again too (a rule change does not re-parse a million-line file). Resolves when what
   * is at hand is loaded; fetches go on in the background.
   */
  async follow(lists: Policy['lists'], options: { reread?: boolean } = {}): Promise<void> {
    const wanted = lists ?? {};
    for (const [name, e] of this.#lists) {
      if (wanted[name] === undefined || e.key !== JSON.stringify(wanted[name])) {
        e.source.stop();
        this.#lists.delete(name);
      }
    }
    const work: Promise<void>[] = [];
    for (const [name, definition] of Object.entries(wanted)) {
      const known = this.#lists.get(name);
      if (known !== undefined) {
        if (definition.file !== undefined && options.reread === true) work.push(known.source.reread());
        continue;
      }
      const entry = this.#entry(name, definition);
      this.#lists.set(name, entry);
      work.push(entry.source.start());
    }
    await Promise.all(work);
    this.#publish();
  }

  /** Fetches (or reads) one list now; resolves when done, whether it worked or not. */
  async refresh(name: string): Promise<void> {
    const e = this.#lists.get(name);
    if (e === undefined) throw new Error(`list "${name}" is not defined in the policy`);
    await e.source.reread();
  }

  /** The content of every list loaded at least once, for compilePolicy; a new map after every change. */
  contents(): ReadonlyMap<string, ListContent> {
    return this.#contents;
  }

  lintFacts(): ReadonlyMap<string, ListLintFacts> {
    const out = new Map<string, ListLintFacts>();
    for (const [name, e] of this.#lists) {
      const error = e.source.state().lastError;
      out.set(name, {
        ...(e.content ? { content: e.content } : {}),
        ...(error !== undefined ? { error } : {}),
      });
    }
    return out;
  }

  states(): ListState[] {
    return [...this.#lists].map(([name, e]) => ({
      name,
      format: e.definition.format,
      entries: e.content?.entries ?? 0,
      badLines: e.badLines,
      problems: e.problems,
      ...e.source.state(),
    }));
  }

  stop(): void {
    for (const e of this.#lists.values()) e.source.stop();
    this.#lists.clear();
  }

  #entry(name: string, definition: ListSource): Entry {
    const entry: Entry = {
      key: JSON.stringify(definition),
      definition,
      badLines: 0,
      problems: [],
      source: new RemoteSource({
        name: `list-${name}`,
        origin:
          definition.url !== undefined
            ? { url: definition.url, refreshSeconds: definition.refreshSeconds }
            : { file: definition.file },
        maxBytes: definition.maxBytes,
        stateDir: join(this.#o.stateDir, 'lists'),
        route: this.#o.route,
        ...(this.#o.ca !== undefined ? { ca: this.#o.ca } : {}),
        ...(this.#o.timeoutMs !== undefined ? { timeoutMs: this.#o.timeoutMs } : {}),
        log: this.#o.log,
        reader: () => {
          const parser = new ListParser(definition.format, definition);
          return {
            push: (chunk, quotable) => parser.push(chunk, quotable),
            end: () => parser.end(),
          };
        },
        onValue: (v) => {
          if (this.#lists.get(name) !== entry) return;
          entry.content = v.content;
          entry.badLines = v.badLines;
          entry.problems = v.problems;
          if (v.badLines > 0)
            this.#o.log('warn', `list ${name}: ${v.badLines} bad lines skipped`, {
              first: v.problems.slice(0, 3).map((p) => `line ${p.line}: ${p.message}`),
            });
          this.#publish();
        },
      }),
    };
    return entry;
  }

  #publish(): void {
    const next = new Map<string, ListContent>();
    for (const [name, e] of this.#lists) if (e.content !== undefined) next.set(name, e.content);
    const before = this.#contents;
    if (next.size === before.size && [...next].every(([k, v]) => before.get(k) === v)) return;
    this.#contents = next;
    this.#o.onChange();
  }
}
