/**
 * The policy-level methods (issue 13): the mode, the defaults per direction, the address groups, and
 * learning mode's proposals. Every change goes through the same path as rules.*: validated as a whole
 * policy, refused when it could cut a remote caller off (unless applied with confirm), written as a new
 * configuration version, undone at its deadline unless confirmed, and recorded as an audit item.
 */
import { ErrorCode, WardenError } from '../errors.js';
import { type Policy, parsePolicyText, policyToPlain, validatePolicy } from '../policy/index.js';
import { policyHash } from '../policy-hash.js';
import type { PolicyMethods, ProposalJson } from '../protocol/policy-methods.js';
import type { Caller, Handler } from './handlers.js';
import type { ProposalBook, ProposalSelection } from './proposals.js';

type Confirm = { seconds: number } | undefined;
type PendingPart = { pending?: { version: number; previous: number; deadline: string } };

/** What the policy handlers borrow from createHandlers: its one way to save, audit and confirm. */
export interface PolicyKit {
  readonly policy: () => Policy;
  readonly savePolicy: (policy: Policy, caller: Caller, confirm?: Confirm) => Promise<number>;
  readonly audit: (caller: Caller, message: string) => void;
  readonly probation: (version: number, caller: Caller, confirm: Confirm) => Promise<PendingPart>;
  /** The newest configuration version. */
  readonly version: () => number;
  /** Learning mode's proposals; absent: none are ever made (no kernel backend). */
  readonly proposals?: ProposalBook;
  /** Resolves once the configuration in force has reached the kernel (policy.apply answers after it). */
  readonly settled?: () => Promise<void>;
}

type Plain = {
  mode: string;
  defaults: Record<string, { action: string; log: boolean }>;
  addressGroups: Record<string, string[]>;
  rules: Record<string, unknown>[];
};

const plainOf = (p: Policy) => policyToPlain(p) as unknown as Plain;

/** Members as policy.yaml writes them (`10.0.0.0/8`, `example.com`): invalid ones are refused by name. */
function canonical(name: string, members: readonly string[]): string[] {
  const checked = validatePolicy({ addressGroups: { [name]: [...members] } });
  return plainOf(checked).addressGroups[name] ?? [];
}

/** The rules that name group `name` (as `@name` in remote). */
function usersOf(p: Policy, name: string): string[] {
  return p.rules
    .filter((r) => r.remote?.some((s) => s.kind === 'group' && s.name === name))
    .map((r) => r.name);
}

function groupUsers(p: Policy): Record<string, string[]> {
  const out: Record<string, string[]> = {};
  for (const g of Object.keys(p.addressGroups)) out[g] = usersOf(p, g);
  return out;
}

const list = (m: readonly string[]) => (m.length === 0 ? '(none)' : m.join(', '));
/** Names for an audit message: the first 20, then how many more (a bulk change stays one readable item). */
const some = (names: readonly string[]) =>
  names.length <= 20
    ? names.map((n) => `"${n}"`).join(', ')
    : `${names
        .slice(0, 20)
        .map((n) => `"${n}"`)
        .join(', ')} and ${names.length - 20} more`;

/** A rule name of at most 120 characters that no rule in `taken` has. */
function freeName(wanted: string, taken: Set<string>): string {
  const base = wanted.length > 120 ? `${wanted.slice(0, 119)}…` : wanted;
  if (!taken.has(base)) return base;
  for (let i = 2; ; i++) {
    const tail = ` (${i})`;
    const name = `${base.slice(0, 120 - tail.length)}${tail}`;
    if (!taken.has(name)) return name;
  }
}

type M = typeof PolicyMethods;
type Handlers = { [K in keyof M]: Handler<M[K]> };

