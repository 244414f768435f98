/**
 * Reads what `nft list table` prints (text, as the namespace's nft session or `nft -t list table`
 * gives it) into what applyRuleset and verifyRuleset need to know: the table's objects, and whether
 * the queue chain and its jumps are as the compiled queue rules say. Pure: no kernel, no process.
 *
 * A listing this module does not recognise gives null, never a guess: the caller then asks the tools
 * themselves (`iptables-nft -C`), which is slower and exact.
 */
import type { QueueRules } from './ruleset.js';

/** What one table holds, by kind and name, and each chain's rules as listed (counters left in). */
export interface TableListing {
  /** False when nft said the table does not exist. */
  readonly exists: boolean;
  readonly chains: ReadonlyMap<string, ChainListing>;
  readonly sets: readonly string[];
  readonly maps: readonly string[];
  readonly counters: readonly string[];
}

export interface ChainListing {
  /** The `type filter hook output priority 150; policy accept;` line of a base chain, or null. */
  readonly hook: string | null;
  readonly rules: readonly string[];
}

const MISSING = /^Error: No such file or directory/m;
const TABLE_OPEN = /^table (\S+) (\S+) \{$/;
const OBJECT_OPEN =
  /^\t(chain|set|map|counter|quota|limit|ct helper|ct timeout|ct expectation|secmark|synproxy|flowtable) (\S+) \{$/;

/**
 * The table in `text`, the output of `list table FAMILY NAME` (warnings nft prints about tables
 * another tool manages are skipped). Null when the text is neither a listing of one table nor nft's
 * "No such file or directory" for it.
 */
export function parseTableListing(text: string): TableListing | null {
  const lines = text.split('\n').filter((l) => l !== '' && !l.startsWith('# Warning:'));
  if (lines.length === 0) return null;
  if (MISSING.test(text)) return { exists: false, chains: new Map(), sets: [], maps: [], counters: [] };
  if (!TABLE_OPEN.test(lines[0]!) || lines[lines.length - 1] !== '}') return null;
  const chains = new Map<string, ChainListing>();
  const named: Record<'set' | 'map' | 'counter', string[]> = { set: [], map: [], counter: [] };
  let open: { kind: string; name: string; hook: string | null; rules: string[] } | null = null;
  for (const line of lines.slice(1, -1)) {
    if (open === null) {
      const m = OBJECT_OPEN.exec(line);
      if (m === null) return null;
      open = { kind: m[1]!, name: m[2]!, hook: null, rules: [] };
    } else if (line === '\t}') {
      if (open.kind === 'chain') chains.set(open.name, { hook: open.hook, rules: open.rules });
      else if (open.kind === 'set' || open.kind === 'map' || open.kind === 'counter')
        named[open.kind].push(open.name);
      open = null;
    } else if (open.kind === 'chain') {
      if (!line.startsWith('\t\t')) return null;
      const body = line.slice(2);
      // A rule too long for one line goes on, indented deeper: it is part of the rule before.
      if (body.startsWith('\t') && open.rules.length > 0)
        open.rules.push(`${open.rules.pop()!} ${body.trim()}`);
      else if (body.startsWith('type ') && open.rules.length === 0 && open.hook === null) open.hook = body;
      else open.rules.push(body);
    }
  }
  if (open !== null) return null;
  return { exists: true, chains, sets: named.set, maps: named.map, counters: named.counter };
}

/** A rule as listed without its anonymous counter (`counter packets N bytes M `), which iptables-nft adds to each. */
function withoutCounter(rule: string): string {
  return rule.replace(/(^| )counter packets \d+ bytes \d+(?= |$)/, '').trim();
}

/** How the queue chain of one family stands against the compiled queue rules. */
export interface QueueState {
  /** The queue chain holds exactly the one queue rule. */
  readonly chainOk: boolean;
  /** The hooks (base chains) that do not jump to the queue chain. */
  readonly missingJumps: readonly QueueRules['hooks'][number][];
}

/**
 * The queue chain and its jumps as `listing` (of `list table ip|ip6 security`) shows them. Null
 * when the listing is not recognised, or shows something about the queue chain this reading does not
 * cover (a jump with other matches, a hook chain of another shape): then the tools are asked.
 */
export function queueStateOf(listing: TableListing | null, queue: QueueRules): QueueState | null {
  if (listing === null) return null;
  if (!listing.exists) return { chainOk: false, missingJumps: [...queue.hooks] };
  const chain = listing.chains.get(queue.chain);
  const chainOk =
    chain !== undefined && chain.rules.length === 1 && withoutCounter(chain.rules[0]!) === queue.nftRule;
  const jump = `jump ${queue.chain}`;
  const missingJumps: QueueRules['hooks'][number][] = [];
  for (const hook of queue.hooks) {
    const base = listing.chains.get(hook);
    if (base === undefined) {
      missingJumps.push(hook);
      continue;
    }
    if (base.hook === null || !base.hook.startsWith(`type filter hook ${hook.toLowerCase()} `)) return null;
    const mentions = base.rules.filter((r) => r.includes(queue.chain));
    if (mentions.some((r) => withoutCounter(r) !== jump)) return null;
    if (mentions.length === 0) missingJumps.push(hook);
  }
  return { chainOk, missingJumps };
}
