/**
 * Puts a compiled ruleset into the kernel and takes it out again: `nft -f -`
 * for table inet warden (atomic), iptables-nft-restore --noflush for the one
 * NFQUEUE rule per family; verify lists what is there and compares; remove
 * deletes only what is Warden's. Every command may run in another network
 * namespace (`nsenter --net=PATH`), which is how the tests use it.
 */
import { spawn } from 'node:child_process';
import { ErrorCode, WardenError } from '../errors.js';
import { nativeAvailable } from './native.js';
import { countSetElements, dumpRuleCounters, readTableNames, type TableNames } from './nft-dumps.js';
import { parseTableListing, queueStateOf, type TableListing } from './nft-listing.js';
import { closeNftSessions, runInSession, SESSION_MAX_TEXT } from './nft-session.js';
import type { CompiledRuleset, KernelFeatures, QueueRules, RulesetExpectation } from './ruleset.js';
import { QUEUE_CHAIN, QUEUE_TABLE, TABLE_FAMILY, TABLE_NAME } from './ruleset.js';
import { mapRuleCounters } from './ruleset-counters.js';
import { changeBatch } from './ruleset-diff.js';
import { LIVE_SET } from './ruleset-guards.js';

export interface KernelTarget {
  /** A network namespace path for `nsenter --net=` (e.g. /run/netns/NAME); absent: this process's namespace. */
  readonly netns?: string;
}

interface Result {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

const FAMILIES = [
  { name: 'IPv4', restore: 'iptables-nft-restore', tool: 'iptables-nft', nft: 'ip' },
  { name: 'IPv6', restore: 'ip6tables-nft-restore', tool: 'ip6tables-nft', nft: 'ip6' },
] as const;
type Family = (typeof FAMILIES)[number];

/**
 * `nft -f` allocates a few small objects per set element, and its heap grows 4 KiB page by page: at
 * 100,000 elements a third of its time went to page faults. glibc's `hugetlb=1` tunable lets malloc
 * ask for transparent huge pages instead (madvise); measured, a 100,000-rule load took 0.55-0.65 s
 * instead of 0.78 s, 10,000 rules 85 instead of 110 ms. Older glibc ignores the tunable. An
 * administrator's own GLIBC_TUNABLES is left as it is.
 */
const LOAD_ENV = { ...process.env, GLIBC_TUNABLES: process.env.GLIBC_TUNABLES ?? 'glibc.malloc.hugetlb=1' };

/** `nft -f -` with `text`: a load or a change, as one transaction. */
const load = (target: KernelTarget, text: string) => run(target, 'nft', ['-f', '-'], text, LOAD_ENV);

/** Runs a tool (through nsenter when a namespace is given); a missing tool is a WardenError, a failure is a Result. */
function run(
  target: KernelTarget,
  tool: string,
  args: readonly string[],
  input?: string,
  env?: NodeJS.ProcessEnv,
): Promise<Result> {
  const [command, argv] =
    target.netns === undefined ? [tool, args] : ['nsenter', [`--net=${target.netns}`, tool, ...args]];
  return new Promise((resolve, reject) => {
    const child = spawn(command, argv, { stdio: ['pipe', 'pipe', 'pipe'], env });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => {
      stdout += d;
    });
    child.stderr.setEncoding('utf8').on('data', (d: string) => {
      stderr += d;
    });
    child.on('error', (error: NodeJS.ErrnoException) => {
      reject(
        error.code === 'ENOENT'
          ? new WardenError(ErrorCode.KERNEL_TOOL_MISSING, `${command} not found`, {
              suggestion: 'install nftables, iptables and util-linux (scripts/setup.sh)',
              cause: error,
            })
          : error,
      );
    });
    child.on('close', (code) => {
      // nsenter reports a missing tool as exit 127 with "failed to execute".
      if (code === 127 && /failed to execute|No such file/.test(stderr)) {
        reject(
          new WardenError(ErrorCode.KERNEL_TOOL_MISSING, `${tool} not found`, { suggestion: 'install it' }),
        );
      } else resolve({ code: code ?? 1, stdout, stderr });
    });
    child.stdin.on('error', () => {}); // the tool may exit before reading everything; its status says why
    child.stdin.end(input ?? '');
  });
}