export function createPolicyHandlers(kit: PolicyKit): Handlers {
  const save = async (plain: Plain, caller: Caller, confirm: Confirm, what: string) => {
    const version = await kit.savePolicy(validatePolicy(plain), caller, confirm);
    kit.audit(caller, what);
    return { version, pending: await kit.probation(version, caller, confirm) };
  };
  const group = (name: string): string[] | undefined => plainOf(kit.policy()).addressGroups[name];
  const noGroup = (name: string) =>
    new WardenError(ErrorCode.NOT_FOUND, `no address group is named "${name}"`, {
      suggestion: 'List the groups with warden groups list.',
    });
  const book = (): ProposalBook => {
    if (kit.proposals === undefined)
      throw new WardenError(ErrorCode.NOT_FOUND, 'this engine makes no proposals (it enforces nothing)');
    return kit.proposals;
  };
  const selected = (s: ProposalSelection): ProposalJson[] => {
    if (s.ids === undefined && !s.all)
      throw new WardenError(ErrorCode.PARAMS_INVALID, 'name the proposals: ids, or all: true', {
        suggestion: 'warden proposals accept ID... or warden proposals accept --all [--app PATH]',
      });
    return book().select(s);
  };

  return {
    policyApply: async ({ policy: text, confirm }, caller) => {
      // Located errors (line, rule, field) name the text the caller sent: `policy` in the params.
      const next = parsePolicyText(text, { file: 'policy' });
      const hash = policyHash(next);
      if (hash === policyHash(kit.policy())) return { version: kit.version(), hash, unchanged: true };
      const version = await kit.savePolicy(next, caller, confirm);
      kit.audit(caller, `policy replaced as a whole (${next.rules.length} rules, ${hash.slice(0, 19)})`);
      const pending = await kit.probation(version, caller, confirm);
      await kit.settled?.();
      return { version, hash, unchanged: false, ...pending };
    },
    policyGet: () => {
      const p = kit.policy();
      const plain = plainOf(p);
      return {
        mode: p.mode,
        defaults: {
          incoming: { ...p.defaults.incoming },
          outgoing: { ...p.defaults.outgoing },
        },
        addressGroups: plain.addressGroups,
        groupUsers: groupUsers(p),
        version: kit.version(),
      };
    },
    policySetMode: async ({ mode, confirm }, caller) => {
      const plain = plainOf(kit.policy());
      const previous = plain.mode as typeof mode;
      if (previous === mode) return { mode, previous }; // nothing to change: no new version
      plain.mode = mode;
      const r = await save(plain, caller, confirm, `policy mode changed from ${previous} to ${mode}`);
      return { mode, previous, ...r.pending };
    },
    policySetDefault: async ({ direction, action, log, confirm }, caller) => {
      if (action === undefined && log === undefined)
        throw new WardenError(ErrorCode.PARAMS_INVALID, 'policy.setDefault: give action, log or both', {
          suggestion: 'e.g. warden policy default outgoing deny --log',
        });
      const plain = plainOf(kit.policy());
      const previous = { ...plain.defaults[direction]! } as { action: 'allow'; log: boolean };
      const next = { action: action ?? previous.action, log: log ?? previous.log };
      if (next.action === previous.action && next.log === previous.log)
        return { direction, default: next, previous }; // nothing to change: no new version
      plain.defaults[direction] = next;
      const r = await save(
        plain,
        caller,
        confirm,
        `default ${direction} changed from ${previous.action}${previous.log ? ' (logged)' : ''} to ${next.action}${next.log ? ' (logged)' : ''}`,
      );
      return { direction, default: next, previous, ...r.pending };
    },
    groupsSet: async ({ name, members, confirm }, caller) => {
      const plain = plainOf(kit.policy());
      const previous = plain.addressGroups[name] ?? null;
      const next = canonical(name, members);
      plain.addressGroups[name] = next;
      const what =
        previous === null
          ? `address group "${name}" created: ${list(next)}`
          : `address group "${name}" replaced: ${list(previous)} -> ${list(next)}`;
      const r = await save(plain, caller, confirm, what);
      return { name, members: next, previous, ...r.pending };
    },
    groupsAdd: async ({ name, members, confirm }, caller) => {
      const plain = plainOf(kit.policy());
      const previous = plain.addressGroups[name] ?? null;
      const added = canonical(name, members).filter((m) => !previous?.includes(m));
      if (previous !== null && added.length === 0)
        throw new WardenError(
          ErrorCode.ALREADY_EXISTS,
          `address group "${name}" has ${list(canonical(name, members))} already`,
        );
      const next = [...(previous ?? []), ...added];
      plain.addressGroups[name] = next;
      const r = await save(
        plain,
        caller,
        confirm,
        `address group "${name}"${previous === null ? ' created with' : ': added'} ${list(added)}`,
      );
      return { name, members: next, previous, ...r.pending };
    },
    groupsRemove: async ({ name, members, confirm }, caller) => {
      const previous = group(name);
      if (previous === undefined) throw noGroup(name);
      const plain = plainOf(kit.policy());
      if (members === undefined) {
        const users = usersOf(kit.policy(), name);
        if (users.length > 0)
          throw new WardenError(
            ErrorCode.POLICY_INVALID,
            `address group "${name}" is used by ${users.length === 1 ? 'rule' : 'rules'} ${users.map((u) => `"${u}"`).join(', ')}`,
            { suggestion: `Remove @${name} from those rules first (warden rules update NAME ...).` },
          );
        delete plain.addressGroups[name];
        const r = await save(
          plain,
          caller,
          confirm,
          `address group "${name}" removed (was ${list(previous)})`,
        );
        return { name, members: null, previous, ...r.pending };
      }
      const gone = canonical(name, members);
      const missing = gone.filter((m) => !previous.includes(m));
      if (missing.length > 0)
        throw new WardenError(
          ErrorCode.NOT_FOUND,
          `address group "${name}" has no member ${missing.join(', ')} (its members: ${list(previous)})`,
        );
      const next = previous.filter((m) => !gone.includes(m));
      plain.addressGroups[name] = next;
      const r = await save(plain, caller, confirm, `address group "${name}": removed ${list(gone)}`);
      return { name, members: next, previous, ...r.pending };
    },
    proposalsList: ({ application }) => {
      const b = book();
      return {
        proposals: b.list(application),
        cap: b.cap,
        notStored: b.notStored,
        rejected: b.rejectedCount,
      };
    },
    proposalsAccept: async ({ confirm, ...s }, caller) => {
      const chosen = selected(s);
      if (chosen.length === 0) return { accepted: [] };
      const p = kit.policy();
      const plain = plainOf(p);
      const taken = new Set(p.rules.map((r) => r.name));
      const accepted = chosen.map((c) => {
        const rule = { ...c.rule, name: freeName(String(c.rule.name), taken) };
        taken.add(rule.name);
        return { id: c.id, rule };
      });
      // Added last: every rule there is still decides first; the proposal only takes what reached the default.
      plain.rules.push(...accepted.map((a) => a.rule));
      const r = await save(
        plain,
        caller,
        confirm,
        `accepted ${accepted.length} proposed ${accepted.length === 1 ? 'rule' : 'rules'}: ${some(accepted.map((a) => a.rule.name))}`,
      );
      await book().remove(accepted.map((a) => a.id));
      return { accepted, version: r.version, ...r.pending };
    },
    proposalsReject: async (s, caller) => {
      const chosen = selected(s);
      const rejected = await book().reject(chosen.map((c) => c.id));
      if (rejected.length > 0)
        kit.audit(
          caller,
          `rejected ${rejected.length} proposed ${rejected.length === 1 ? 'rule' : 'rules'}: ${some(chosen.filter((c) => rejected.includes(c.id)).map((c) => String(c.rule.name)))}`,
        );
      return { rejected };
    },
  };
}
