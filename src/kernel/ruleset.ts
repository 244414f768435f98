/**
 * The nftables ruleset compiler: a compiled policy in, the text of one atomic
 * `nft -f` transaction (Warden's own table `inet warden`) and the iptables
 * NFQUEUE rule out. Rules the kernel can decide alone become set lookups with
 * a verdict; rules that need the engine (an application, a user name, a host
 * name, `ask`) mark the packet MARK_QUEUE so userspace decides. Design and
 * reasons: docs/kernel.md, section "Ruleset". Pure: no I/O, no clock.
 */
import type { CompiledPolicy, CompiledRule } from '../policy/compile.js';
import { type DefaultAction, ruleIdentity } from '../policy/rule.js';
import type { Settings } from '../settings/schema.js';
import { MARK_MASK, MARK_QUEUE, MARK_REJECT, markHex } from './marks.js';
import { DECIDED_FIRST_RULE, establishedRules, guards, ownerRules } from './ruleset-guards.js';
import {
  type ChainModel,
  concatExpression,
  type Element,
  elementsOf,
  type Field,
  formatElement,
  hash,
  inlineMatch,
  type Layer,
  NFT_NAME,
  ruleCounterName,
  type SetModel,
  ShapeLayers,
  setType,
} from './ruleset-sets.js';

export const TABLE_FAMILY = 'inet';
export const TABLE_NAME = 'warden';
/** Our base chains run before the usual filter chains (priority 0), so Warden's drops come first. */
export const FILTER_PRIORITY = 'filter - 5';
/** After iptables-nft's security table (priority 150), where the NFQUEUE rule runs. */
export const REJECT_PRIORITY = 200;
/** The iptables chain holding the one NFQUEUE rule per family. */
export const QUEUE_TABLE = 'security';
export const QUEUE_CHAIN = 'WARDEN-QUEUE';

/** What the kernel offers (detectKernelFeatures); without native `queue`, the mark + xt NFQUEUE path is used. */
export interface KernelFeatures {
  readonly nativeQueue: boolean;
}

export interface RulesetInput {
  readonly policy: CompiledPolicy;
  readonly settings: Settings;
  /** Milliseconds since the epoch: rules with expiresAt <= now are left out. */
  readonly now: number;
  readonly features?: KernelFeatures;
  /** The engine's executable; defaults to the application of the internal rule `internal.remote-configuration`. */
  readonly engineExecutable?: string;
  /** The engine's verdict cache is in use: a new TCP connection marked MARK_DECIDED is accepted instead of queued. */
  readonly verdictCache?: boolean;
}

/** The NFQUEUE rule for iptables-nft-restore / ip6tables-nft-restore --noflush (jumps are added by applyRuleset when missing). */
export interface QueueRules {
  readonly table: typeof QUEUE_TABLE;
  readonly chain: typeof QUEUE_CHAIN;
  /** Base chains of the table that jump to `chain`. */
  readonly hooks: readonly ('OUTPUT' | 'INPUT')[];
  /** The rule's arguments after `-A WARDEN-QUEUE` (the same for both families). */
  readonly ruleArgs: readonly string[];
  /** The same rule as `nft list` prints it, without its counter (nft-listing.ts compares the two). */
  readonly nftRule: string;
  /** Restore text: declares (and so flushes) the chain and appends the rule; touches nothing else. */
  readonly v4: string;
  readonly v6: string;
}

/** What verifyRuleset expects to find in the kernel. */
export interface RulesetExpectation {
  readonly chains: readonly string[];
  /** Set name → number of elements. */
  readonly sets: Readonly<Record<string, number>>;
  /** Sets filled by traffic (flood buckets, UDP flow owners): they must exist, their size is not checked. */
  readonly dynamicSets?: readonly string[];
}

export interface RulesetStats {
  /** nft rules in our chains (not counting set elements). */
  readonly nftRules: number;
  readonly sets: number;
  readonly elements: number;
  /** Active, unexpired policy rules decided in the kernel / sent to userspace, per chain they appear in. */
  readonly kernelRules: number;
  readonly queuedRules: number;
  /** Inactive or expired rules left out. */
  readonly skippedRules: number;
}

