/**
 * The policy-level methods of the administration protocol (issue 13): the mode, the defaults per
 * direction, the address groups, and learning mode's proposals. methods.ts spreads them into Methods;
 * docs/protocol.md documents them.
 */
import { z } from 'zod';
import { LIMITS } from './limits.js';

/** A method as methods.ts defines one (kept structural so this file does not import methods.ts). */
export interface MethodShape<P, R> {
  readonly name: string;
  readonly params: z.ZodType<P, unknown>;
  readonly access: 'anyone' | 'auditor' | 'administrator';
  readonly result?: R;
  readonly summary: string;
}

function method<P, R>(
  name: string,
  access: 'auditor' | 'administrator',
  params: z.ZodType<P, unknown>,
  summary: string,
): MethodShape<P, R> {
  return { name, access, params, summary };
}

const confirmSchema = z.strictObject({ seconds: z.number().int().min(1).max(3600).default(60) }).optional();
type Confirm = { confirm?: { seconds: number } };
type Pending = { pending?: { version: number; previous: number; deadline: string } };

export type PolicyMode = 'enforce' | 'learning' | 'monitor';
export type DefaultJson = { action: 'allow' | 'deny' | 'reject' | 'ask'; log: boolean };

/** The policy-level part of the configuration: what applies when no rule decides, and the groups. */
export interface PolicyHeaderJson {
  readonly mode: PolicyMode;
  readonly defaults: { readonly incoming: DefaultJson; readonly outgoing: DefaultJson };
  /** Group name -> members as written in policy.yaml (addresses, CIDRs, ranges, host names, `@group`). */
  readonly addressGroups: Record<string, string[]>;
  /** Group name -> the rules that name it (`@name`). */
  readonly groupUsers: Record<string, string[]>;
  /** The configuration version now in force. */
  readonly version: number;
}

/** One rule learning mode proposes, deduplicated by application + direction + destination pattern. */
export interface ProposalJson {
  /** 12 hex digits, stable for the same application, direction and destination pattern. */
  readonly id: string;
  readonly application: string;
  readonly direction: 'incoming' | 'outgoing';
  readonly protocol: string;
  /** The service port (remote for outgoing, local for incoming), when the protocol has ports. */
  readonly port?: number;
  /** The remote end: the first host name known for it, else its address. */
  readonly remote?: string;
  /** The rule accepting it adds, in policy-file form. */
  readonly rule: Record<string, unknown>;
  /** Connections seen that this rule would have decided. */
  readonly count: number;
  readonly firstSeen: string;
  readonly lastSeen: string;
}

export interface ProposalsListResult {
  /** Grouped by application (sorted by name), the most seen first within one. */
  readonly proposals: ProposalJson[];
  /** The cap on stored proposals; new destinations beyond it are counted in `notStored`, not kept. */
  readonly cap: number;
  /** Proposals seen while the store was full since the engine started. */
  readonly notStored: number;
  /** Proposals rejected and remembered (never proposed again). */
  readonly rejected: number;
}

const mode = z.enum(['enforce', 'learning', 'monitor'], {
  error: 'mode must be "enforce", "learning" or "monitor"',
});
const groupName = z
  .string()
  .regex(/^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,63}$/, 'a group name is 1-64 letters, digits, _ . - (no @)');
const member = z.string().min(1).max(LIMITS.hostName);
const members = z.array(member).max(4096);
const proposalId = z.string().regex(/^[0-9a-f]{12}$/, 'a proposal id is 12 hex digits');
/** Which proposals a bulk call means: ids, or all (of one application when given). */
const selection = {
  ids: z.array(proposalId).max(10_000).optional(),
  all: z.boolean().optional(),
  application: z.string().max(LIMITS.path).optional(),
};
type Selection = { ids?: string[]; all?: boolean; application?: string };

/** policy.apply's answer: the version in force and its policy hash (unchanged: it was in force already). */
export interface PolicyApplyResult {
  readonly version: number;
  readonly hash: string;
  readonly unchanged: boolean;
  readonly pending?: { version: number; previous: number; deadline: string };
}

export const PolicyMethods = {
  policyApply: method<{ policy: string } & Confirm, PolicyApplyResult>(
    'policy.apply',
    'administrator',
    z.strictObject({
      policy: z.string().min(1, 'policy is the text of a policy file').max(900_000),
      confirm: confirmSchema,
    }),
    'replace the whole policy with the text of a policy file (the fleet rollout); nothing new when it is in force already',
  ),
  policyGet: method<Record<string, never>, PolicyHeaderJson>(
    'policy.get',
    'auditor',
    z.strictObject({}),
    'the mode, the defaults per direction and the address groups',
  ),
  policySetMode: method<{ mode: PolicyMode } & Confirm, { mode: PolicyMode; previous: PolicyMode } & Pending>(
    'policy.setMode',
    'administrator',
    z.strictObject({ mode, confirm: confirmSchema }),
    'set the mode: enforce, learning or monitor',
  ),
  policySetDefault: method<
    { direction: 'incoming' | 'outgoing'; action?: DefaultJson['action']; log?: boolean } & Confirm,
    { direction: 'incoming' | 'outgoing'; default: DefaultJson; previous: DefaultJson } & Pending
  >(
    'policy.setDefault',
    'administrator',
    z.strictObject({
      direction: z.enum(['incoming', 'outgoing'], { error: 'direction must be "incoming" or "outgoing"' }),
      action: z
        .enum(['allow', 'deny', 'reject', 'ask'], { error: 'action must be allow, deny, reject or ask' })
        .optional(),
      log: z.boolean().optional(),
      confirm: confirmSchema,
    }),
    'set what happens to connections no rule decides in one direction (action, log)',
  ),
  groupsSet: method<
    { name: string; members: string[] } & Confirm,
    { name: string; members: string[]; previous: string[] | null } & Pending
  >(
    'groups.set',
    'administrator',
    z.strictObject({ name: groupName, members, confirm: confirmSchema }),
    'create an address group or replace its members',
  ),
  groupsAdd: method<
    { name: string; members: string[] } & Confirm,
    { name: string; members: string[]; previous: string[] | null } & Pending
  >(
    'groups.add',
    'administrator',
    z.strictObject({ name: groupName, members: members.min(1), confirm: confirmSchema }),
    'add members to an address group (created when missing)',
  ),
  groupsRemove: method<
    { name: string; members?: string[] } & Confirm,
    { name: string; members: string[] | null; previous: string[] } & Pending
  >(
    'groups.remove',
    'administrator',
    z.strictObject({ name: groupName, members: members.min(1).optional(), confirm: confirmSchema }),
    'remove members of an address group, or without members the group (refused while a rule names it)',
  ),
  proposalsList: method<{ application?: string }, ProposalsListResult>(
    'proposals.list',
    'auditor',
    z.strictObject({ application: z.string().max(LIMITS.path).optional() }),
    "learning mode's proposed rules, grouped by application, with how often each was seen",
  ),
  proposalsAccept: method<
    Selection & Confirm,
    { accepted: { id: string; rule: Record<string, unknown> }[]; version?: number } & Pending
  >(
    'proposals.accept',
    'administrator',
    z.strictObject({ ...selection, confirm: confirmSchema }),
    'turn proposals into rules (added last, one confirmed change for all)',
  ),
  proposalsReject: method<Selection, { rejected: string[] }>(
    'proposals.reject',
    'administrator',
    z.strictObject(selection),
    'reject proposals: remembered and never proposed again',
  ),
} as const;
