/**
 * The verdict cache (docs/attribution.md, "Verdict cache"): after the engine allowed an outgoing
 * TCP connection by a decision that is a pure function of the key (the executable file as the BPF
 * record names it, the effective uid, the remote address and port), the key goes into a BPF map;
 * the connect programs look the next connection up there and mark a hit's socket MARK_DECIDED,
 * which the ruleset accepts where it would have queued it (ruleset-guards.ts). The hit's log item
 * and rule count are written here from the programs' ring buffer, off every verdict path.
 *
 * What may be cached is decided once per compiled policy and application: every active rule that
 * could apply to the application's outgoing TCP (its own and the any-application rules) must use
 * only fields of the key (no host names or domain lists, program context, sha256 pin, interface,
 * local port, expiry, ask). A new policy (any change: rules, lists, settings, mode, an expiry)
 * starts a new generation at once: no entry of the old one is found again, and a decision made
 * under the old policy is not inserted (the policy it was made with must still be in force).
 * Once the new policy's ruleset is in the kernel, the old generation's entries are decided again
 * under it (carryOver) and those it still allows as the key alone says are inserted anew, so a
 * change does not send every program's next connection back to the queue.
 */

import { formatIp, parseIp } from '../ip/index.js';
import type { BpfVerdictCache } from '../kernel/native.js';
import type { RecordedProcess } from '../kernel/socket-lookup.js';
import { verdictCacheKey, withGeneration } from '../kernel/verdict-cache-key.js';
import { applicationIdOf } from '../policy/application-ids.js';
import {
  type CompiledPolicy,
  type CompiledRule,
  type ConnectionFacts,
  type Decision,
  decide,
} from '../policy/index.js';
import { PROTO_TCP } from '../policy/protocol-bits.js';
import type { NewLogItem } from '../protocol/log-item.js';
import { type Judgement, kernelVerdictOf } from './enforcer.js';

/** Events taken from the ring at once; the ring holds about 13,000 (512 KiB of 40-byte records). */
const DRAIN_BATCH = 4096;
const EVENT_BYTES = 32;
/** The longest time between the first and last hit one log item stands for (ms). */
const GROUP_SPAN_MS = 1000;

/** CompiledRule fields that a cached decision may depend on (the key's), or that do not select connections. */
const KEY_FIELDS = new Set([
  'index',
  'source',
  'rule',
  'active',
  'inactiveBecause',
  'incoming',
  'outgoing',
  'protocols',
  'application',
  'uid',
  'userName',
  'remotePorts',
  'remotePortSpans',
  'remote',
  'expiresAt',
]);

/** True when the rule tests nothing outside the key (any field not known here must be unset). */
export function keyOnlyRule(r: CompiledRule): boolean {
  if (r.rule.action === 'ask' || r.expires) return false;
  if (
    r.remote !== null &&
    (r.remote.hosts.size > 0 || r.remote.suffixes.length > 0 || r.remote.domainLists.length > 0)
  )
    return false;
  for (const [field, value] of Object.entries(r)) {
    if (KEY_FIELDS.has(field) || field === 'expires') continue;
    // sha256, localPorts, interfaces, parent, ancestor, argumentsGlob, and fields added later.
    if (value !== null && value !== undefined && value !== false) return false;
  }
  return true;
}

/** Per compiled policy, in one pass over its rules: are all any-application rules key-only, and which applications have a rule that is not. */
const cacheable = new WeakMap<CompiledPolicy, { anyOk: boolean; notKeyOnly: ReadonlySet<string> }>();

/** True when outgoing TCP decisions of `application` under `policy` depend only on the key. */
export function cacheableApplication(policy: CompiledPolicy, application: string): boolean {
  let known = cacheable.get(policy);
  if (known === undefined) {
    let anyOk = true;
    const notKeyOnly = new Set<string>();
    for (const r of policy.rules) {
      if (!r.active || !r.outgoing || (r.protocols & PROTO_TCP) === 0 || keyOnlyRule(r)) continue;
      if (r.application === null) anyOk = false;
      else notKeyOnly.add(r.application);
    }
    known = { anyOk, notKeyOnly };
    cacheable.set(policy, known);
  }
  return known.anyOk && !known.notKeyOnly.has(application);
}

