/**
 * Learning mode's proposals as objects the engine keeps: each connection no rule decided gives a
 * proposed rule (policy/evaluate.ts proposeRule); proposals are deduplicated by application,
 * direction and destination pattern (protocol, service port, remote host or address) and count how
 * often they were seen. Accepted ones become rules (policy-handlers.ts); rejected ones are remembered
 * and never proposed again. Bounded: at most `cap` proposals and `rejectedCap` rejections are kept, so
 * a flood of new destinations costs a counter, not memory. Kept across restarts in the state
 * directory (`proposals.json`, written atomically a few seconds after a change).
 */
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { writeFileAtomic } from '../atomic-file.js';
import { ErrorCode, WardenError } from '../errors.js';
import { formatIp } from '../ip/index.js';
import { type ConnectionFacts, type Rule, ruleToPlain } from '../policy/index.js';
import type { ProposalJson } from '../protocol/policy-methods.js';

export const PROPOSAL_CAP = 1000;
export const REJECTED_CAP = 10_000;
/** Milliseconds from a change to its write to disk (seen counts change with every connection). */
const SAVE_DELAY_MS = 5000;

/** Which proposals a bulk call means: these ids, or all (of one application when given). */
export interface ProposalSelection {
  readonly ids?: readonly string[] | undefined;
  readonly all?: boolean | undefined;
  readonly application?: string | undefined;
}

interface Entry {
  id: string;
  application: string;
  direction: 'incoming' | 'outgoing';
  protocol: string;
  port?: number;
  remote?: string;
  rule: Record<string, unknown>;
  count: number;
  firstSeen: number;
  lastSeen: number;
}

export interface ProposalBookOptions {
  /** Where to keep them (absent: in memory only). */
  readonly path?: string;
  readonly cap?: number;
  readonly rejectedCap?: number;
  readonly now?: () => number;
  /** A failed write of the file (the proposals stay in memory). */
  readonly onError?: (message: string) => void;
}

/** The stable id of an application + direction + destination pattern. */
function idOf(key: string): string {
  return createHash('sha256').update(key).digest('hex').slice(0, 12);
}

export class ProposalBook {
  readonly cap: number;
  readonly #rejectedCap: number;
  /** Key -> entry; the key is the dedupe pattern. */
  readonly #byKey = new Map<string, Entry>();
  readonly #byId = new Map<string, Entry>();
  /** Rejected ids, oldest first (a Set keeps insertion order): the oldest is forgotten past the cap. */
  readonly #rejected = new Set<string>();
  readonly #o: ProposalBookOptions;
  readonly #now: () => number;
  #notStored = 0;
  #timer: NodeJS.Timeout | undefined;
  #writing: Promise<void> = Promise.resolve();

  private constructor(o: ProposalBookOptions) {
    this.#o = o;
    this.cap = o.cap ?? PROPOSAL_CAP;
    this.#rejectedCap = o.rejectedCap ?? REJECTED_CAP;
    this.#now = o.now ?? Date.now;
  }