/**
 * The table as data, for applyRuleset to compute what changed between two rulesets. Static set names
 * are derived from what the set stands for (chain, the run's first rule, verdict, shape, layer), so a
 * one-rule change leaves the other sets' names and elements as they were.
 */
export interface TableModel {
  /** Sets the policy fills, with their elements. */
  readonly sets: readonly SetModel[];
  /** Sets traffic fills (flood buckets and counters, UDP flow owners): never emptied by a change. */
  readonly dynamicSets: readonly SetModel[];
  /** Every chain, in the order they are declared. */
  readonly chains: readonly ChainModel[];
  /** Named counter objects of rules the kernel decides inline (ruleCounterName): they count its matches. */
  readonly counters: readonly string[];
  /** Sets with a counter per element (the engine maps each element to its rule by its key). */
  readonly countedSets: readonly string[];
}

export interface CompiledRuleset {
  /** `nft -f -` input: replaces table inet warden in one transaction. */
  readonly nft: string;
  readonly model: TableModel;
  /** Null when the kernel has native `queue` (the nft text queues by itself). */
  readonly queue: QueueRules | null;
  /** Earliest future expiry (ms): compile again then. */
  readonly nextChange?: number;
  readonly expect: RulesetExpectation;
  readonly stats: RulesetStats;
  /** Named counter object → the rule it counts (ruleIdentity): kernel-decided rules written inline. */
  readonly counters: Readonly<Record<string, string>>;
  /** Each counted set's fields and elements, by set name: how an element's counter finds its rule. */
  readonly countedElements: ReadonlyMap<string, CountedSet>;
}

/** A set with a counter per element, as ruleset-counters.ts maps a dumped element back to its rule. */
export interface CountedSet {
  readonly fields: readonly Field[];
  readonly interval: boolean;
  readonly elements: readonly Element[];
}

type Chain = 'output' | 'input';
type Verdict = 'accept' | 'drop' | 'reject' | 'queue';
/** A verdict with its log: what a run of rules does. `word` is the verdict in the NFLOG prefix. */
interface Outcome {
  readonly verdict: Verdict;
  readonly log: boolean;
  readonly word: 'allow' | 'deny' | 'reject';
}

interface Run {
  /** The identity of the run's first rule (its id or name): part of its sets' names. */
  readonly id: string;
  readonly outcome: Outcome;
  readonly first: number;
  last: number;
  /** Per shape (and interface, for rules that name interfaces): its fields, elements and interface. */
  readonly shapes: Map<
    string,
    { fields: Field[]; proto: string | null; layers: ShapeLayers; iface: string | null }
  >;
}

const QUEUE: Outcome = { verdict: 'queue', log: false, word: 'allow' };
const NO_INTERFACE: readonly null[] = [null];