function failure(what: string, r: Result, prefix = ''): WardenError {
  const text = r.stderr.trim() || r.stdout.trim() || `exit status ${r.code}`;
  if (/Operation not permitted|Permission denied/i.test(text)) {
    return new WardenError(ErrorCode.KERNEL_NOT_PERMITTED, `${prefix}${what}: not permitted (run as root)`, {
      suggestion: 'run the engine as root (it needs CAP_NET_ADMIN)',
    });
  }
  return new WardenError(ErrorCode.KERNEL_RULESET_REJECTED, `${prefix}${what} failed: ${text}`);
}

/** How applyRuleset put the ruleset in: see there. */
export type ApplyResult = 'changed' | 'in place' | 'replaced';

/**
 * Loads the ruleset: the nft table (one transaction: all or nothing) and, at the same time, the
 * queue rule per family. If a queue rule fails the nft table stays in place (it is complete and consistent;
 * packets marked for the queue then pass or wait per onEngineFailure) and the error says which part failed.
 *
 * With `previous` (the ruleset this target's table holds, as the last successful call loaded it),
 * only what differs is sent, as one batch ('changed'; see ruleset-diff.ts), and the queue rules
 * are rewritten only when they differ. When that is not possible or the kernel refuses the batch
 * (the table is not what `previous` says; the refused batch changed nothing), the whole table is
 * loaded: updated in place ('in place'), or declared afresh where there was none, or deleted and
 * declared again when it cannot be updated ('replaced': the dynamic sets start empty).
 */
export async function applyRuleset(
  compiled: CompiledRuleset,
  target: KernelTarget = {},
  previous?: CompiledRuleset,
): Promise<ApplyResult> {
  if (previous !== undefined && (await applyChange(previous, compiled, target))) {
    if (compiled.queue !== null && JSON.stringify(compiled.queue) !== JSON.stringify(previous.queue))
      await applyQueueRules(compiled.queue, target);
    return 'changed';
  }
  // The table's listing is asked for first: the load, the longest part, waits on it.
  const inPlaceListed = inPlaceText(compiled, target);
  // The queue rule meanwhile: it only matches packets the table marks, so it may come first; the
  // table's error, when both fail, is the one reported.
  const queued = compiled.queue === null ? Promise.resolve() : applyQueueRules(compiled.queue, target);
  queued.catch(() => {}); // awaited below; not unhandled while the table loads
  const inPlace = await inPlaceListed;
  const text = inPlace ?? compiled.nft;
  // A small text through the session (no process start, no wait on close; see nft-session.ts).
  const loaded =
    text.length <= SESSION_MAX_TEXT
      ? (await runInSession(target.netns, text))?.ok === true
      : inPlace !== null && (await load(target, inPlace)).code === 0;
  let how: ApplyResult = inPlace === null ? 'replaced' : 'in place';
  if (!loaded) {
    // Not updatable in place (an older layout, a dynamic set whose definition changed), or no
    // table, or the session failed: `nft -f` replaces the table as a whole, which drops what waits
    // in the queue but is always possible, and says on which line it failed when it fails.
    const nft = await load(target, compiled.nft);
    if (nft.code !== 0) {
      await queued.catch(() => {}); // nothing of ours still runs when the caller tries again
      throw failure('nft -f (table inet warden; nothing was changed)', nft);
    }
    how = 'replaced';
  }
  await queued;
  return how;
}

/**
 * Sends only what differs between `previous` (what the table holds) and `compiled` as one nft
 * transaction, through the namespace's long-lived `nft -i` (nft-session.ts). False when the
 * difference is not expressible as a change, the kernel refused the batch (then the table is as it
 * was: a transaction is all or nothing) or the session failed (then the caller loads the whole table).
 */
/** Interval sets above this many elements are loaded whole rather than changed element by element. */
const BIG_INTERVAL_SET = 10_000;

export async function applyChange(
  previous: CompiledRuleset,
  compiled: CompiledRuleset,
  target: KernelTarget = {},
): Promise<boolean> {
  const change = changeBatch(previous.model, compiled.model);
  if (change === null) return false;
  if (change.text === '') return true;
  // nft adds or deletes elements of a big interval set slowly (a refreshed 100,000-network list
  // took minutes, where loading the table in place takes about a second): such a change is loaded
  // in place instead (applyRuleset: the hooks stay, nothing waiting in the queue is dropped).
  for (const s of compiled.model.sets)
    if (
      s.elements.length > BIG_INTERVAL_SET &&
      s.declaration.includes('flags interval') &&
      change.text.includes(` ${s.name} {`)
    )
      return false;
  if (change.text.length > SESSION_MAX_TEXT) return (await load(target, change.text)).code === 0;
  return (await runInSession(target.netns, change.text))?.ok === true;
}