  /** Opens the book, reading `path` when it exists; an unreadable file is reported and set aside. */
  static async open(o: ProposalBookOptions = {}): Promise<ProposalBook> {
    const book = new ProposalBook(o);
    if (o.path === undefined) return book;
    let text: string;
    try {
      text = await readFile(o.path, 'utf8');
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT')
        o.onError?.(`cannot read ${o.path}: ${(e as Error).message}`);
      return book;
    }
    try {
      const saved = JSON.parse(text) as { proposals?: Entry[]; rejected?: string[] };
      for (const id of (saved.rejected ?? []).slice(-book.#rejectedCap))
        if (typeof id === 'string') book.#rejected.add(id);
      for (const e of (saved.proposals ?? []).slice(0, book.cap)) {
        if (typeof e?.id !== 'string' || typeof e.rule !== 'object' || book.#rejected.has(e.id)) continue;
        const entry = { ...e };
        book.#byKey.set(keyOf(entry), entry);
        book.#byId.set(entry.id, entry);
      }
    } catch (e) {
      o.onError?.(`${o.path} is not a proposals file (${(e as Error).message}); starting with none`);
    }
    return book;
  }

  /** Proposals seen while the book was full. */
  get notStored(): number {
    return this.#notStored;
  }

  get rejectedCount(): number {
    return this.#rejected.size;
  }

  get size(): number {
    return this.#byKey.size;
  }

  /**
   * A connection no rule decided, and the rule learning mode proposes for it. Constant work: a map
   * lookup and, for a new pattern, one hash. Rejected patterns and patterns past the cap are not kept.
   */
  seen(rule: Rule, facts: ConnectionFacts): void {
    const direction = facts.direction;
    const protocol = rule.protocol;
    const port = (direction === 'incoming' ? rule.localPorts : rule.remotePorts)?.[0]?.from;
    const remote =
      facts.remoteHosts[0] ?? (facts.remoteAddress === null ? undefined : formatIp(facts.remoteAddress));
    const pattern = { application: rule.application, direction, protocol, port, remote };
    const key = keyOf(pattern);
    const now = this.#now();
    const known = this.#byKey.get(key);
    if (known !== undefined) {
      known.count++;
      known.lastSeen = now;
      this.#schedule();
      return;
    }
    if (this.#byKey.size >= this.cap) {
      this.#notStored++;
      return;
    }
    const id = idOf(key);
    if (this.#rejected.has(id)) return;
    const entry: Entry = {
      id,
      application: rule.application,
      direction,
      protocol,
      ...(port !== undefined ? { port } : {}),
      ...(remote !== undefined ? { remote } : {}),
      rule: ruleToPlain(rule),
      count: 1,
      firstSeen: now,
      lastSeen: now,
    };
    this.#byKey.set(key, entry);
    this.#byId.set(id, entry);
    this.#schedule();
  }

  /** The proposals (of one application when given), grouped by application, the most seen first within one. */
  list(application?: string): ProposalJson[] {
    return [...this.#byKey.values()]
      .filter((e) => application === undefined || e.application === application)
      .sort((a, b) =>
        a.application !== b.application
          ? a.application < b.application
            ? -1
            : 1
          : b.count - a.count || b.lastSeen - a.lastSeen,
      )
      .map(json);
  }

  /** The proposals a selection means; an id that names none is WARDEN_E_NOT_FOUND. */
  select(s: ProposalSelection): ProposalJson[] {
    if (s.ids !== undefined) {
      const missing = s.ids.filter((id) => !this.#byId.has(id));
      if (missing.length > 0)
        throw new WardenError(ErrorCode.NOT_FOUND, `no proposal has id ${missing.join(', ')}`, {
          suggestion: 'It may have been accepted or rejected already: warden proposals list.',
        });
      const chosen = [...new Set(s.ids)].map((id) => this.#byId.get(id)!);
      return chosen.filter((e) => s.application === undefined || e.application === s.application).map(json);
    }
    return s.all ? this.list(s.application) : [];
  }

  /** Forgets proposals (accepted: a rule decides them now). */
  async remove(ids: readonly string[]): Promise<void> {
    for (const id of ids) this.#drop(id);
    this.#schedule();
  }

  /** Rejects proposals: forgotten and never proposed again. Returns the ids that were rejected. */
  async reject(ids: readonly string[]): Promise<string[]> {
    const done: string[] = [];
    for (const id of ids) {
      if (!this.#drop(id)) continue;
      this.#rejected.delete(id);
      this.#rejected.add(id);
      done.push(id);
    }
    while (this.#rejected.size > this.#rejectedCap)
      this.#rejected.delete(this.#rejected.values().next().value!);
    if (done.length > 0) {
      this.#schedule(0);
      await this.#writing;
    }
    return done;
  }

  /** Writes what waits to be written (the engine calls it when it stops). */
  async close(): Promise<void> {
    if (this.#timer !== undefined) {
      clearTimeout(this.#timer);
      this.#timer = undefined;
      this.#save();
    }
    await this.#writing;
  }

  #drop(id: string): boolean {
    const e = this.#byId.get(id);
    if (e === undefined) return false;
    this.#byId.delete(id);
    this.#byKey.delete(keyOf(e));
    return true;
  }

  #schedule(delay = SAVE_DELAY_MS): void {
    if (this.#o.path === undefined) return;
    if (this.#timer !== undefined) {
      if (delay > 0) return;
      clearTimeout(this.#timer);
    }
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      this.#save();
    }, delay);
    this.#timer.unref();
  }

  #save(): void {
    const path = this.#o.path;
    if (path === undefined) return;
    const text = JSON.stringify({
      version: 1,
      proposals: [...this.#byKey.values()],
      rejected: [...this.#rejected],
    });
    this.#writing = this.#writing
      .then(() => writeFileAtomic(path, text, 0o600))
      .catch((e: Error) => this.#o.onError?.(`cannot save proposals: ${e.message}`));
  }
}

function keyOf(p: {
  application: string;
  direction: string;
  protocol: string;
  port?: number | undefined;
  remote?: string | undefined;
}): string {
  return `${p.application}\0${p.direction}\0${p.protocol}\0${p.port ?? ''}\0${p.remote ?? ''}`;
}

function json(e: Entry): ProposalJson {
  return {
    id: e.id,
    application: e.application,
    direction: e.direction,
    protocol: e.protocol,
    ...(e.port !== undefined ? { port: e.port } : {}),
    ...(e.remote !== undefined ? { remote: e.remote } : {}),
    rule: e.rule,
    count: e.count,
    firstSeen: new Date(e.firstSeen).toISOString(),
    lastSeen: new Date(e.lastSeen).toISOString(),
  };
}
