/**
 * Per-rule counters (issue 14 item 4): how many connections each rule decided and when it last did.
 *
 * Two sources. Rules the kernel decides count in the kernel's own counters (per set element or
 * an object named by ruleset-sets.ts ruleCounterName), read by netlink dumps off the event loop
 * (native/nft_counters.c) periodically and on demand and summed per rule (kernel/ruleset-counters.ts
 * maps each element back to its rule): the growth since the last read is added to the rule's total, and the read time is its last match (so it is as fine as the reads). Queued rules are counted here when the engine's decision picks
 * them: a typed array indexed by the rule's slot in the compiled policy, no allocation per
 * decision, folded into the totals when the policy changes or the totals are read.
 *
 * Totals are keyed by the rule's identity (`user <name>`, `internal <id>`: ruleIdentity), not its
 * position: a rule that moves or changes keeps its count while its name stays; a renamed rule
 * starts again from zero, a removed one is forgotten. They are saved in the state directory
 * (atomically) every minute and on stop. Around a ruleset change (and the first load) the kernel
 * is read before and taken as the new starting point after (rebaseKernel), so nothing is counted
 * twice; what the kernel counted while no engine ran (the table stays when the engine stops) is
 * not counted.
 */
import { readFile } from 'node:fs/promises';
import { writeFileAtomic } from '../atomic-file.js';
import { type CompiledPolicy, ruleIdentity } from '../policy/index.js';

/** One rule's count: connections it decided, and the last time (ms since the epoch; null: never). */
export interface RuleCount {
  readonly matches: number;
  readonly lastMatch: number | null;
}

export interface RuleCountersOptions {
  /** The state file (rule-counters.json); absent: kept in memory only. */
  readonly path?: string;
  readonly onError?: (message: string) => void;
  readonly now?: () => number;
  /** How often the totals are saved (ms); default one minute. */
  readonly saveEveryMs?: number;
}

interface Total {
  matches: number;
  lastMatch: number;
}

const FILE_VERSION = 1;

export class RuleCounters {
  readonly #o: RuleCountersOptions;
  readonly #now: () => number;
  readonly #totals = new Map<string, Total>();
  /** The compiled policy's slots: identity per slot, decisions and last decision time per slot. */
  #slotKeys: readonly string[] = [];
  /** The identities of the rules in force: kernel counts for anything else are ignored. */
  #known: ReadonlySet<string> = new Set();
  #hits = new Float64Array(0);
  #last = new Float64Array(0);
  /** Rule identity → packets its kernel counters held at the last read. */
  readonly #kernel = new Map<string, number>();
  /** Reads the kernel's counters of the ruleset in force, summed by rule identity. */
  #reader: (() => Promise<ReadonlyMap<string, number>>) | undefined;
  /** Grows with each bindKernel/detachKernel: a read begun under an older ruleset is not absorbed. */
  #epoch = 0;
  #reading: Promise<void> | undefined;
  #lastRead = 0;
  #timer: NodeJS.Timeout | undefined;
  #writing: Promise<void> = Promise.resolve();
  #dirty = false;

  constructor(o: RuleCountersOptions = {}) {
    this.#o = o;
    this.#now = o.now ?? Date.now;
  }