export interface VerdictCacheOptions {
  /** The kernel's maps (the ring's watch is the caller's: it says when to drain). */
  readonly maps: Omit<BpfVerdictCache, 'watch'>;
  /** Entries kept (the BPF map's size): beyond it the least recently hit are forgotten. */
  readonly capacity: number;
  /**
   * The engine's node binary (real path) and the applications of Warden's parts other than the
   * engine (the console's and the assistant's scripts): a process of that binary may be one, which
   * the key cannot tell; its decision is cached only when each of them would be allowed the same
   * connection. The engine's own connections never hit (its pid is in the cache's state).
   */
  readonly node: string;
  readonly parts: readonly string[];
  /** The policy in force now. */
  readonly policy: () => CompiledPolicy;
  readonly log: (item: NewLogItem) => void;
  readonly counters?: { hit(slot: number, now: number): void };
  /** The engine's decision metrics: hits count as decisions (engine.status decisionsPerMinute). */
  readonly metrics?: { decidedByCache?(count: number): void };
  /**
   * The names the engine knows for a remote address now (HostNames.namesNow): a hit's
   * item names them. Without it, or while none are known, the item keeps the names its entry's
   * decision saw.
   */
  readonly namesNow?: (address: string) => readonly string[];
}

/**
 * The hits of one entry taken in one drain: one log item whose `count` is their number, its time
 * the earliest hit's, its message naming the first and last connection read (pid and socket
 * cookie) and the time from the earliest hit to the latest. At most GROUP_SPAN_MS apart: the ring is drained every 100 ms, so a group
 * spans that much unless the engine was behind.
 */
interface HitGroup {
  readonly id: number;
  /** null: an entry no longer known here (logged without the decision's details). */
  readonly entry: Entry | null;
  readonly uid: number;
  count: number;
  firstMs: number;
  readonly firstPid: number;
  readonly firstCookie: string;
  lastMs: number;
  lastPid: number;
  lastCookieHigh: number;
  lastCookieLow: number;
}

interface Entry {
  readonly policy: CompiledPolicy;
  readonly ruleIndex: number;
  /** The log item a hit writes (as the queued decision's), or null when the rule does not log. */
  readonly item: NewLogItem | null;
  /** The remote address as text (formatIp), to name it by the names known when a hit is logged. */
  readonly address: string;
  /**
   * What carryOver decides the entry again from: the facts of its decision that the key stands for
   * (with `address`: the executable's path and number, the uid and user, the remote port) and the
   * names it saw (for its log item); every rule the decision may depend on reads these alone
   * (cacheableApplication). Fields of their own, not the whole facts: a full cache holds 65,536.
   */
  readonly application: string;
  readonly applicationId: number | undefined;
  readonly uid: number | null;
  readonly user: string | null;
  readonly remotePort: number;
  readonly remoteHosts: readonly string[];
  /** The key as inserted, its bytes as latin1 text. */
  readonly key: string;
}

/** The entries of a generation left behind by a change, to be decided again under the policy that changed it. */
interface CarryOver {
  readonly policy: CompiledPolicy;
  readonly left: IterableIterator<Entry>;
}

export interface VerdictCacheStatus {
  readonly entries: number;
  readonly generation: number;
  readonly inserted: number;
  readonly hits: number;
  readonly misses: number;
  /** Entries found whose event the ring had no room for: those connections were queued instead (also misses). */
  readonly dropped: number;
  /** Hits of entries no longer known here (logged without the decision's details). */
  readonly unknown: number;
  /** Allowed connections not inserted, by reason. */
  readonly skipped: Readonly<Record<string, number>>;
  /** Entries of an earlier policy that a change kept (decided alike under the new one: inserted anew, or by a new decision first) / did not keep. */
  readonly carried: number;
  readonly notCarried: number;
}

export class VerdictCache {
  readonly #o: VerdictCacheOptions;
  #generation = 1;
  #nextId = 1;
  #entries = new Map<number, Entry>();
  /** The previous generation's entries, for its events still in the ring. */
  #previous = new Map<number, Entry>();
  #inserted = 0;
  #unknown = 0;
  #discarded = 0;
  readonly #skipped = new Map<string, number>();
  #carry: CarryOver | null = null;
  #carried = 0;
  #notCarried = 0;