/**
 * The same ruleset as one transaction that updates the existing table in place: base chains keep
 * their hooks registered (deleting one makes the kernel drop every packet waiting in NFQUEUE), the
 * dynamic sets keep their elements; every chain is flushed and refilled, static sets the ruleset
 * still has are flushed and refilled, other chains and sets are deleted. Null when there is no table with chains to update or it cannot be
 * listed (the caller then loads the text as it is, which replaces the table).
 *
 * `nft list chains` does not fetch set elements (~2 ms): without a chain of ours there is no table
 * to look into. Otherwise the table is listed tersely (set names, not their elements; nft 1.0.6
 * still fetches the elements, ~30 ms for 10,000).
 */
async function inPlaceText(compiled: CompiledRuleset, target: KernelTarget): Promise<string | null> {
  const table = `${TABLE_FAMILY} ${TABLE_NAME}`;
  const replace = `table ${table} {}\ndelete table ${table}\n`;
  if (!compiled.nft.includes(replace)) return null;
  const names = await wardenNames(target);
  // No chain: no table, or one without hooks that nothing can be waiting in; the text replaces it.
  if (names === null || names.chains.length === 0) return null;
  const { chains, sets, maps, counters } = names;
  const keep = new Set(compiled.expect.chains);
  const dynamic = new Set(compiled.expect.dynamicSets);
  // A static set the new ruleset declares again (same name: same place in the policy, same type)
  // is emptied and refilled, not deleted: it keeps its handle, so the table lists as before.
  const kept = new Set(compiled.model.sets.map((s) => s.name));
  // Rule counters the ruleset declares again keep their counts; those of rules gone are deleted
  // after the chains and maps that name them were emptied (same transaction).
  const keptCounters = new Set(compiled.model.counters);
  const prelude = [
    ...chains.map((c) => `flush chain ${table} ${c}`),
    ...chains.filter((c) => !keep.has(c)).map((c) => `delete chain ${table} ${c}`),
    ...sets
      .filter((s) => !dynamic.has(s))
      .map((s) => `${kept.has(s) ? 'flush' : 'delete'} set ${table} ${s}`),
    // Warden declares no maps: one in the table is left from another version, and goes.
    ...maps.map((m) => `delete map ${table} ${m}`),
    ...counters.filter((c) => !keptCounters.has(c)).map((c) => `delete counter ${table} ${c}`),
  ];
  return compiled.nft.replace(replace, `${prelude.join('\n')}\n`);
}

/**
 * One table as `nft list table` shows it (nft-listing.ts): through the namespace's nft session (no
 * process start: each costs the engine's thread 6-8 ms on the VMs measured), or `nft -t list table`
 * when the session failed. Null when the listing is not recognised.
 */
async function listTable(target: KernelTarget, family: string, name: string): Promise<TableListing | null> {
  const command = `list table ${family} ${name}`;
  const session = await runInSession(target.netns, command);
  if (session !== null) return parseTableListing(session.output);
  const listed = await run(target, 'nft', ['-t', ...command.split(' ')]);
  return parseTableListing(listed.code === 0 ? listed.stdout : listed.stderr);
}

/**
 * What table inet warden holds, by name: by netlink dumps in this process's own namespace
 * (readTableNames: milliseconds; nft fetches every element before it lists a table, 0.5 s at
 * 100,000), else from nft's listing. Null when neither could say.
 */
async function wardenNames(target: KernelTarget): Promise<TableNames | null> {
  if (target.netns === undefined && nativeAvailable()) {
    try {
      return await readTableNames(TABLE_NAME);
    } catch {
      // The dumps failed (a timeout, memory): nft lists it instead.
    }
  }
  const listing = await listTable(target, TABLE_FAMILY, TABLE_NAME);
  return listing === null ? null : { ...listing, chains: [...listing.chains.keys()] };
}

/**
 * How a family's queue chain and jumps stand, read from the table's listing; null when the listing
 * cannot say for sure, or the restore text is not the plain one of `queue` (then the tools are asked).
 */
async function queueState(queue: QueueRules, family: Family, target: KernelTarget) {
  if (!restoreText(queue, family).includes(`\n-A ${queue.chain} ${queue.ruleArgs.join(' ')}\n`)) return null;
  return queueStateOf(await listTable(target, family.nft, queue.table), queue);
}

const restoreText = (queue: QueueRules, family: Family) => (family.name === 'IPv4' ? queue.v4 : queue.v6);

