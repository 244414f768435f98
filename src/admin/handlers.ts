/**
 * What each administration method does, given the engine's configuration
 * and logs. Every change is validated with the policy and settings schemas,
 * written through the ConfigStore and recorded as an audit log item.
 */
import { ErrorCode, WardenError } from '../errors.js';
import { firewallHints } from '../hints/index.js';
import { missingApplications, missingInterfaces, pinFindings } from '../host-programs.js';
import { formatIp, parseIp } from '../ip/index.js';
import {
  type CompiledPolicy,
  type ConnectionFacts,
  compilePolicy,
  explain,
  type InternalRule,
  internalRules,
  lint,
  type Policy,
  parsePolicyText,
  policyToPlain,
  type Rule,
  ruleIdentity,
  ruleToPlain,
  validatePolicy,
  validateRule,
} from '../policy/index.js';
import type { ListContent } from '../policy/list-format.js';
import { policyHash } from '../policy-hash.js';
import { askAnswerSchema } from '../protocol/asks.js';
import type { LogItem, LogQueryParsed } from '../protocol/log-item.js';
import type { Methods } from '../protocol/methods.js';
import { parseSettingsText, type Settings, validateSettings } from '../settings/index.js';
import { keepRedacted, redactSecrets, redactText } from '../settings/secrets.js';
import type { ChangeMeta } from './config-store.js';
import { Confirmations, lockoutRisk } from './confirm.js';
import { connectionsHandler } from './connections.js';
import type { Caller, Confirm, Handler, HandlerContext, ParamsOf } from './handler-context.js';
import { checkPosition, includedRuleHandlers, notFound } from './included-rules.js';
import { unifiedDiff } from './line-diff.js';
import { newestFirst } from './log-newest.js';
import { createPolicyHandlers } from './policy-handlers.js';
import { programHashHandler } from './program-hash.js';
import { RevertConflict } from './revert.js';
import { sourceHandlers } from './source-handlers.js';
import { Turns } from './turns.js';

export type { AskService, Caller, FileHasher, Handler, HandlerContext } from './handler-context.js';

/**
 * Largest logs.query answer, in bytes of item JSON: half the 1 MiB frame limit of the peer.
 * 10,000 connection items are about 1.7 MB, which a console would refuse (and close the
 * connection); a trimmed answer has fewer items than asked and the console asks again.
 */
export const LOGS_QUERY_MAX_BYTES = 512 * 1024;

function fitAnswer<A extends { items: LogItem[]; lastSeq: number; searchedTo?: number }>(
  answer: A,
): { items: LogItem[]; lastSeq: number; searchedTo?: number } {
  let bytes = 0;
  for (let i = 0; i < answer.items.length; i++) {
    bytes += Buffer.byteLength(JSON.stringify(answer.items[i])) + 1;
    // Always at least one item, so a caller paging by seq makes progress; searchedTo says where to go on
    // (every match up to the last item kept is in the answer), as for a search stopped at its budget.
    if (bytes > LOGS_QUERY_MAX_BYTES && i > 0)
      return {
        items: answer.items.slice(0, i),
        lastSeq: answer.lastSeq,
        searchedTo: answer.items[i - 1]!.seq,
      };
  }
  return answer;
}

/**
 * Deep-merges plain objects: keys in `patch` replace or recurse into `base`. A redacted secret sent
 * back as settings.get showed it (`***`) keeps the current secret (keepRedacted).
 */
function merge(base: unknown, patch: unknown): unknown {
  if (patch === null || typeof patch !== 'object' || Array.isArray(patch)) return keepRedacted(base, patch);
  if (base === null || typeof base !== 'object' || Array.isArray(base)) return patch;
  const out: Record<string, unknown> = { ...(base as Record<string, unknown>) };
  for (const [k, v] of Object.entries(patch)) out[k] = merge(out[k], v);
  return out;
}