  constructor(options: VerdictCacheOptions) {
    this.#o = options;
    options.maps.setGeneration(this.#generation, process.pid);
  }

  /**
   * Inserts the judgement's key when its decision may be cached; `policy` is the policy in force
   * when the judgement started (a judgement that spans a change is not cached). True when inserted;
   * otherwise the reason is counted (engine.status `verdictCache.skipped`).
   */
  offer(j: Judgement, record: RecordedProcess | undefined, policy: CompiledPolicy): boolean {
    const why = this.#insert(j, record, policy);
    if (why === null) return true;
    this.#skipped.set(why, (this.#skipped.get(why) ?? 0) + 1);
    return false;
  }

  #insert(j: Judgement, record: RecordedProcess | undefined, policy: CompiledPolicy): string | null {
    if (policy !== this.#o.policy()) return 'the policy changed meanwhile';
    const { remoteAddress: remote, remotePort: port, uid } = j.facts;
    const euid = record?.hook === 'connect' ? record.euid : undefined;
    const executable = euid !== undefined && euid === uid ? record?.executable : undefined;
    const keyFor =
      executable === undefined || euid === undefined || remote === null || port === null
        ? null
        : (generation: number) => verdictCacheKey(executable.id, euid, remote, port, generation);
    return this.#admit(j, policy, keyFor);
  }

  /**
   * Inserts the judgement's key (`keyFor` the generation; null: its process was not named from its
   * record alone) when `policy`, the one in force, lets it be cached: null, else why not.
   */
  #admit(
    j: Judgement,
    policy: CompiledPolicy,
    keyFor: ((generation: number) => Buffer | null) | null,
    address?: string,
  ): string | null {
    const { decision: d, facts: f, process: p } = j;
    if (j.verdict !== 'accept' || d.verdict !== 'allow' || d.action !== 'allow' || d.proposal !== undefined)
      return 'not an allow';
    if (
      f.direction !== 'outgoing' ||
      f.protocol !== 'tcp' ||
      f.remoteAddress === null ||
      f.remotePort === null
    )
      return 'not outgoing TCP';
    if (p === null || p.part !== undefined || f.application === null || p.executable !== f.application)
      return "not a program's own executable";
    if (f.applicationSha256 !== undefined) return 'a pinned application';
    if (f.application === this.#o.node && !this.#o.parts.every((part) => allowedAs(policy, f, part)))
      return "node: Warden's parts would be decided otherwise";
    if (keyFor === null) return 'not named from its BPF record alone';
    if (!cacheableApplication(policy, f.application)) return 'its rules use fields outside the key';
    const key = keyFor(this.#generation);
    if (key === null) return 'no key';
    const id = this.#nextId;
    // Connections of one key queued before its first insert (a burst) find it cached already.
    if (!this.#o.maps.insert(key, id)) return 'cached already';
    this.#nextId = this.#nextId >= 0xffffffff ? 1 : this.#nextId + 1;
    if (this.#entries.size >= this.#o.capacity) this.#entries.delete(this.#entries.keys().next().value!);
    this.#entries.set(id, {
      policy,
      ruleIndex: d.ruleIndex,
      item: d.log ? itemOf(j, d) : null,
      address: address ?? formatIp(f.remoteAddress),
      application: f.application,
      applicationId: f.applicationId,
      uid: f.uid,
      user: f.user,
      remotePort: f.remotePort,
      remoteHosts: f.remoteHosts,
      key: key.toString('latin1'),
    });
    this.#inserted++;
    return null;
  }

  /**
   * Drains the hits, then starts a new generation: no entry inserted before is found again. Its
   * entries (and those an earlier change left to carry) wait for carryOver under the policy in
   * force now (the new one).
   */
  clear(): void {
    this.drain();
    this.#generation = this.#generation >= 0xffffffff ? 1 : this.#generation + 1;
    this.#o.maps.setGeneration(this.#generation, process.pid);
    this.#previous = this.#entries;
    this.#entries = new Map();
    // Entries a change before this one had not carried over yet go first (they were hit less recently).
    const left = this.#carry === null ? [] : [...this.#carry.left];
    for (const entry of this.#previous.values()) left.push(entry);
    this.#carry = { policy: this.#o.policy(), left: left.values() };
  }

  /**
   * Decides up to `budget` entries of the generation the last clear() ended again, under the policy
   * it began (`inForce`: the caller's word that this policy's ruleset is in the kernel now), and
   * inserts each as a decision of that policy would be (offer's checks, the same key but for the
   * generation), least recently hit first: the entries a change leaves decided alike are kept. The
   * policy decides an entry from the facts it keeps, the time now and nothing else known (no local end,
   * interface or program context: a decision that could depend on them is not cached). Nothing is
   * done when another change came since (its own carry-over follows its ruleset). True while some
   * are left.
   */
  carryOver(budget: number, inForce: CompiledPolicy): boolean {
    const c = this.#carry;
    if (c === null || c.policy !== inForce || this.#o.policy() !== inForce) return false;
    const now = Date.now();
    for (let n = 0; n < budget; n++) {
      const next = c.left.next();
      if (next.done === true) {
        this.#carry = null;
        return false;
      }
      const e = next.value;
      const facts: ConnectionFacts = {
        direction: 'outgoing',
        protocol: 'tcp',
        application: e.application,
        applicationId: e.applicationId,
        uid: e.uid,
        user: e.user,
        localAddress: null,
        localPort: null,
        remoteAddress: parseIp(e.address),
        remotePort: e.remotePort,
        remoteHosts: e.remoteHosts,
        now,
      };
      const decision = decide(inForce, facts);
      const judgement: Judgement = {
        verdict: kernelVerdictOf(decision.verdict),
        decision,
        facts,
        process: { executable: e.application },
      };
      const keyFor = (generation: number) => withGeneration(Buffer.from(e.key, 'latin1'), generation);
      const why = this.#admit(judgement, inForce, keyFor, e.address);
      // Inserted by a new decision since the change: kept all the same.
      if (why === null || why === 'cached already') this.#carried++;
      else this.#notCarried++;
    }
    return true;
  }

  /**
   * Writes the log items and rule counts of up to `budget` hits in the ring (all by default);
   * returns how many it took, so a caller can go on after giving way to the queue. The hits of one
   * entry (one program, uid and destination) in one call are one log item whose `count` is their
   * number (see `HitGroup`): a hit costs the engine a few reads of the ring, not a log item.
   */
  drain(budget = Number.POSITIVE_INFINITY): number {
    let total = 0;
    /** Entry id (or id and uid, for entries no longer known) -> its hits in this call so far. */
    const groups = new Map<number | string, HitGroup>();
    const policy = this.#o.policy();
    for (;;) {
      const { events, bootNs } = this.#o.maps.drain(Math.min(DRAIN_BATCH, budget - total));
      // The hits' times: the wall clock now less each hit's age on the boot-time clock.
      const nowMs = Date.now();
      for (let at = 0; at + EVENT_BYTES <= events.length; at += EVENT_BYTES) {
        // Two 32-bit halves, not BigInts: pid_tgid's upper half is the tgid.
        const madeNs = events.readUInt32LE(at + 12) * 2 ** 32 + events.readUInt32LE(at + 8);
        const ms = nowMs - Math.max(0, (bootNs - madeNs) / 1e6);
        const id = events.readUInt32LE(at + 24);
        const entry = this.#entries.get(id) ?? this.#previous.get(id);
        // Counted for the rule only while its policy is in force (the counters follow the policy).
        if (entry !== undefined && entry.policy === policy) this.#o.counters?.hit(entry.ruleIndex, ms);
        if (entry === undefined) this.#unknown++;
        const uid = events.readUInt32LE(at + 28);
        const key = entry === undefined ? `${id}:${uid}` : id;
        let group = groups.get(key);
        if (group !== undefined && ms - group.firstMs > GROUP_SPAN_MS) {
          // Hits of one entry read late (the engine was behind) are cut into items of at most GROUP_SPAN_MS.
          this.#log(group);
          group = undefined;
        }
        const pid = events.readUInt32LE(at + 4);
        const cookieHigh = events.readUInt32LE(at + 20);
        const cookieLow = events.readUInt32LE(at + 16);
        if (group === undefined) {
          group = {
            id,
            entry: entry ?? null,
            uid,
            count: 0,
            firstMs: ms,
            firstPid: pid,
            firstCookie: u64Text(cookieHigh, cookieLow),
            lastMs: ms,
            lastPid: pid,
            lastCookieHigh: cookieHigh,
            lastCookieLow: cookieLow,
          };
          groups.set(key, group);
        }
        group.count++;
        // Events of several CPUs may come a little out of order: the item spans the earliest to the latest.
        if (ms < group.firstMs) group.firstMs = ms;
        group.lastMs = Math.max(group.lastMs, ms);
        group.lastPid = pid;
        group.lastCookieHigh = cookieHigh;
        group.lastCookieLow = cookieLow;
      }
      const taken = events.length / EVENT_BYTES;
      if (taken > 0) this.#o.metrics?.decidedByCache?.(taken);
      total += taken;
      if (taken < DRAIN_BATCH || total >= budget) break;
    }
    for (const group of groups.values()) {
      this.#log(group);
      // Recently hit entries are forgotten last.
      const { id, entry } = group;
      if (entry !== null && this.#entries.delete(id)) this.#entries.set(id, entry);
    }
    return total;
  }

  /** The log item of a group of hits: the queued decision's, with when, how many, and the first and last connection. */
  #log(g: HitGroup): void {
    const who =
      g.count === 1
        ? `pid ${g.firstPid}, socket ${g.firstCookie}`
        : `${g.count} connections in ${Math.round(g.lastMs - g.firstMs)} ms, the first pid ${g.firstPid}, socket ${g.firstCookie}, the last pid ${g.lastPid}, socket ${u64Text(g.lastCookieHigh, g.lastCookieLow)}`;
    const time = new Date(g.firstMs).toISOString();
    const count = g.count > 1 ? { count: g.count } : {};
    if (g.entry === null) {
      this.#o.log({
        kind: 'connection',
        verdict: 'allow',
        direction: 'outgoing',
        protocol: 'tcp',
        user: String(g.uid),
        time,
        message: `allow by the verdict cache, an entry of an earlier policy (${who})`,
        ...count,
      });
      return;
    }
    const item = g.entry.item;
    if (item === null) return; // its rule does not log
    // The socket's cookie names the connection (its source port is chosen after the connect hook).
    const names = this.#o.namesNow?.(g.entry.address) ?? [];
    const host = names.length > 0 ? { host: names.join(', ') } : {};
    this.#o.log({ ...item, ...host, time, message: `${item.message} (${who})`, ...count });
  }

  /**
   * Takes up to `budget` hits out of the ring without logging them or counting them for a rule: for
   * a cache given up (the ruleset no longer accepts its mark, so those connections were queued, and
   * their decisions logged them). Returns how many it took; `discarded` counts them all.
   */
  discard(budget = Number.POSITIVE_INFINITY): number {
    let total = 0;
    for (;;) {
      const taken = this.#o.maps.drain(Math.min(DRAIN_BATCH, budget - total)).events.length / EVENT_BYTES;
      this.#discarded += taken;
      total += taken;
      if (taken < DRAIN_BATCH || total >= budget) return total;
    }
  }

  get discarded(): number {
    return this.#discarded;
  }

  status(): VerdictCacheStatus {
    const s = this.#o.maps.stats();
    return {
      entries: this.#entries.size,
      generation: this.#generation,
      inserted: this.#inserted,
      hits: s.hits,
      misses: s.misses,
      dropped: s.dropped,
      unknown: this.#unknown,
      skipped: Object.fromEntries(this.#skipped),
      carried: this.#carried,
      notCarried: this.#notCarried,
    };
  }
}

/** A 64-bit number's decimal text from its halves: exact (a Number while it fits in 53 bits). */
function u64Text(high: number, low: number): string {
  return high < 0x200000 ? String(high * 2 ** 32 + low) : ((BigInt(high) << 32n) | BigInt(low)).toString();
}

/** True when the connection would be allowed (by rules of the key alone) if `application` made it. */
function allowedAs(policy: CompiledPolicy, f: Judgement['facts'], application: string): boolean {
  if (!cacheableApplication(policy, application)) return false;
  // The number goes with the path: the facts' own is another application's.
  const d = decide(policy, { ...f, application, applicationId: applicationIdOf(application) });
  return d.verdict === 'allow' && d.action === 'allow' && d.proposal === undefined;
}

/** The log item of a hit: the queued decision's, the source port unknown at connect, "verdict cache" said. */
function itemOf(j: Judgement, d: Decision): NewLogItem {
  const f = j.facts;
  const remote = f.remoteAddress!;
  const address = remote.version === 6 ? `[${formatIp(remote)}]` : formatIp(remote);
  const by =
    d.source === 'default'
      ? d.ruleName
      : `${d.source === 'internal' ? 'internal rule' : 'rule'} "${d.ruleName}"`;
  return {
    kind: 'connection',
    verdict: 'allow',
    direction: 'outgoing',
    protocol: 'tcp',
    application: f.application!,
    remote: `${address}:${f.remotePort}`,
    ...(f.remoteHosts.length > 0 ? { host: f.remoteHosts.join(', ') } : {}),
    rule: d.ruleName,
    ...(f.user !== null ? { user: f.user } : f.uid !== null ? { user: String(f.uid) } : {}),
    message: `allow by ${by}, decided by the verdict cache`,
  };
}