/** The hooks that do not jump to the queue chain, by `iptables-nft -C` (both at once). */
async function missingJumpsByTools(queue: QueueRules, family: Family, target: KernelTarget) {
  const checks = await Promise.all(
    queue.hooks.map((hook) => run(target, family.tool, ['-t', queue.table, '-C', hook, '-j', queue.chain])),
  );
  return queue.hooks.filter((_, i) => checks[i]!.code !== 0);
}

/**
 * Declares the queue chain with its rule and adds the missing jumps, both families at once (each is
 * its own table and transaction; together they take half the time). A family whose chain and jumps
 * already are as `queue` says is left alone: no process runs for it.
 */
async function applyQueueRules(queue: QueueRules, target: KernelTarget): Promise<void> {
  const results = await Promise.all(
    FAMILIES.map(async (family) => {
      const state = await queueState(queue, family, target);
      if (state?.chainOk === true && state.missingJumps.length === 0)
        return { family, result: { code: 0, stdout: '', stderr: '' } };
      const missing = state?.missingJumps ?? (await missingJumpsByTools(queue, family, target));
      const jumps = missing.map((hook) => `-I ${hook} 1 -j ${queue.chain}`);
      const text = restoreText(queue, family).replace(/^COMMIT$/m, [...jumps, 'COMMIT'].join('\n'));
      return { family, result: await run(target, family.restore, ['--noflush'], text) };
    }),
  );
  const done = results.filter((r) => r.result.code === 0).map((r) => r.family.name);
  const failed = results.find((r) => r.result.code !== 0);
  if (failed !== undefined) {
    const { family, result } = failed;
    throw failure(
      `${family.restore} --noflush (${family.name} queue rule in table ${queue.table}, chain ${queue.chain})`,
      result,
      `table inet warden is loaded${done.length > 0 ? ` and the ${done.join(' and ')} queue rule too` : ''}, but `,
    );
  }
}

/** What verifyRuleset found: ok, or one line per difference. */
export interface Verification {
  readonly ok: boolean;
  readonly problems: readonly string[];
}

/** Compares the kernel with what the compiled ruleset expects: chains, sets and their element counts, the queue rule. */
export async function verifyRuleset(
  compiled: CompiledRuleset,
  target: KernelTarget = {},
): Promise<Verification> {
  const problems: string[] = [];
  const listed = (await listedHere(compiled.expect, target)) ?? (await listedByNft(target));
  if (listed === 'missing') problems.push(`table ${TABLE_FAMILY} ${TABLE_NAME} is missing`);
  else problems.push(...compareListed(compiled.expect, listed));
  if (compiled.queue !== null) {
    for (const family of FAMILIES) {
      const state = await queueState(compiled.queue, family, target);
      if (state !== null) {
        if (!state.chainOk)
          problems.push(
            `${family.name}: chain ${QUEUE_CHAIN} does not hold exactly the rule "${compiled.queue.nftRule}"`,
          );
        for (const hook of state.missingJumps)
          problems.push(`${family.name}: ${QUEUE_TABLE} ${hook} does not jump to ${QUEUE_CHAIN}`);
        continue;
      }
      const r = await run(target, family.tool, ['-t', QUEUE_TABLE, '-S', QUEUE_CHAIN]);
      const num = compiled.queue.ruleArgs[compiled.queue.ruleArgs.indexOf('--queue-num') + 1];
      if (r.code !== 0 || !new RegExp(`NFQUEUE --queue-num ${num}\\b`).test(r.stdout))
        problems.push(
          `${family.name}: chain ${QUEUE_CHAIN} with the NFQUEUE rule to queue ${num} is missing`,
        );
      for (const hook of await missingJumpsByTools(compiled.queue, family, target))
        problems.push(`${family.name}: ${QUEUE_TABLE} ${hook} does not jump to ${QUEUE_CHAIN}`);
    }
  }
  return { ok: problems.length === 0, problems };
}

/** What verifyRuleset compares: the table's chains, and its sets and maps with their element counts. */
interface Listed {
  readonly chains: ReadonlySet<string>;
  readonly sets: ReadonlyMap<string, number>;
}

/**
 * The table in this process's own namespace: its names and the expected static sets' element counts
 * from netlink dumps (wardenNames, countSetElements): milliseconds, where `nft -j list table` took
 * 1.6 s at 100,000 elements. Null where that is not possible (another namespace, no addon, a dump
 * that failed): then nft lists it all.
 */
