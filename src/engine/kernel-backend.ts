/**
 * The kernel backend: compiles the policy into Warden's nftables table and applies it, binds the
 * NFQUEUE queue and judges each queued packet with the Enforcer, reads the NFLOG group through
 * which the kernel reports what it blocked itself, and keeps all of that in step with the
 * configuration (reload, rule expiry, host-name TTLs). Runs in the network namespace it protects.
 */
import { realpath } from 'node:fs/promises';
import { parseIp } from '../ip/index.js';
import { nativeSocketLookup, ProcessAttributor, type RecordedProcess } from '../kernel/attribution.js';
import { openAttributionPath } from '../kernel/attribution-path.js';
import { MARK_REJECT, withWardenBits } from '../kernel/marks.js';
import {
  interfaceName,
  type LoggedPacket,
  openLog,
  openQueue,
  type PacketQueue,
  type QueuedPacket,
  readProcess,
  reapUdpFlows,
} from '../kernel/native.js';
import {
  applyRuleset,
  closeNftSessions,
  detectKernelFeatures,
  readRuleCounters,
  readSetCounters,
  removeLive,
  removeRuleset,
  verifyRuleset,
} from '../kernel/nft.js';
import { type PacketHeader, parsePacket } from '../kernel/packet.js';
import { ProcessContextReader } from '../kernel/process-context.js';
import { type CompiledRuleset, compileRuleset } from '../kernel/ruleset.js';
import { FLOOD_PREFIX } from '../kernel/ruleset-guards.js';
import { type CompiledPolicy, compilePolicy, decide, internalRules } from '../policy/index.js';
import { AfterVerdicts } from './after-verdicts.js';
import { CacheLiveness } from './cache-live.js';
import type { EngineParts, KernelBackend } from './daemon.js';
import { DpkgDatabase } from './dpkg.js';
import { Enforcer, type PacketTuple, type ProcessInfo } from './enforcer.js';
import { ExeHasher } from './exe-hash.js';
import { FloodReporter } from './flood-report.js';
import { HitDrain } from './hit-drain.js';
import { HostNames } from './host-names.js';
import { OwnParts } from './own-parts.js';
import { Repinner } from './repin.js';
import { VerdictCache } from './verdict-cache.js';

/** File names Warden's scripts are installed under besides bin.js (package.json `bin`). */
const INSTALLED_NAMES = ['warden', 'wardend', 'warden-assist'];

/** Entries of the verdict cache (enforcement.verdictCache): LRU in the kernel, as many kept here. */
const VERDICT_CACHE_ENTRIES = 65_536;
/**
 * How long after the first of them the verdict cache's hits are logged and counted (its ring holds
 * about 13,000): under load, ten times a second (hit-drain.ts).
 */
const VERDICT_CACHE_DRAIN_MS = 100;
/**
 * Hits read per turn of the event loop before the queue gets its turn: a hit costs a few reads of
 * the ring (its entry's hits in a turn are one log item), so this is about 1-2 ms of work.
 */
const VERDICT_CACHE_DRAIN_SLICE = 4096;
/** Entries of an earlier policy decided again per turn after a change (a few microseconds each). */
const VERDICT_CACHE_CARRY_SLICE = 128;

const HOOK_INPUT = 1;
const HOOK_OUTPUT = 3;
/**
 * Packets the kernel holds for the engine (its default is 1,024). Under a burst the per-uid flood
 * limit keeps one program's share small; a bigger queue lets the rest wait instead of being dropped.
 */
export const QUEUE_MAX_LENGTH = 8192;
/** The queue socket's receive buffer: 8,192 packets of up to 128 bytes plus netlink overhead, with room. */
export const QUEUE_RECEIVE_BUFFER = 16 << 20;

/** Every host name the policy's rules mention (exact and wildcard). */
export function hostNamesOf(policy: CompiledPolicy): Set<string> {
  const names = new Set<string>();
  for (const r of policy.rules) {
    if (!r.active || r.remote === null) continue;
    for (const h of r.remote.hosts) names.add(h);
    for (const s of r.remote.suffixes) names.add(`*${s}`);
  }
  return names;
}