/** Compiles the policy into Warden's nft table and queue rule. Never throws on a valid compiled policy. */
export function compileRuleset(input: RulesetInput): CompiledRuleset {
  const { policy, settings, now } = input;
  const mode = policy.mode;
  const engine =
    input.engineExecutable ??
    policy.rules.find((r) => 'id' in r.rule && r.rule.id === 'internal.remote-configuration')?.application ??
    null;
  const runs: Record<Chain, Run[]> = { output: [], input: [] };
  let nextChange: number | undefined;
  let kernelRules = 0;
  let queuedRules = 0;
  let skippedRules = 0;

  for (const r of policy.rules) {
    if (!r.active || (r.expires && r.expiresAt <= now)) {
      skippedRules++;
      continue;
    }
    if (r.expires && (nextChange === undefined || r.expiresAt < nextChange)) nextChange = r.expiresAt;
    for (const chain of ['output', 'input'] as const) {
      if (chain === 'output' ? !r.outgoing : !r.incoming) continue;
      const userspace = needsUserspace(r, chain, engine);
      if (userspace) queuedRules++;
      else kernelRules++;
      const outcome = userspace ? QUEUE : kernelOutcome(r.rule.action, r.rule.log, mode);
      const run = runFor(runs[chain], outcome, r);
      // The kernel counts the matches of the rules it decides; the engine those of the queued ones.
      const counted = userspace ? undefined : ruleIdentity(r.rule);
      // Host names cannot be seen by the kernel: a queued rule with names is queued for every remote.
      const remote = userspace && hasNames(r) ? null : r.remote;
      for (const group of elementsOf(r, chain, remote, counted)) {
        // A rule naming interfaces gets its elements under each interface: one match per interface
        // (oifname/iifname; `wg*` is nft's own prefix match), sets named apart by the interface.
        for (const iface of r.rule.interface ?? NO_INTERFACE) {
          const key = iface === null ? group.shape : `${group.shape}|if ${iface}`;
          let shape = run.shapes.get(key);
          if (shape === undefined) {
            shape = { fields: group.fields, proto: group.proto, layers: new ShapeLayers(), iface };
            run.shapes.set(key, shape);
          }
          shape.layers.addDisjoint(group.elements);
        }
      }
    }
  }

  const text = new Emitter(settings, input.features?.nativeQueue === true);
  // A connection the cache decided leaves the output chain before the policy's lookups (decidedFirst).
  const early = input.verdictCache === true && decidedFirst(runs.output);
  const guard = guards(settings, text.queueStatement(), input.verdictCache === true, early);
  const chains = [
    text.baseChain(
      'output',
      runs.output,
      defaultOutcome(policy.defaults.outgoing, mode),
      early ? [DECIDED_FIRST_RULE] : [],
    ),
    text.baseChain('input', runs.input, defaultOutcome(policy.defaults.incoming, mode)),
    ...guard.chains,
    text.rejectChain('output'),
    text.rejectChain('input'),
  ];
  const model: TableModel = {
    sets: text.sets,
    dynamicSets: guard.sets,
    chains,
    counters: text.counters,
    countedSets: text.countedSets,
  };
  const elements = Object.values(text.setSizes).reduce((a, b) => a + b, 0);
  return {
    nft: renderTable(model),
    model,
    queue: input.features?.nativeQueue === true ? null : queueRules(settings),
    ...(nextChange === undefined ? {} : { nextChange }),
    expect: {
      chains: ['output', 'input', ...guard.chainNames, 'reject_output', 'reject_input'],
      sets: text.setSizes,
      dynamicSets: guard.dynamicSets,
    },
    stats: {
      nftRules: chains.reduce((n, c) => n + c.rules.length, 0),
      sets: Object.keys(text.setSizes).length,
      elements,
      kernelRules,
      queuedRules,
      skippedRules,
    },
    counters: text.counterRules,
    countedElements: text.countedElements,
  };
}

/** Whether DECIDED_RULE may open the output chain's policy part: no kernel-decided rule names a uid (ruleset-guards.ts). */
function decidedFirst(runs: readonly Run[]): boolean {
  return !runs.some(
    (run) =>
      run.outcome.verdict !== 'queue' && [...run.shapes.values()].some((s) => s.fields.includes('uid')),
  );
}

/** True when the kernel cannot decide the rule alone in this chain. */
function needsUserspace(r: CompiledRule, chain: Chain, engine: string | null): boolean {
  if (r.rule.action === 'ask') return true;
  if (r.application !== null && !isEngineAdminRule(r, engine)) return true;
  if (r.userName !== null) return true;
  if (r.uid !== null && chain === 'input') return true;
  if (r.parent !== null || r.ancestor !== null || r.argumentsGlob !== null) return true; // program context
  return hasNames(r);
}

/** Internal rules of the engine on its own (local) application port: decided in the kernel without the application. */
function isEngineAdminRule(r: CompiledRule, engine: string | null): boolean {
  return r.source === 'internal' && r.localPorts !== null && engine !== null && r.application === engine;
}

function hasNames(r: CompiledRule): boolean {
  return (
    r.remote !== null &&
    (r.remote.hosts.size > 0 || r.remote.suffixes.length > 0 || r.remote.domainLists.length > 0)
  );
}

/** What the kernel does for a rule it decides: monitor never blocks (it logs the would-be block and accepts). */
function kernelOutcome(action: string, log: boolean, mode: string): Outcome {
  if (action === 'allow') return { verdict: 'accept', log, word: 'allow' };
  if (mode === 'monitor') return { verdict: 'accept', log: true, word: 'allow' };
  return action === 'reject'
    ? { verdict: 'reject', log: true, word: 'reject' }
    : { verdict: 'drop', log: true, word: 'deny' };
}