async function listedHere(
  expect: RulesetExpectation,
  target: KernelTarget,
): Promise<Listed | 'missing' | null> {
  if (target.netns !== undefined || !nativeAvailable()) return null;
  const names = await wardenNames(target);
  if (names === null) return null;
  if (!names.exists) return 'missing';
  const all = [...names.sets, ...names.maps];
  const counted = all.filter((n) => Object.hasOwn(expect.sets, n));
  // Dumps that failed (a timeout, memory) leave the check to nft.
  const counts = await countSetElements(TABLE_NAME, counted).catch(() => null);
  if (counts === null) return null;
  const sets = new Map<string, number>(all.map((n) => [n, 0]));
  for (let i = 0; i < counted.length; i++) sets.set(counted[i]!, counts[i]!);
  return { chains: new Set(names.chains), sets };
}

/** The table as `nft -j list table` gives it, elements included. */
async function listedByNft(target: KernelTarget): Promise<Listed | 'missing'> {
  const listed = await run(target, 'nft', ['-j', 'list', 'table', TABLE_FAMILY, TABLE_NAME]);
  if (listed.code !== 0) {
    if (/No such file/.test(listed.stderr)) return 'missing';
    throw failure('nft -j list table inet warden', listed);
  }
  const items = (
    JSON.parse(listed.stdout) as { nftables: Record<string, { name?: string; elem?: unknown[] }>[] }
  ).nftables;
  const chains = new Set<string>();
  const sets = new Map<string, number>();
  for (const item of items) {
    if (item.chain?.name !== undefined) chains.add(item.chain.name);
    if (item.set?.name !== undefined) sets.set(item.set.name, item.set.elem?.length ?? 0);
    if (item.map?.name !== undefined) sets.set(item.map.name, item.map.elem?.length ?? 0);
  }
  return { chains, sets };
}

/** The differences between a listed table and the expectation, one line each. */
function compareListed(expect: RulesetExpectation, { chains, sets }: Listed): string[] {
  const problems: string[] = [];
  for (const c of expect.chains) if (!chains.has(c)) problems.push(`chain ${c} is missing`);
  for (const [name, count] of Object.entries(expect.sets)) {
    const found = sets.get(name);
    if (found === undefined) problems.push(`set ${name} is missing`);
    else if (found !== count) problems.push(`set ${name} has ${found} elements, expected ${count}`);
  }
  const dynamic = new Set(expect.dynamicSets ?? []);
  for (const name of dynamic) if (!sets.has(name)) problems.push(`set ${name} is missing`);
  for (const name of sets.keys())
    if (!Object.hasOwn(expect.sets, name) && !dynamic.has(name)) problems.push(`set ${name} is not expected`);
  return problems;
}

/** Deletes table inet warden and the iptables queue chain with its jumps; nothing else is touched. Idempotent. */
export async function removeRuleset(target: KernelTarget = {}): Promise<void> {
  closeNftSessions(target.netns);
  const del = await run(target, 'nft', ['delete', 'table', TABLE_FAMILY, TABLE_NAME]);
  if (del.code !== 0 && !/No such file/.test(del.stderr)) throw failure('nft delete table inet warden', del);
  for (const family of FAMILIES) {
    for (const hook of ['OUTPUT', 'INPUT']) {
      // A jump may have been added more than once by hand; remove every copy.
      for (let i = 0; i < 16; i++) {
        const r = await run(target, family.tool, ['-t', QUEUE_TABLE, '-D', hook, '-j', QUEUE_CHAIN]);
        if (r.code !== 0) break;
      }
    }
    const exists = await run(target, family.tool, ['-t', QUEUE_TABLE, '-S', QUEUE_CHAIN]);
    if (exists.code !== 0) continue;
    for (const op of ['-F', '-X']) {
      const r = await run(target, family.tool, ['-t', QUEUE_TABLE, op, QUEUE_CHAIN]);
      if (r.code !== 0) throw failure(`${family.tool} -t ${QUEUE_TABLE} ${op} ${QUEUE_CHAIN}`, r);
    }
    await dropEmptyQueueTable(target, family);
  }
}

/**
 * iptables-nft made the security table (with its base chains) for the queue rule. When nothing else
 * is in it (no rule, no chain of anyone else, every policy ACCEPT) it does nothing, and it goes too;
 * a table somebody else uses stays as it is.
 */