/** Builds the handlers. The compiled policy is cached until the policy or settings change. */
export function createHandlers(ctx: HandlerContext) {
  let compiled: CompiledPolicy | undefined;
  // The policy and settings objects the cache was built from: a reload from disk replaces them.
  let compiledFrom: [Policy, Settings, ReadonlyMap<string, ListContent> | undefined] | undefined;
  /** The policy in force: the policy's own rules, then its subscriptions' (the same object while unchanged). */
  const inForce = () => ctx.includes?.effective(ctx.config.policy()) ?? ctx.config.policy();
  const compiledPolicy = () => {
    const lists = ctx.lists?.contents();
    if (
      compiledFrom?.[0] !== inForce() ||
      compiledFrom[1] !== ctx.config.settings() ||
      compiledFrom[2] !== lists
    )
      compiled = undefined;
    if (compiled === undefined) {
      const settings = ctx.config.settings();
      compiledFrom = [inForce(), settings, lists];
      compiled = compilePolicy(inForce(), {
        settings,
        internalRules: internalRules(settings, ctx.host, ctx.config.policy()),
        ...(lists !== undefined ? { lists } : {}),
      });
    }
    return compiled;
  };
  const audit = (caller: Caller, message: string) =>
    ctx.logs.append({ kind: 'admin', user: caller.user, source: caller.source, message });
  const confirmations = ctx.confirmations ?? new Confirmations();
  // Log searches, explains, lints and diffs take turns: pipelined calls cannot hold the event loop in a row.
  const turns = new Turns();
  const servedPort = () => ctx.servedPort?.() ?? ctx.config.settings().applicationPort;

  /** Refuses a change that could cut a remote caller off, unless it is applied with confirm. */
  const guard = (next: { policy: Policy; settings: Settings }, caller: Caller, confirm: Confirm) => {
    if (confirm !== undefined) return;
    const risk = lockoutRisk(next, caller.source, ctx.host, ctx.now());
    if (risk === null) return;
    throw new WardenError(ErrorCode.LOCKOUT_RISK, `this change could cut you off from the engine: ${risk}`, {
      suggestion:
        'Send it again with confirm: {seconds: 60} (CLI: --confirm 60): it is rolled back by itself unless ' +
        'config.confirm {version} (warden config confirm VERSION) arrives in time; or change it on the engine host.',
    });
  };
  /**
   * At the deadline of an unconfirmed change: back to the version before it when nothing came after it;
   * otherwise only its own effect is reverted and the later changes stay. When a later change touched the
   * same things, nothing is changed and a security log item says what to undo by hand.
   */
  confirmations.onExpire(
    async (c, early) => {
      const by = { user: c.user, source: c.source };
      const late =
        early === undefined
          ? `version ${c.version} was not confirmed by ${c.deadline}`
          : `version ${c.version} was undone before its deadline by ${early.user} from ${early.source}`;
      try {
        const source = early === undefined ? 'confirm timeout' : 'config.undo';
        const v = await ctx.config.undo(c.version, c.previous, { user: early?.user ?? c.user, source });
        compiled = undefined;
        if (v === undefined) audit(by, `${late}: nothing of it is left to undo`);
        else if (v.what === 'rollback')
          audit(by, `${late}: rolled back to version ${c.previous} as version ${v.version}`);
        else
          audit(
            by,
            `${late}: its effect was undone as version ${v.version}, keeping the changes made after it`,
          );
        ctx.onSettingsChanged?.(ctx.config.settings());
      } catch (e) {
        ctx.logs.append({
          kind: 'security',
          user: c.user,
          source: c.source,
          message:
            `${late}, but it was NOT undone: ${e instanceof RevertConflict ? `later changes touched the same things (${e.paths.join(', ')})` : (e as Error).message}; ` +
            `compare with warden config diff ${c.previous} ${c.version} and undo it by hand`,
        });
        if (early !== undefined) throw e;
      }
    },
    // Recorded, then the engine stopped before the change was written: there is nothing to wait for.
    (version) => ctx.config.history().some((v) => v.version === version),
  );
  /**
   * Makes a change; with confirm, its pending confirmation is on disk before any file is written (the
   * store's beforeWrite), and forgotten again when the change fails, so no crash leaves it unrecorded.
   */
  const applying = async <T>(caller: Caller, confirm: Confirm, change: (meta: ChangeMeta) => Promise<T>) => {
    // The answer comes once the change is in force in the kernel (as policy.apply's): a connection made
    // after it is decided by the new policy, not by the old one or a verdict cached under it.
    const inForce = async (result: T) => {
      await ctx.settled?.();
      return result;
    };
    if (confirm === undefined) return inForce(await change(caller));
    let reserved: number | undefined;
    const beforeWrite = async (version: number) => {
      reserved = version;
      await confirmations.add(version, version - 1, confirm.seconds, caller);
    };
    try {
      return await inForce(await change({ user: caller.user, source: caller.source, beforeWrite }));
    } catch (e) {
      if (reserved !== undefined) await confirmations.confirm(reserved); // never applied: nothing to wait for
      throw e;
    }
  };
  /** With confirm, says when `version` is undone unless it is confirmed in time. */
  const probation = async (version: number, caller: Caller, confirm: Confirm) => {
    if (confirm === undefined) return {};
    const pending = confirmations.pending().find((p) => p.version === version);
    if (pending === undefined) return {}; // confirmed or undone already
    audit(
      caller,
      `version ${version} applied with confirm: rolled back at ${pending.deadline} unless confirmed`,
    );
    return { pending };
  };

  const savePolicy = async (policy: Policy, caller: Caller, confirm?: Confirm) => {
    // Re-validate the whole policy: a rule may be fine alone and still clash (a duplicate name).
    const checked = validatePolicy(policyToPlain(policy));
    const settings = ctx.config.settings();
    guard({ policy: ctx.includes?.effective(checked) ?? checked, settings }, caller, confirm);
    const version = await applying(caller, confirm, (meta) => ctx.config.setPolicy(checked, meta));
    compiled = undefined;
    return version;
  };
  const rules = () => ctx.config.policy().rules;
  const included = includedRuleHandlers({ config: ctx.config, inForce, savePolicy, audit, probation });
  const indexOf = (name: string) => {
    const i = rules().findIndex((r) => r.name === name);
    if (i < 0) throw notFound(name);
    return i;
  };
  /** Warnings (not refusals) about a rule just stored: its application path does not exist here. */
  const appWarnings = (rule: Rule) => {
    const warnings = [...missingApplications([rule]), ...missingInterfaces([rule])].map((f) => ({
      kind: f.kind,
      message: f.message,
    }));
    return warnings.length > 0 ? { warnings } : {};
  };
  const withRules = (list: Rule[]): Policy => ({ ...ctx.config.policy(), rules: list });

  const addRule = async (
    raw: Record<string, unknown>,
    position: number | undefined,
    caller: Caller,
    confirm?: Confirm,
  ) => {
    const rule = validateRule(raw, {
      addressGroups: ctx.config.policy().addressGroups,
      lists: ctx.config.policy().lists,
    });
    if (rules().some((r) => r.name === rule.name)) {
      throw new WardenError(ErrorCode.ALREADY_EXISTS, `a rule named "${rule.name}" exists already`, {
        suggestion: 'Choose another name, or change the existing rule with `warden rules update NAME RULE`.',
      });
    }
    const list = [...rules()];
    const at = position ?? list.length;
    checkPosition(at, list.length, 'add', `--position ${list.length + 1} RULE`);
    list.splice(at, 0, rule);
    const version = await savePolicy(withRules(list), caller, confirm);
    audit(caller, `rule "${rule.name}" added at position ${at + 1}`);
    return {
      rule: ruleToPlain(rule),
      position: at,
      ...appWarnings(rule),
      ...(await probation(version, caller, confirm)),
    };
  };

  /** policy.explain: which rule decides the connection `c` describes, and why each earlier one did not. */
  const explainConnection = (c: ParamsOf<typeof Methods.explain>, applicationSha256?: string | null) => {
    const remote = c.remoteAddress === undefined ? null : parseIp(c.remoteAddress);
    if (c.remoteAddress !== undefined && remote === null) {
      throw new WardenError(
        ErrorCode.PARAMS_INVALID,
        `remoteAddress "${c.remoteAddress}" is not an IP address`,
      );
    }
    const facts: ConnectionFacts = {
      direction: c.direction,
      protocol: c.protocol,
      application: c.application ?? null,
      ...(applicationSha256 !== undefined ? { applicationSha256 } : {}),
      uid: c.uid ?? null,
      user: c.user ?? null,
      localAddress: null,
      localPort: c.localPort ?? null,
      remoteAddress: remote,
      remotePort: c.remotePort ?? null,
      remoteHosts: c.hosts.map((h) => h.toLowerCase()),
      ...(c.interface === undefined ? {} : { interface: c.interface }),
      now: c.at === undefined ? ctx.now() : Date.parse(c.at),
      parent: c.parent ?? null,
      ancestors: c.ancestors ?? (c.parent === undefined ? [] : [c.parent]),
      arguments: c.arguments ?? null,
    };
    const cp = compiledPolicy();
    const e = explain(cp, facts);
    const d = e.decision;
    return {
      connection: { ...c, remoteAddress: remote === null ? null : formatIp(remote) },
      decision: { ...d, ...(d.proposal ? { proposal: ruleToPlain(d.proposal) } : {}) },
      decidingRule: d.ruleIndex >= 0 ? ruleToPlain(cp.rules[d.ruleIndex]!.rule) : null,
      internal: e.internal ?? null,
      skipped: e.skipped,
    };
  };

  const handlers: { [K in keyof typeof Methods]?: Handler<(typeof Methods)[K]> } = {
    status: () => {
      const settings = ctx.config.settings();
      const cp = compiledPolicy();
      const version = ctx.config.history()[0]?.version ?? 1;
      return {
        attribution: 'none',
        decisionsPerMinute: 0,
        problems: [],
        ...ctx.status(),
        policyVersion: version,
        policyHash: policyHash(ctx.config.policy()),
        rulesHash: policyHash(inForce()),
        applicationPort: servedPort(),
        remoteAdministration: settings.remoteAdministration.enabled,
        mode: cp.mode,
        rules: cp.rules.length - cp.internalCount,
        internalRules: cp.internalCount,
        lastLogSeq: ctx.logs.lastSeq,
      };
    },
    settingsGet: () => ({ settings: redactSecrets(ctx.config.settings()) as Record<string, unknown> }),
    settingsSet: async ({ settings: patch, confirm }, caller) => {
      const next = validateSettings(merge(structuredClone(ctx.config.settings()), patch));
      guard({ policy: ctx.config.policy(), settings: next }, caller, confirm);
      const version = await applying(caller, confirm, (meta) => ctx.config.setSettings(next, meta));
      compiled = undefined;
      audit(caller, `settings changed: ${redactText(JSON.stringify(patch))}`);
      const pending = await probation(version, caller, confirm);
      ctx.onSettingsChanged?.(next);
      return { settings: redactSecrets(next) as Record<string, unknown>, ...pending };
    },
    rulesList: async ({ internal }) => {
      const counts = (await ctx.ruleCounts?.()) ?? new Map();
      // Matches and the last match (ISO 8601, null: never) of each rule, by its identity (name or id).
      const counted = (r: Rule | InternalRule) => {
        const c = counts.get(ruleIdentity(r));
        return {
          matches: c?.matches ?? 0,
          lastMatch: c?.lastMatch == null ? null : new Date(c.lastMatch).toISOString(),
        };
      };
      const list = inForce().rules.map((r) => ({
        ...ruleToPlain(r),
        ...counted(r),
        ...included.mark(r.name),
      }));
      if (!internal) return { rules: list };
      const hidden = internalRules(ctx.config.settings(), ctx.host, ctx.config.policy()).map((r) => ({
        id: r.id,
        purpose: r.purpose,
        because: r.because,
        readOnly: true,
        ...ruleToPlain(r),
        ...counted(r),
      }));
      return { rules: list, internal: hidden };
    },
    rulesGet: ({ name }) => included.get(name),
    rulesAdd: async ({ rule: raw, position, confirm }, caller) => addRule(raw, position, caller, confirm),
    asksList: () => ({ prompts: ctx.asks?.list() ?? [] }),
    asksAnswer: async (params, caller) => {
      const answer = askAnswerSchema.parse(params);
      if (!ctx.asks) {
        throw new WardenError(
          ErrorCode.NOT_FOUND,
          `no prompt has id ${answer.id}: this engine holds no connections`,
        );
      }
      const sink = {
        names: () => new Set(rules().map((r) => r.name)),
        add: async (rule: Rule, who: Caller) =>
          (await addRule(ruleToPlain(rule), 0, who)).rule.name as string,
      };
      const resolution = await ctx.asks.answer(answer, caller, sink);
      audit(
        caller,
        `answered ask prompt ${answer.id}: ${answer.verdict} ${answer.duration}` +
          (resolution.rule !== undefined ? `, rule "${resolution.rule}" added` : ''),
      );
      return resolution;
    },
    rulesUpdate: async ({ name, rule: raw, confirm }, caller) => {
      if (included.mark(name).subscription) return included.toggle(name, raw, caller, confirm);
      const i = indexOf(name);
      const rule = validateRule(raw, {
        addressGroups: ctx.config.policy().addressGroups,
        lists: ctx.config.policy().lists,
      });
      if (rule.name !== name && rules().some((r) => r.name === rule.name)) {
        throw new WardenError(ErrorCode.ALREADY_EXISTS, `a rule named "${rule.name}" exists already`);
      }
      const list = [...rules()];
      list[i] = rule;
      const version = await savePolicy(withRules(list), caller, confirm);
      audit(caller, `rule "${name}" updated${rule.name === name ? '' : ` and renamed "${rule.name}"`}`);
      return {
        rule: ruleToPlain(rule),
        position: i,
        ...appWarnings(rule),
        ...(await probation(version, caller, confirm)),
      };
    },
    rulesRemove: async ({ name, confirm }, caller) => {
      included.refuse(name, 'removed');
      const i = indexOf(name);
      const list = [...rules()];
      list.splice(i, 1);
      const version = await savePolicy(withRules(list), caller, confirm);
      audit(caller, `rule "${name}" removed`);
      return probation(version, caller, confirm);
    },
    rulesMove: async ({ name, position, confirm }, caller) => {
      included.refuse(name, 'moved');
      const i = indexOf(name);
      const list = [...rules()];
      checkPosition(position, list.length - 1, 'move', `${name} ${list.length}`);
      const [rule] = list.splice(i, 1);
      const at = position;
      list.splice(at, 0, rule!);
      const version = await savePolicy(withRules(list), caller, confirm);
      audit(caller, `rule "${name}" moved from position ${i + 1} to ${at + 1}`);
      return { position: at, ...(await probation(version, caller, confirm)) };
    },
    explain: async (c) => {
      // A rule pinning the application: explain judges the file now at that path on this host.
      const app = c.application;
      const pinned =
        app !== undefined && compiledPolicy().rules.some((r) => r.sha256 !== null && r.application === app);
      const sha = pinned
        ? await ctx.hasher?.ofPath(app).then(
            (h) => h.sha256,
            () => null,
          )
        : undefined;
      return turns.run(() => explainConnection(c, sha));
    },
    lint: async () => {
      const pins = await pinFindings(rules(), ctx.hasher, compiledPolicy().internalCount);
      return turns.run(() => {
        const compiled = compiledPolicy();
        const findings = [
          ...lint(compiled, { now: ctx.now(), ...(ctx.lists ? { lists: ctx.lists.lintFacts() } : {}) }),
          ...missingApplications(rules(), compiled.internalCount),
          ...pins,
          ...missingInterfaces(rules(), compiled.internalCount),
        ];
        return { findings: findings as unknown as Record<string, unknown>[] };
      });
    },
    logsQuery: (q) => {
      if (q.beforeSeq !== undefined && q.order !== 'newest')
        throw new WardenError(ErrorCode.PARAMS_INVALID, 'logs.query: beforeSeq goes with order: "newest"', {
          suggestion: 'Oldest first, page with fromSeq; newest first, with order: "newest" and beforeSeq.',
        });
      return turns.run(() =>
        fitAnswer(q.order === 'newest' ? newestFirst(ctx.logs, q) : ctx.logs.query(q as LogQueryParsed)),
      );
    },
    configHistory: () => ({ versions: ctx.config.history(), pending: confirmations.pending() }),
    configDiff: async ({ a, b }) => {
      const [va, vb] = (await Promise.all([ctx.config.version(a), ctx.config.version(b)])).map(redactSecrets);
      // A diff of two large texts is quadratic work: it takes its turn like a log search.
      return turns.run(() => ({
        policy: unifiedDiff(va!.policy, vb!.policy, [`policy.yaml@${a}`, `policy.yaml@${b}`]),
        settings: unifiedDiff(va!.settings, vb!.settings, [`settings.yaml@${a}`, `settings.yaml@${b}`]),
      }));
    },
    configRollback: async ({ version, confirm }, caller) => {
      const old = await ctx.config.version(version);
      const next = {
        policy: parsePolicyText(old.policy, { file: `version ${version} policy` }),
        settings: parseSettingsText(old.settings, { file: `version ${version} settings` }),
      };
      guard(next, caller, confirm);
      const v = await applying(caller, confirm, (meta) => ctx.config.rollback(version, meta));
      compiled = undefined;
      audit(caller, `configuration rolled back to version ${version} as version ${v.version}`);
      const pending = await probation(v.version, caller, confirm);
      ctx.onSettingsChanged?.(ctx.config.settings());
      return { version: v.version, ...pending };
    },
    configConfirm: async ({ version }, caller) => {
      if (!(await confirmations.confirm(version))) {
        throw new WardenError(ErrorCode.NOT_FOUND, `no change of version ${version} waits for confirm`, {
          suggestion: 'It may have been rolled back already: see `warden config history`.',
        });
      }
      audit(caller, `version ${version} confirmed`);
      return { version };
    },
    configUndo: async ({ version }, caller) => {
      if (!(await confirmations.undoNow(version, caller))) {
        throw new WardenError(ErrorCode.NOT_FOUND, `no change of version ${version} waits for confirm`, {
          suggestion: 'It may have been confirmed or rolled back already: see `warden config history`.',
        });
      }
      await ctx.settled?.(); // as every change's answer: once the undo is in force in the kernel
      return { version, current: ctx.config.history()[0]?.version ?? version };
    },
    hints: () => {
      const port = servedPort();
      return (
        ctx.hints?.(port) ?? (firewallHints({ applicationPort: port }) as unknown as Record<string, unknown>)
      );
    },
    connectionsList: connectionsHandler(ctx.connections),
    programsHash: programHashHandler(ctx.hasher),
    ...sourceHandlers(ctx, audit),
  };
  const policyHandlers = createPolicyHandlers({
    policy: () => ctx.config.policy(),
    savePolicy,
    audit,
    probation,
    version: () => ctx.config.history()[0]?.version ?? 1,
    ...(ctx.proposals !== undefined ? { proposals: ctx.proposals } : {}),
    ...(ctx.settled !== undefined ? { settled: ctx.settled } : {}),
  });
  return { ...handlers, ...policyHandlers };
}