/** A default goes to userspace when it is logged, asks, or (learning) must propose a rule; else the kernel decides. */
function defaultOutcome(d: DefaultAction, mode: string): Outcome {
  if (d.log || d.action === 'ask' || (mode === 'learning' && d.action !== 'allow')) return QUEUE;
  return kernelOutcome(d.action, false, mode);
}

function sameOutcome(a: Outcome, b: Outcome): boolean {
  return a.verdict === b.verdict && a.log === b.log && a.word === b.word;
}

function runFor(runs: Run[], outcome: Outcome, r: CompiledRule): Run {
  const last = runs[runs.length - 1];
  if (last !== undefined && sameOutcome(last.outcome, outcome)) {
    last.last = r.index;
    return last;
  }
  const id = 'id' in r.rule ? `internal ${r.rule.id}` : `user ${r.rule.name}`;
  const run: Run = { id, outcome, first: r.index, last: r.index, shapes: new Map() };
  runs.push(run);
  return run;
}

/** The iptables NFQUEUE rule: new connections carrying MARK_QUEUE go to the engine's queue. */
export function queueRules(settings: Settings): QueueRules {
  const { queue, onEngineFailure } = settings.enforcement;
  // No conntrack state test: only Warden's chains set MARK_QUEUE, on new connections and on
  // established UDP packets of a uid that does not own the flow (ruleset-guards.ts).
  const ruleArgs = [
    '-m',
    'mark',
    '--mark',
    `${markHex(MARK_QUEUE)}/${markHex(MARK_MASK)}`,
    '-j',
    'NFQUEUE',
    '--queue-num',
    String(queue),
    ...(onEngineFailure === 'open' ? ['--queue-bypass'] : []),
  ];
  const restore = [
    `*${QUEUE_TABLE}`,
    `:${QUEUE_CHAIN} - [0:0]`,
    `-A ${QUEUE_CHAIN} ${ruleArgs.join(' ')}`,
    'COMMIT',
    '',
  ].join('\n');
  return {
    table: QUEUE_TABLE,
    chain: QUEUE_CHAIN,
    hooks: ['OUTPUT', 'INPUT'],
    ruleArgs,
    nftRule: `meta mark & ${markHex(MARK_MASK)} == ${markHex(MARK_QUEUE)} queue num ${queue}${onEngineFailure === 'open' ? ' bypass' : ''}`,
    v4: restore,
    v6: restore,
  };
}

/** The nft text of a table model: replaces table inet warden as a whole in one transaction. */
export function renderTable(model: TableModel): string {
  const set = (s: SetModel) =>
    [
      `\tset ${s.name} {`,
      ...s.declaration.map((l) => `\t\t${l}`),
      ...(s.elements.length > 0 ? [`\t\telements = { ${s.elements.join(',\n\t\t\t')} }`] : []),
      '\t}',
    ].join('\n');
  const chain = (c: ChainModel) =>
    [
      `\tchain ${c.name} {`,
      ...(c.hook === null ? [] : [`\t\t${c.hook}`]),
      ...c.rules.map((r) => `\t\t${r}`),
      '\t}',
    ].join('\n');
  return [
    `# Warden's ruleset: generated; replaces the table as a whole, or applyRuleset updates it in place. See docs/kernel.md.`,
    `table ${TABLE_FAMILY} ${TABLE_NAME} {}`,
    `delete table ${TABLE_FAMILY} ${TABLE_NAME}`,
    `table ${TABLE_FAMILY} ${TABLE_NAME} {`,
    ...model.counters.map((c) => `\tcounter ${c} {\n\t}`),
    ...model.sets.map(set),
    ...model.dynamicSets.map(set),
    ...model.chains.map(chain),
    '}',
    '',
  ].join('\n');
}

/** `oifname "eth0"` (outgoing: the interface it leaves by) or `iifname "wg*"` (incoming: it came in by). */
function interfaceMatch(chain: Chain, iface: string): string {
  // The schema admits only these characters (src/policy/schema.ts); checked again: this is nft text.
  if (!/^[A-Za-z0-9_.@+-]{1,15}\*?$/.test(iface)) throw new Error(`internal: illegal interface ${iface}`);
  return `${chain === 'output' ? 'oifname' : 'iifname'} "${iface}"`;
}