function tupleOf(p: PacketHeader): PacketTuple {
  return {
    protocol: p.protocol,
    source: p.source,
    destination: p.destination,
    ...(p.sourcePort > 0 || p.protocol === 'tcp' || p.protocol === 'udp'
      ? { sourcePort: p.sourcePort, destinationPort: p.destinationPort }
      : {}),
  };
}

/** Starts enforcing: applies the ruleset, then listens on the queue and the log group. */
export async function startKernelBackend(parts: EngineParts): Promise<KernelBackend> {
  const { config, logs, asks, host, log } = parts;
  const features = await detectKernelFeatures();
  const names = new HostNames(
    config.settings().dns.resolvers.length > 0 ? { servers: config.settings().dns.resolvers } : {},
  );
  // BPF records (enforcement.bpfCgroup, the cgroup2 root by default) where the kernel allows, else /proc.
  const { bpfCgroup, verdictCache: cacheOn } = config.settings().enforcement;
  const attribution = openAttributionPath(
    bpfCgroup,
    (m) => log('warn', m),
    process.env,
    cacheOn ? VERDICT_CACHE_ENTRIES : 0,
  );
  const attributor = new ProcessAttributor({
    socketLookup: nativeSocketLookup(attribution.lookup),
    ownScripts: { paths: Object.values(host.executables), names: INSTALLED_NAMES },
    // One native read of a new process; executables seen before: named from the BPF record alone.
    readProcess,
  });
  const programContext = new ProcessContextReader();
  const node = await realpath(process.execPath);
  const own = new OwnParts({ executables: host.executables, node });
  let compiled!: CompiledPolicy;
  const maps = attribution.bpf?.cache;
  // A cache whose state the kernel refused to take is given up, as a failed clear() below is.
  let startFailure = '';
  const newCache = (options: ConstructorParameters<typeof VerdictCache>[0]): VerdictCache | null => {
    try {
      return new VerdictCache(options);
    } catch (e) {
      startFailure = `given up: writing its state failed (${(e as Error).message})`;
      log('error', `verdict cache ${startFailure}`);
      return null;
    }
  };
  const vcache =
    typeof maps === 'object'
      ? newCache({
          maps,
          capacity: VERDICT_CACHE_ENTRIES,
          node,
          parts: [host.executables.console, host.executables.assistant],
          policy: () => compiled,
          log: (item) => logs.append(item),
          namesNow: (address) => names.namesNow(address),
          metrics: parts.metrics,
          ...(parts.ruleCounters !== undefined ? { counters: parts.ruleCounters } : {}),
        })
      : null;
  let cacheBroken = false;
  // The ruleset accepts the cache's mark only while this engine renews its liveness (cache-live.ts).
  const live = vcache !== null ? new CacheLiveness(() => removeLive(), log) : null;
  // Once the ruleset without the mark's rule is in force, the hits still counted are queued connections.
  let discardHits = false;
  let cacheWhy = startFailure
    ? startFailure
    : !cacheOn
      ? 'off: enforcement.verdictCache'
      : attribution.bpf === null
        ? `no BPF attribution: ${attribution.description}`
        : typeof maps === 'string'
          ? maps
          : '';
  /** The BPF record each identity was named from alone (the verdict cache's key is made of it). */
  const records = new WeakMap<ProcessInfo, RecordedProcess>();
  const drainCache = (budget?: number): number => {
    try {
      return (discardHits ? vcache?.discard(budget) : vcache?.drain(budget)) ?? 0;
    } catch (e) {
      log('error', `reading the verdict cache's hits failed: ${(e as Error).message}`);
      return 0;
    }
  };
  let stopped = false;
  const hitDrain =
    vcache === null || typeof maps !== 'object'
      ? undefined
      : new HitDrain({
          drain: drainCache,
          slice: VERDICT_CACHE_DRAIN_SLICE,
          delayMs: VERDICT_CACHE_DRAIN_MS,
          watch: (onEvents) => maps.watch(onEvents),
          log: (level, message) => log(level, message),
        });
  /** Carries the cache's entries over to `inForce` (its ruleset in the kernel now), in slices like the drain. */
  const carrySlice = (inForce: CompiledPolicy) => {
    if (stopped || cacheBroken || vcache === null) return;
    try {
      if (vcache.carryOver(VERDICT_CACHE_CARRY_SLICE, inForce)) setImmediate(carrySlice, inForce);
    } catch (e) {
      log('error', `verdict cache carry-over failed: ${(e as Error).message}`);
    }
  };
  /** Some active rule names interfaces: only then is a packet's interface looked up (one ioctl). */
  let usesInterfaces = false;
  const interfaceOf = (index: number | undefined): string | null =>
    usesInterfaces && index !== undefined ? interfaceName(index) : null;
  let ruleset!: CompiledRuleset;
  /** What the kernel table holds, as the last successful apply left it; unknown after a failure. */
  let applied: CompiledRuleset | undefined;
  let expiryTimer: NodeJS.Timeout | undefined;
  let queue: PacketQueue | undefined;
  let logGroup: ReturnType<typeof openLog> | undefined;
  let queueKey = -1;
  let logKey = 0;

  // Connection log items wait until the verdicts of this turn are given: appending (the store, the
  // consoles following the log) is nothing the kernel needs to let the packet go.
  const afterVerdicts = new AfterVerdicts((item) => logs.append(item));
  // sha256-pinned rules: executables hashed off the event loop; a package update re-pins its rules.
  const hasher = parts.hasher ?? new ExeHasher();
  const repinner = new Repinner({
    dpkg: new DpkgDatabase(),
    hasher,
    policy: () => config.policy(),
    // Resolves once the re-pinned policy is the one the enforcer decides with (the kernel took it).
    setPolicy: async (p, meta) => {
      const version = await config.setPolicy(p, meta);
      await parts.settled?.();
      return version;
    },
    log: (item) => logs.append(item),
    fail: (m) => log('error', m),
  });
  const enforcer = new Enforcer({
    policy: () => compiled,
    identify: async (t, direction, uidHint): Promise<ProcessInfo | null> => {
      if (t.protocol !== 'tcp' && t.protocol !== 'udp')
        return uidHint === undefined ? null : { uid: uidHint };
      const local = direction === 'outgoing' ? t.source : t.destination;
      const remote = direction === 'outgoing' ? t.destination : t.source;
      const id = await attributor.attribute({
        protocol: t.protocol,
        family: local.includes(':') ? 6 : 4,
        direction,
        localAddress: local,
        localPort: (direction === 'outgoing' ? t.sourcePort : t.destinationPort) ?? 0,
        remoteAddress: remote,
        remotePort: (direction === 'outgoing' ? t.destinationPort : t.sourcePort) ?? 0,
      });
      if (id === null) return uidHint === undefined ? null : { uid: uidHint };
      // The kernel tells whose socket sent the packet. A socket found under another uid is not the
      // sender's (another socket shares the port, e.g. SO_REUSEADDR): judge the uid, not that program.
      if (uidHint !== undefined && id.socketUid !== uidHint) return { uid: uidHint };
      const facts = {
        ...(id.pid !== null ? { pid: id.pid } : {}),
        ...(id.executable !== null ? { executable: id.executable, applicationId: id.applicationId } : {}),
        ...(id.script !== null ? { script: id.script } : {}),
        commandLine: id.commandLine,
      };
      // Decided now, not cached with the identity: the assistant is its pid only while it runs.
      const part = await own.partOf(facts);
      const info: ProcessInfo = {
        ...facts,
        uid: id.uid,
        ...(id.user !== null ? { user: id.user } : {}),
        ...(part !== null ? { part } : {}),
      };
      if (vcache !== null && id.recorded !== undefined) records.set(info, id.recorded);
      return info;
    },
    hostsOf: (address) => names.hostOf(address),
    asks,
    log: (item) => afterVerdicts.push(item),
    executables: host.executables,
    metrics: parts.metrics,
    propose: (rule, facts) => parts.proposals?.seen(rule, facts),
    pins: hasher,
    onPinChange: (change) => repinner.consider(change),
    programContext: (pid, ancestors) => programContext.contextOf(pid, ancestors),
    ...(parts.ruleCounters !== undefined ? { counters: parts.ruleCounters } : {}),
  });
  const counters = parts.ruleCounters;
  // The kernel's rule counters are read twice a minute (and by rules.list when older than a second).
  const counterRead = setInterval(() => void counters?.refresh(), 30_000);
  counterRead.unref();

  /**
   * Gives a verdict. A verdict given after the read of its packet is sent at once and may fail (the
   * kernel refused the datagram): the packet then stays queued until the queue is unbound, which
   * drops it; it is never accepted undecided. The failure is logged, not thrown into a promise.
   */
  const give = (id: number, verdict: 'accept' | 'drop', mark?: number) => {
    try {
      queue?.verdict(id, verdict, mark);
    } catch (e) {
      log('error', `verdict for queued packet ${id} not sent: ${(e as Error).message}`);
    }
  };

  const onPacket = (p: QueuedPacket) => {
    const parsed = parsePacket(p.payload);
    const direction = p.hook === HOOK_INPUT ? 'incoming' : p.hook === HOOK_OUTPUT ? 'outgoing' : undefined;
    if (!parsed.ok || direction === undefined) {
      // Not something the policy can judge (a header beyond the copied bytes, another hook): a packet
      // nobody decided is never accepted. A sender's retry is queued (and dropped) again.
      give(p.id, 'drop');
      logs.append({
        kind: 'security',
        ...(p.uid !== undefined ? { user: String(p.uid) } : {}),
        message: `queued packet ${p.id} not judged (${parsed.ok ? `hook ${p.hook}` : parsed.reason}); dropped`,
      });
      return;
    }
    const iface = interfaceOf(direction === 'outgoing' ? p.outdev : p.indev);
    const policy = compiled;
    enforcer.judge(tupleOf(parsed.packet), direction, p.uid, iface).then(
      (j) => {
        if (j.verdict === 'reject') give(p.id, 'accept', withWardenBits(p.mark, MARK_REJECT));
        else give(p.id, j.verdict);
        // After the verdict is sent: the next connection of the same key is decided in the kernel.
        if (vcache !== null && !cacheBroken && j.verdict === 'accept' && j.process !== null) {
          const record = records.get(j.process);
          afterVerdicts.run(() => {
            if (stopped || cacheBroken) return;
            try {
              vcache.offer(j, record, policy);
            } catch (e) {
              log('error', `verdict cache insert failed: ${(e as Error).message}`);
            }
          });
        }
      },
      (e: Error) => {
        // The engine is here, so this is not onEngineFailure (that is the queue's bypass when no
        // engine listens): a packet whose judgement failed is dropped, never let by undecided.
        give(p.id, 'drop');
        logs.append({ kind: 'system', message: `judging packet ${p.id} failed (${e.message}); dropped` });
      },
    );
  };

  const floods = new FloodReporter({
    read: (set) => readSetCounters(set),
    log: (item) => logs.append(item),
    fail: (message) => log('error', message),
  });
  const udpFlows = reapUdpFlows();
  // The reaper runs on its own thread; what it could not delete is reported here, once a minute at most.
  let udpFailures = 0;
  // Verdicts go out in batches after the read that brought their packets, so a send the kernel
  // refused is not an exception on the packet path: it is counted by the queue and reported here.
  // Those packets stay queued until the queue is unbound, which drops them (never accepted).
  let verdictFailures = 0;
  const udpCheck = setInterval(() => {
    const { failures, enobufs } = udpFlows.stats();
    if (failures + enobufs > udpFailures)
      log('error', 'deleting the conntrack flows of closed UDP sockets failed or missed notices', {
        failures,
        enobufs,
      });
    udpFailures = failures + enobufs;
    const q = queue?.stats();
    if (q !== undefined && q.unsent > verdictFailures)
      log(
        'error',
        'the kernel refused datagrams of verdicts; their packets wait in the queue until it is unbound',
        {
          sendErrors: q.sendErrors,
          unsent: q.unsent,
        },
      );
    if (q !== undefined) verdictFailures = q.unsent;
  }, 60_000);
  udpCheck.unref();

  const onLogged = (p: LoggedPacket) => {
    if (p.prefix.startsWith(FLOOD_PREFIX)) {
      floods.notify();
      return;
    }
    const m = /^warden (\S+) (allow|deny|reject) ?$/.exec(p.prefix);
    const parsed = parsePacket(p.payload);
    if (!m || !parsed.ok) return;
    const direction = p.hook === HOOK_INPUT ? 'incoming' : 'outgoing';
    const h = parsed.packet;
    const local = direction === 'outgoing' ? h.source : h.destination;
    const remote = direction === 'outgoing' ? h.destination : h.source;
    const lport = direction === 'outgoing' ? h.sourcePort : h.destinationPort;
    const rport = direction === 'outgoing' ? h.destinationPort : h.sourcePort;
    // The kernel decided without an application: the same decision names the exact rule of a merged run.
    const d = decide(compiled, {
      direction,
      protocol: h.protocol,
      application: null,
      uid: p.uid ?? null,
      user: null,
      localAddress: parseIp(local),
      localPort: lport || null,
      remoteAddress: parseIp(remote),
      remotePort: rport || null,
      remoteHosts: [],
      interface: interfaceOf(direction === 'outgoing' ? p.outdev : p.indev),
      now: Date.now(),
    });
    // In monitor mode the kernel accepts what a rule would block: say what would have happened.
    const what = d.verdict === d.action ? m[2] : `${d.action}, ${m[2]} in ${d.mode} mode`;
    const at = (a: string, port: number) => (a.includes(':') ? `[${a}]` : a) + (port ? `:${port}` : '');
    logs.append({
      kind: 'connection',
      verdict: m[2] as 'allow' | 'deny' | 'reject',
      direction,
      protocol: h.protocol,
      local: at(local, lport),
      remote: at(remote, rport),
      rule: d.ruleName,
      ...(p.uid !== undefined ? { user: String(p.uid) } : {}),
      message: `${what} by ${d.source === 'default' ? d.ruleName : `rule "${d.ruleName}"`} (in the kernel)`,
    });
  };

  const apply = async () => {
    // What the kernel counted under the ruleset in force goes to its rules before the change.
    if (applied !== undefined) await counters?.refresh();
    const settings = config.settings();
    // The policy in force: its own rules and its subscriptions' (src/engine/includes.ts).
    const policy = parts.includes?.effective(config.policy()) ?? config.policy();
    const next = compilePolicy(policy, {
      settings,
      internalRules: internalRules(settings, host, policy),
      ...(parts.lists !== undefined ? { lists: parts.lists.contents() } : {}),
    });
    // The old policy's cache hits are counted to it; then, in the same turn as the new policy comes
    // in force, a new generation: no entry of the old policy decides another connection.
    drainCache();
    compiled = next;
    try {
      if (!cacheBroken) vcache?.clear();
    } catch (e) {
      // A map write the kernel refused: the cache is given up, and the ruleset applied below no longer
      // accepts its mark, so every connection is queued again.
      cacheBroken = true;
      cacheWhy = `given up: emptying it failed (${(e as Error).message})`;
      log('error', `verdict cache ${cacheWhy}`);
    }
    counters?.bind(compiled);
    usesInterfaces = compiled.rules.some((r) => r.active && r.interfaces !== null);
    ruleset = compileRuleset({
      policy: compiled,
      settings,
      now: Date.now(),
      features,
      engineExecutable: host.executables.engine,
      verdictCache: vcache !== null && !cacheBroken,
    });
    // Bind the queue before the ruleset sends packets to it, so nothing waits on an empty queue.
    // A full queue drops, whatever onEngineFailure says (that is the rule's --queue-bypass: no engine).
    if (settings.enforcement.queue !== queueKey) {
      queue?.close();
      queue = openQueue(
        settings.enforcement.queue,
        { maxLength: QUEUE_MAX_LENGTH, receiveBuffer: QUEUE_RECEIVE_BUFFER },
        onPacket,
      );
      queueKey = settings.enforcement.queue;
      verdictFailures = 0;
    }
    if (settings.enforcement.logGroup !== logKey) {
      logGroup?.close();
      logGroup = openLog(settings.enforcement.logGroup, onLogged);
      logKey = settings.enforcement.logGroup;
    }
    // Only what changed since the last apply goes to the kernel (one transaction); at start, after a
    // failure or when a change is not possible, the whole table is loaded in place, so after a
    // restart the kernel holds what the policy says whatever it held before.
    const previous = applied;
    applied = undefined;
    // No read of the counters while the table changes (reads are async: a read the change overtakes
    // would map the new table's elements by the old ruleset); a failed load changed nothing.
    counters?.detachKernel();
    let how: Awaited<ReturnType<typeof applyRuleset>>;
    try {
      how = await applyRuleset(ruleset, {}, previous);
    } catch (e) {
      if (previous !== undefined) counters?.bindKernel(() => readRuleCounters(previous));
      throw e;
    }
    // Updated in place, the flood counter sets keep their counts; only a new table starts them at zero.
    if (how === 'replaced') floods.reset();
    const inForce = ruleset;
    counters?.bindKernel(() => readRuleCounters(inForce));
    // What the kernel counted before the change was read above; from here on, growth counts.
    if (counters !== undefined) {
      try {
        counters.rebaseKernel(await readRuleCounters(inForce));
      } catch (e) {
        log('error', `reading the rule counters failed: ${(e as Error).message}`);
      }
    }
    // Read back what a full load left (a change is one transaction the kernel took whole, and
    // listing would cost more than the change): a table that differs is an error, not a warning.
    if (how !== 'changed') {
      const check = await verifyRuleset(ruleset);
      if (!check.ok)
        throw new Error(`the kernel ruleset differs from what was loaded: ${check.problems.join('; ')}`);
    }
    applied = ruleset;
    if (cacheBroken && !discardHits) {
      drainCache();
      discardHits = true;
    }
    if (cacheBroken) void live?.end(false);
    else {
      live?.keep();
      // The old policy's entries that this one decides alike go back in, now that its ruleset is in force.
      carrySlice(next);
    }
    await names.watch(hostNamesOf(compiled), {
      reverse: compiled.rules.some((r) => r.active && (r.remote?.domainLists.length ?? 0) > 0),
      addresses: compiled.addressLists !== null,
    });
    if (expiryTimer) clearTimeout(expiryTimer);
    if (ruleset.nextChange !== undefined) {
      const wait = Math.max(1000, Math.min(ruleset.nextChange - Date.now() + 10, 2 ** 31 - 1));
      expiryTimer = setTimeout(
        () => void apply().catch((e: Error) => log('error', `re-apply after expiry failed: ${e.message}`)),
        wait,
      );
      expiryTimer.unref();
    }
    const s = ruleset.stats;
    log('info', 'ruleset applied', {
      how,
      nftRules: s.nftRules,
      sets: s.sets,
      elements: s.elements,
      kernelRules: s.kernelRules,
      queuedRules: s.queuedRules,
    });
  };

  await apply();
  const describe = () => {
    const e = config.settings().enforcement;
    return `nftables table inet warden + NFQUEUE ${e.queue} (${features.nativeQueue ? 'nft queue' : 'xt NFQUEUE'}, ${e.onEngineFailure === 'open' ? 'new connections pass while no engine runs' : 'new connections dropped while no engine runs'}), NFLOG group ${e.logGroup}; attribution ${attribution.description}; verdict cache ${vcache !== null && !cacheBroken ? 'on' : `off (${cacheWhy})`}`;
  };
  return {
    get description() {
      return describe();
    },
    attribution: attribution.description,
    ...(attribution.bpf !== null ? { attributionLookups: attribution.bpf.lookups } : {}),
    verdictCache: () =>
      vcache === null || cacheBroken
        ? {
            inUse: false,
            why:
              vcache !== null && discardHits
                ? `${cacheWhy} (${vcache.discarded} hits since were queued, not logged as the cache's)`
                : cacheWhy,
          }
        : { inUse: true, ...vcache.status(), ...(live !== null ? { liveness: live.status() } : {}) },
    reload: apply,
    async stop() {
      if (expiryTimer) clearTimeout(expiryTimer);
      clearInterval(counterRead);
      hitDrain?.stop();
      drainCache();
      stopped = true;
      if (vcache !== null) log('info', 'verdict cache at stop', { ...vcache.status() });
      await counters?.refresh();
      counters?.detachKernel();
      // Before the programs that clear the mark on a miss are detached: sockets keep the bit.
      await live?.end(true);
      names.close();
      floods.close();
      clearInterval(udpCheck);
      udpFlows.close();
      attribution.close();
      queue?.close();
      logGroup?.close();
      queue = undefined;
      afterVerdicts.flush();
      closeNftSessions();
      if (parts.hasher === undefined) await hasher.close();
      if (config.settings().enforcement.onStop === 'remove') await removeRuleset();
    },
  };
}