  /** Loads the saved totals (a missing file is no error; a damaged one is reported and ignored). */
  static async open(o: RuleCountersOptions = {}): Promise<RuleCounters> {
    const c = new RuleCounters(o);
    if (o.path !== undefined) {
      try {
        c.#load(await readFile(o.path, 'utf8'));
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'ENOENT')
          o.onError?.(`cannot read ${o.path}: ${(e as Error).message}`);
      }
      c.#timer = setInterval(() => void c.save(), o.saveEveryMs ?? 60_000);
      c.#timer.unref();
    }
    return c;
  }

  #load(text: string): void {
    let data: unknown;
    try {
      data = JSON.parse(text);
    } catch (e) {
      throw new Error(`not JSON (${(e as Error).message}); the counters start from zero`);
    }
    const d = data as { version?: unknown; rules?: unknown };
    if (d.version !== FILE_VERSION || typeof d.rules !== 'object' || d.rules === null)
      throw new Error(`not a version ${FILE_VERSION} counters file; the counters start from zero`);
    for (const [key, v] of Object.entries(d.rules as Record<string, unknown>)) {
      const t = v as { matches?: unknown; lastMatch?: unknown };
      if (typeof t.matches === 'number' && t.matches >= 0 && typeof t.lastMatch === 'number')
        this.#totals.set(key, { matches: t.matches, lastMatch: t.lastMatch });
    }
  }

  /** The engine decided a connection by the rule in this slot (hot path: no allocation). */
  hit(slot: number, now: number): void {
    if (slot < 0 || slot >= this.#hits.length) return;
    this.#hits[slot]! += 1;
    this.#last[slot] = now;
  }

  /** A new compiled policy is in force: what its predecessor's slots counted goes to the totals. */
  bind(policy: CompiledPolicy): void {
    this.#fold();
    this.#slotKeys = policy.rules.map((r) => ruleIdentity(r.rule));
    this.#known = new Set(this.#slotKeys);
    this.retain(this.#known);
    this.#hits = new Float64Array(policy.rules.length);
    this.#last = new Float64Array(policy.rules.length);
  }

  /**
   * How to read the kernel's counters of the ruleset in force, summed by rule identity
   * (nft.ts readRuleCounters). A read still under way from the previous ruleset is not absorbed.
   */
  bindKernel(read: () => Promise<ReadonlyMap<string, number>>): void {
    this.#epoch++;
    this.#reader = read;
  }

  /** No more kernel reads (the backend stopped, or a ruleset change is under way until bindKernel). */
  detachKernel(): void {
    this.#epoch++;
    this.#reader = undefined;
  }

  /**
   * The kernel's counters as a ruleset change left them, taken as the new starting point without
   * counting: a change empties and refills sets (their elements' counters start again) and names
   * some sets anew, so a rule's sum may drop or jump. What was counted before the change was read
   * just before it (the caller refreshes first).
   */
  rebaseKernel(values: ReadonlyMap<string, number>): void {
    this.#kernel.clear();
    for (const [name, packets] of values) this.#kernel.set(name, packets);
    this.#lastRead = this.#now();
    this.#dirty = true;
  }

  /**
   * Adds what each rule's kernel counters grew by since the last read (a smaller value: they started
   * again). A rule absent from `values` counted nothing (the dump leaves out counters at 0).
   */
  absorbKernel(values: ReadonlyMap<string, number>, now = this.#now()): void {
    for (const [key, packets] of values) {
      const prev = this.#kernel.get(key) ?? 0;
      const grew = packets >= prev ? packets - prev : packets;
      this.#kernel.set(key, packets);
      if (grew > 0 && this.#known.has(key)) this.#add(key, grew, now);
    }
    // Counters back at 0 (re-created behind the engine's back) are absent: they start again from 0.
    if (this.#kernel.size > values.size)
      for (const key of this.#kernel.keys()) if (!values.has(key)) this.#kernel.delete(key);
  }

  /**
   * Reads the kernel counters now (at most once per `minAgeMs`; concurrent callers share one read).
   * A failed read is reported and leaves the totals as they were.
   */
  refresh(minAgeMs = 0): Promise<void> {
    const read = this.#reader;
    if (read === undefined) return Promise.resolve();
    if (this.#reading !== undefined) return this.#reading;
    if (minAgeMs > 0 && this.#now() - this.#lastRead < minAgeMs) return Promise.resolve();
    const epoch = this.#epoch;
    this.#reading = read()
      .then((values) => {
        if (epoch !== this.#epoch) return; // the ruleset changed meanwhile: its rebase is the new start
        this.#lastRead = this.#now();
        this.absorbKernel(values, this.#lastRead);
      })
      .catch((e: Error) => this.#o.onError?.(`reading the rule counters failed: ${e.message}`))
      .finally(() => {
        this.#reading = undefined;
      });
    return this.#reading;
  }

  /** Every rule's count so far, by identity. */
  snapshot(): Map<string, RuleCount> {
    this.#fold();
    const out = new Map<string, RuleCount>();
    for (const [key, t] of this.#totals)
      out.set(key, { matches: t.matches, lastMatch: t.matches > 0 ? t.lastMatch : null });
    return out;
  }

  /** Forgets the rules no longer in the policy (so a later rule of the same name starts from zero). */
  retain(keys: ReadonlySet<string>): void {
    for (const key of this.#totals.keys()) if (!keys.has(key)) this.#totals.delete(key);
  }

  #add(key: string, n: number, when: number): void {
    const t = this.#totals.get(key);
    if (t === undefined) this.#totals.set(key, { matches: n, lastMatch: when });
    else {
      t.matches += n;
      if (when > t.lastMatch) t.lastMatch = when;
    }
    this.#dirty = true;
  }

  #fold(): void {
    const hits = this.#hits;
    for (let i = 0; i < hits.length; i++) {
      const n = hits[i]!;
      if (n === 0) continue;
      this.#add(this.#slotKeys[i]!, n, this.#last[i]!);
      hits[i] = 0;
    }
  }

  /** Writes the totals (atomically) when anything changed since the last write. */
  save(): Promise<void> {
    const path = this.#o.path;
    this.#fold();
    if (path === undefined || !this.#dirty) return this.#writing;
    this.#dirty = false;
    const text = JSON.stringify({
      version: FILE_VERSION,
      rules: Object.fromEntries(this.#totals),
    });
    this.#writing = this.#writing
      .then(() => writeFileAtomic(path, `${text}\n`, 0o600))
      .catch((e: Error) => {
        this.#dirty = true;
        this.#o.onError?.(`cannot save the rule counters: ${e.message}`);
      });
    return this.#writing;
  }

  /** Reads the kernel once more, saves, and stops the periodic save. */
  async close(): Promise<void> {
    if (this.#timer !== undefined) clearInterval(this.#timer);
    this.#timer = undefined;
    await this.refresh();
    this.#reader = undefined;
    await this.save();
  }
}