const CLEAR_MARK = `meta mark set meta mark & ${markHex(~MARK_MASK >>> 0)}`;

/** Writes chains and sets; names every set itself (never from user text) and counts what it wrote. */
class Emitter {
  readonly sets: SetModel[] = [];
  readonly setSizes: Record<string, number> = {};
  readonly counters: string[] = [];
  readonly countedSets: string[] = [];
  readonly countedElements = new Map<string, CountedSet>();
  /** Counter object → the rule it counts. */
  readonly counterRules: Record<string, string> = {};

  constructor(
    private readonly settings: Settings,
    private readonly nativeQueue: boolean,
  ) {}

  /** `early`: rules right after the first established test (DECIDED_FIRST_RULE). */
  baseChain(chain: Chain, runs: Run[], fallback: Outcome, early: readonly string[] = []): ChainModel {
    // Loopback was judged on output; clearing our bits first keeps a packet queued there (new, or
    // established UDP of a uid that does not own the flow) from being queued a second time here.
    const [first, ...established] = establishedRules(chain);
    const rules = [
      ...(chain === 'input' ? [`iif "lo" ${CLEAR_MARK}`] : []),
      first!,
      ...early,
      ...established,
      'ct state invalid drop',
      ...(chain === 'input' ? ['iif "lo" accept'] : []),
    ];
    for (const run of runs) {
      // The run is named by what it stands for (its first rule and outcome), not by its positions:
      // a rule added or removed before it leaves its rules as they were, so a change stays small.
      const { verdict, log, word } = run.outcome;
      const id = `${chain}|${run.id}|${verdict} ${log} ${word}`;
      const statement = this.statement(chain, run.outcome, hash(id).slice(0, 8));
      const counted = verdict !== 'queue';
      for (const [shape, { fields, proto, layers, iface }] of run.shapes) {
        const onInterface = iface === null ? '' : `${interfaceMatch(chain, iface)} `;
        // A shape of one protocol tests it in the rule, not in its sets' keys (ElementGroup.proto).
        const onProtocol = proto === null ? '' : `meta l4proto ${proto} `;
        const via = onInterface + onProtocol;
        layers.elements().forEach((layer, i) => {
          const key = `${id}|${shape}|${layer.interval ? `r${i}` : 'p'}`;
          const match = counted
            ? this.countedMatch(chain, fields, layer, key)
            : this.match(chain, fields, layer.elements, layer.interval, key);
          rules.push(`${via}${match}${statement}`);
        });
      }
    }
    rules.push(this.statement(chain, fallback, '-1'));
    return {
      name: chain,
      hook: `type filter hook ${chain} priority ${FILTER_PRIORITY}; policy accept;`,
      rules,
    };
  }

  /** The reject chain; on output it then records the UDP flow owners (ownerRules in ruleset-guards.ts). */
  rejectChain(chain: Chain): ChainModel {
    const marked = `meta mark & ${markHex(MARK_MASK)} == ${markHex(MARK_REJECT)}`;
    // Every packet crosses it: one not refused (on output, not UDP either: owners) leaves at once.
    const rest = `meta mark & ${markHex(MARK_MASK)} != ${markHex(MARK_REJECT)}`;
    return {
      name: `reject_${chain}`,
      hook: `type filter hook ${chain} priority ${REJECT_PRIORITY}; policy accept;`,
      rules: [
        chain === 'output' ? `meta l4proto != udp ${rest} accept` : `${rest} accept`,
        `${marked} meta l4proto tcp reject with tcp reset`,
        `${marked} reject with icmpx admin-prohibited`,
        ...(chain === 'output' ? ownerRules() : []),
      ],
    };
  }