async function dropEmptyQueueTable(target: KernelTarget, family: Family): Promise<void> {
  const listed = await run(target, family.tool, ['-t', QUEUE_TABLE, '-S']);
  if (listed.code !== 0) return;
  const lines = listed.stdout.split('\n').filter((l) => l.trim() !== '');
  if (!lines.every((l) => /^-P [A-Z]+ ACCEPT$/.test(l))) return;
  const del = await run(target, 'nft', ['delete', 'table', family.nft, QUEUE_TABLE]);
  if (del.code !== 0 && !/No such file/.test(del.stderr))
    throw failure(`nft delete table ${family.nft} ${QUEUE_TABLE} (empty)`, del);
}

const NATIVE_QUEUE_PROBE = [
  'table inet warden_probe {',
  '\tchain c {',
  '\t\ttype filter hook output priority 0; policy accept;',
  '\t\tqueue num 0 bypass',
  '\t}',
  '}',
  '',
].join('\n');

const XT_QUEUE_PROBE = [
  `*${QUEUE_TABLE}`,
  ':WARDEN-PROBE - [0:0]',
  '-A WARDEN-PROBE -m mark --mark 0x1/0x1 -j NFQUEUE --queue-num 0 --queue-bypass',
  'COMMIT',
  '',
].join('\n');

/** What the kernel supports, probed without changing anything (nft -c, iptables-nft-restore --test). */
export async function detectKernelFeatures(
  target: KernelTarget = {},
): Promise<KernelFeatures & { readonly xtQueue: boolean }> {
  const native = await run(target, 'nft', ['-c', '-f', '-'], NATIVE_QUEUE_PROBE);
  if (native.code !== 0 && /Operation not permitted/.test(native.stderr)) throw failure('nft -c', native);
  let xtQueue = false;
  try {
    xtQueue = (await run(target, 'iptables-nft-restore', ['--test', '--noflush'], XT_QUEUE_PROBE)).code === 0;
  } catch (error) {
    if (!(error instanceof WardenError && error.code === ErrorCode.KERNEL_TOOL_MISSING)) throw error;
  }
  return { nativeQueue: native.code === 0, xtQueue };
}

/** Packets counted per element of one of our dynamic counter sets (key as nft prints it); empty when the set is gone. */
export async function readSetCounters(name: string, target: KernelTarget = {}): Promise<Map<string, number>> {
  const listed = await run(target, 'nft', ['-j', 'list', 'set', TABLE_FAMILY, TABLE_NAME, name]);
  const out = new Map<string, number>();
  if (listed.code !== 0) {
    if (/No such file/.test(listed.stderr)) return out;
    throw failure(`nft -j list set ${TABLE_FAMILY} ${TABLE_NAME} ${name}`, listed);
  }
  type Elem = { elem?: { val?: unknown; counter?: { packets?: number } } };
  const items = (JSON.parse(listed.stdout) as { nftables: { set?: { elem?: Elem[] } }[] }).nftables;
  for (const item of items)
    for (const e of item.set?.elem ?? []) {
      const packets = e.elem?.counter?.packets;
      if (e.elem?.val !== undefined && typeof packets === 'number') out.set(String(e.elem.val), packets);
    }
  return out;
}

/**
 * Removes the verdict cache's liveness element (ruleset-guards.ts LIVE_SET; src/engine/cache-live.ts
 * renews it): through the namespace's session, or `nft -f` when the session failed. True when the
 * kernel took it.
 */
export async function removeLive(target: KernelTarget = {}): Promise<boolean> {
  const text = `flush set ${TABLE_FAMILY} ${TABLE_NAME} ${LIVE_SET}\n`;
  if ((await runInSession(target.netns, text))?.ok === true) return true;
  return (await load(target, text)).code === 0;
}
export { closeNftSessions } from './nft-session.js';

/**
 * Packets each kernel-decided rule of `compiled` counted (by ruleIdentity; a rule absent counted
 * nothing): the counter objects of inline rules and the per-element counters of the counted sets
 * (TableModel.countedSets), by netlink dumps in this process's namespace off the event loop
 * (nft-dumps.ts dumpRuleCounters), each element mapped back to its rule by its key
 * (ruleset-counters.ts); listing them with nft costs ~0.4 s at 10,000 rules (it fetches the whole
 * table first). Empty when there is no table.
 */
export async function readRuleCounters(
  compiled: Pick<CompiledRuleset, 'counters' | 'countedElements' | 'model'>,
): Promise<Map<string, number>> {
  const sets = compiled.model.countedSets;
  return mapRuleCounters(await dumpRuleCounters(TABLE_NAME, sets), sets, compiled);
}