  /** `<match> ` for a layer: nothing (all packets), inline for one element, else a named set. */
  private match(chain: Chain, fields: Field[], elements: Element[], interval: boolean, key: string): string {
    if (fields.length === 0) return '';
    if (elements.length === 1) return `${inlineMatch(elements[0]!, chain)} `;
    // The name stands for the set's place in the policy, not its position in the text: a change
    // elsewhere leaves it as it was, so applyRuleset changes only the elements that differ.
    let name = `${chain === 'output' ? 'out' : 'in'}_${hash(key).slice(0, 12)}`;
    for (let n = 2; name in this.setSizes; n++) name = `${name.slice(0, 16)}_${n}`;
    if (!NFT_NAME.test(name)) throw new Error(`internal: illegal set name ${name}`);
    this.setSizes[name] = elements.length;
    this.sets.push({
      name,
      declaration: [`type ${setType(fields)}`, ...(interval ? ['flags interval'] : [])],
      elements: elements.map(formatElement),
    });
    return `${concatExpression(fields, chain)} @${name} `;
  }

  /**
   * `<match>` for a layer of a run the kernel decides, counting each rule's matches: one element is
   * inline with its rule's named counter object (`counter name "c_..."`); more are a set with a
   * counter per element (`counter` in its declaration), which the engine maps back to the rules by
   * the elements' keys (countedElements; no objects: nft fetches every counter object of the table
   * before any change, ~15 ms per change at 10,000; no comment per element: it doubled the text nft
   * parses, +25% load time at 100,000 rules). Within a run every element has the same verdict; when
   * two of its rules overlap, the element met first counts (points dedupe to the first rule; ranges
   * go to later layers than those they overlap).
   */
  private countedMatch(chain: Chain, fields: Field[], layer: Layer, key: string): string {
    const { elements, interval } = layer;
    if (elements.length === 1 || fields.length === 0) {
      const e = elements[0]!;
      const counter = this.declareCounter(e.rule!);
      return `${fields.length === 0 ? '' : `${inlineMatch(e, chain)} `}counter name "${counter}" `;
    }
    const name = this.setName(chain, key);
    this.setSizes[name] = elements.length;
    this.countedSets.push(name);
    this.countedElements.set(name, { fields, interval, elements });
    this.sets.push({
      name,
      declaration: [`type ${setType(fields)}`, ...(interval ? ['flags interval'] : []), 'counter'],
      elements: elements.map(formatElement),
    });
    return `${concatExpression(fields, chain)} @${name} `;
  }

  /** The named counter object of a rule (declared once), recorded as counting that rule. */
  private declareCounter(rule: string): string {
    const name = ruleCounterName(rule);
    if (!NFT_NAME.test(name)) throw new Error(`internal: illegal counter name ${name}`);
    if (this.counterRules[name] === undefined) {
      this.counterRules[name] = rule;
      this.counters.push(name);
    }
    return name;
  }

  private setName(chain: Chain, key: string): string {
    let name = `${chain === 'output' ? 'out' : 'in'}_${hash(key).slice(0, 12)}`;
    for (let n = 2; name in this.setSizes; n++) name = `${name.slice(0, 16)}_${n}`;
    if (!NFT_NAME.test(name)) throw new Error(`internal: illegal set name ${name}`);
    return name;
  }

  /** The verdict part of a rule; `rules` names the run (8 hex digits, `-1` for the default) in the log prefix. */
  private statement(chain: Chain, o: Outcome, rules: string): string {
    if (!/^([0-9a-f]{8}|-1)$/.test(rules)) throw new Error(`internal: bad run name ${rules}`);
    const log = o.log
      ? `log group ${this.settings.enforcement.logGroup} prefix "warden ${rules} ${o.word} " `
      : '';
    switch (o.verdict) {
      case 'accept':
        return `${log}accept`;
      case 'drop':
        return `${log}drop`;
      case 'reject':
        return `${log}meta mark set meta mark & ${markHex(~MARK_MASK >>> 0)} | ${markHex(MARK_REJECT)} accept`;
      case 'queue':
        // Through the flood limit (ruleset-guards.ts) to the engine.
        return `goto queue_${chain}`;
    }
  }

  /** What hands a packet to the engine: native `queue`, or MARK_QUEUE for the iptables NFQUEUE rule. */
  queueStatement(): string {
    const { queue, onEngineFailure } = this.settings.enforcement;
    return this.nativeQueue
      ? `queue num ${queue}${onEngineFailure === 'open' ? ' bypass' : ''}`
      : `meta mark set meta mark & ${markHex(~MARK_MASK >>> 0)} | ${markHex(MARK_QUEUE)} accept`;
  }
}
