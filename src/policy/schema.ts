/**
 * Schema of policy files: raw YAML values in, model values (rule.ts) out.
 * Field-level checks live here; checks across fields and rules (ports need
 * TCP or UDP, group references, unique names, conditions) are in parse.ts.
 */
import { z } from 'zod';
import { parseAddressSpec } from './address-spec.js';
import { compileGlob } from './glob.js';
import { includeSchema } from './include-schema.js';
import { listSchema } from './list-schema.js';
import { parsePortList } from './ports.js';
import { ACTIONS, type AddressSpec, DIRECTIONS, MODES, PROTOCOLS } from './rule.js';

const portList = z.unknown().transform((v, ctx) => {
  const r = parsePortList(v);
  if (r.ok) return r.value;
  ctx.addIssue({ code: 'custom', message: r.message });
  return z.NEVER;
});

/** `any`, one address entry, or a list of them; `any` becomes undefined (no restriction). */
const remoteList = z.unknown().transform((v, ctx): AddressSpec[] | undefined => {
  if (v === 'any') return undefined;
  const items = Array.isArray(v) ? v : [v];
  if (items.length === 0) {
    ctx.addIssue({ code: 'custom', message: 'address list is empty; write "any" or leave the field out' });
    return z.NEVER;
  }
  const out: AddressSpec[] = [];
  items.forEach((item, i) => {
    if (typeof item !== 'string') {
      ctx.addIssue({
        code: 'custom',
        message: `expected an address, CIDR, range, host name or @group, got ${JSON.stringify(item)}`,
        path: Array.isArray(v) ? [i] : [],
      });
      return;
    }
    if (item === 'any') {
      ctx.addIssue({
        code: 'custom',
        message: '"any" cannot be part of a list',
        path: Array.isArray(v) ? [i] : [],
      });
      return;
    }
    const r = parseAddressSpec(item);
    if (r.ok) out.push(r.value);
    else ctx.addIssue({ code: 'custom', message: r.message, path: Array.isArray(v) ? [i] : [] });
  });
  return out;
});

/** Linux interface names: 1-15 characters, no `/`, `:`, white space or quotes (nft writes them quoted). */
const IFNAME = /^[A-Za-z0-9_.@+-]{1,15}$/;

/** Checks one interface name or `prefix*` glob; the message says what is wrong, null when fine. */
export function interfaceNameProblem(name: string): string | null {
  const glob = name.endsWith('*');
  const base = glob ? name.slice(0, -1) : name;
  if (name === '*') return '"*" is every interface: leave the field out (or write "any")';
  if (base.includes('*'))
    return `"${name}": only one * at the end is allowed (a name prefix, as nft matches it: e.g. wg*)`;
  if (/[?[\]]/.test(base))
    return `"${name}": ? and [ ] are no interface globs; only a trailing * is (e.g. wg*)`;
  if (base.length > 15)
    return `"${name}" is longer than 15 characters (the kernel's limit for interface names)`;
  if (!IFNAME.test(base) || base === '.' || base === '..')
    return `"${name}" is not an interface name (letters, digits and _ . @ + -, up to 15 characters)`;
  return null;
}

/** `any`, one interface name (or `prefix*`), or a list of them; `any` becomes undefined (no restriction). */
const interfaceList = z.unknown().transform((v, ctx): string[] | undefined => {
  if (v === 'any') return undefined;
  const items = Array.isArray(v) ? v : [v];
  if (items.length === 0) {
    ctx.addIssue({ code: 'custom', message: 'interface list is empty; write "any" or leave the field out' });
    return z.NEVER;
  }
  const out: string[] = [];
  items.forEach((item, i) => {
    const path = Array.isArray(v) ? [i] : [];
    const problem =
      typeof item !== 'string'
        ? `expected an interface name such as eth0 or wg*, got ${JSON.stringify(item)}`
        : item === 'any'
          ? '"any" cannot be part of a list'
          : interfaceNameProblem(item);
    if (problem !== null) ctx.addIssue({ code: 'custom', message: problem, path });
    else if (!out.includes(item as string)) out.push(item as string);
  });
  return out;
});

const application = z
  .string({ error: 'must be an absolute executable path or "any"' })
  .superRefine((s, ctx) => {
    if (s === 'any') return;
    if (s === '')
      ctx.addIssue({ code: 'custom', message: 'application path is empty; write an absolute path or "any"' });
    else if (!s.startsWith('/'))
      ctx.addIssue({ code: 'custom', message: `"${s}" is not an absolute path (it must start with /)` });
    else if (s.endsWith('/'))
      ctx.addIssue({ code: 'custom', message: `"${s}" is a directory, not an executable` });
    else if ([...s].some((c) => c.charCodeAt(0) < 0x20))
      ctx.addIssue({ code: 'custom', message: 'application path holds a control character' });
  });

/** 64 hex digits (either case; stored lower-case): the SHA-256 of the application's executable. */
const sha256 = z.string({ error: 'sha256 must be text: 64 hex digits' }).transform((s, ctx) => {
  const t = s.trim();
  if (!/^[0-9a-fA-F]*$/.test(t)) {
    const bad = [...t].find((c) => !/[0-9a-fA-F]/.test(c));
    ctx.addIssue({
      code: 'custom',
      message: `sha256 is not hexadecimal: "${bad}" is not a hex digit (write the 64 hex digits of sha256sum)`,
    });
    return z.NEVER;
  }
  if (t.length !== 64) {
    ctx.addIssue({
      code: 'custom',
      message: `sha256 has ${t.length} hex digits; a SHA-256 has 64 (an MD5 has 32, a SHA-1 40)`,
    });
    return z.NEVER;
  }
  return t.toLowerCase();
});
/** An absolute executable path of a program around the process (parent, ancestor). */
const programPath = (what: string) =>
  z.string({ error: `must be the absolute path of the ${what}'s executable` }).superRefine((s, ctx) => {
    if (s === '')
      ctx.addIssue({ code: 'custom', message: `${what} path is empty; leave the field out for any` });
    else if (!s.startsWith('/'))
      ctx.addIssue({ code: 'custom', message: `"${s}" is not an absolute path (it must start with /)` });
    else if (s.endsWith('/'))
      ctx.addIssue({ code: 'custom', message: `"${s}" is a directory, not an executable` });
    else if ([...s].some((c) => c.charCodeAt(0) < 0x20))
      ctx.addIssue({ code: 'custom', message: `${what} path holds a control character` });
  });

/** A glob over the command line (glob.ts); refused with the reason and column. */
const argumentsGlob = z
  .string({ error: 'must be a glob over the command line, e.g. "curl *"' })
  .superRefine((s, ctx) => {
    const r = compileGlob(s);
    if (!r.ok) ctx.addIssue({ code: 'custom', message: r.message });
  });

const user = z.union(
  [z.number().int().min(0).max(4294967294), z.string().regex(/^[a-z_][a-z0-9_.-]{0,31}\$?$/i)],
  {
    error: 'must be a numeric uid (0-4294967294) or a user name',
  },
);

const expires = z.string().transform((s, ctx) => {
  if (
    !/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:\d{2})$/.test(s) ||
    Number.isNaN(Date.parse(s))
  ) {
    ctx.addIssue({
      code: 'custom',
      message: `"${s}" is not an ISO 8601 instant with a time zone, e.g. 2026-12-31T18:00:00Z`,
    });
    return z.NEVER;
  }
  return new Date(Date.parse(s)).toISOString();
});

const ruleName = z
  .string({ error: 'rule name must be text' })
  .min(1, 'rule name is empty')
  .max(120, 'rule name is longer than 120 characters')
  .refine((s) => ![...s].some((c) => c.charCodeAt(0) < 0x20), {
    message: 'rule name holds a control character',
  });

export const ruleSchema = z.strictObject({
  name: ruleName,
  enabled: z.boolean().default(true),
  direction: z.enum(DIRECTIONS as [string, ...string[]]).transform((d) => d as (typeof DIRECTIONS)[number]),
  protocol: z
    .enum(PROTOCOLS as [string, ...string[]])
    .default('any')
    .transform((p) => p as (typeof PROTOCOLS)[number]),
  application: application.default('any'),
  sha256: sha256.optional(),
  user: user.optional(),
  localPorts: portList.optional(),
  remotePorts: portList.optional(),
  remote: remoteList.optional(),
  parent: programPath('parent').optional(),
  ancestor: programPath('ancestor').optional(),
  arguments: argumentsGlob.optional(),
  interface: interfaceList.optional(),
  action: z.enum(ACTIONS as [string, ...string[]]).transform((a) => a as (typeof ACTIONS)[number]),
  log: z.boolean().default(false),
  condition: z
    .strictObject({
      setting: z.string().min(1),
      equals: z.union([z.boolean(), z.number(), z.string()]),
    })
    .optional(),
  expires: expires.optional(),
  comment: z.string().max(1000).optional(),
});

const defaultAction = z.strictObject({
  action: z.enum(ACTIONS as [string, ...string[]]).transform((a) => a as (typeof ACTIONS)[number]),
  log: z.boolean().default(true),
});

const addressGroupList = z
  .array(z.string(), { error: 'an address group is a list of addresses' })
  .transform((items, ctx) => {
    const out: AddressSpec[] = [];
    items.forEach((item, i) => {
      const r = parseAddressSpec(item);
      if (!r.ok) ctx.addIssue({ code: 'custom', message: r.message, path: [i] });
      else if (r.value.kind === 'group')
        ctx.addIssue({ code: 'custom', message: 'a group cannot contain another group', path: [i] });
      else out.push(r.value);
    });
    return out;
  });

export const policySchema = z.strictObject({
  version: z.literal(1, { error: 'version must be 1 (the only policy format so far)' }).default(1),
  mode: z
    .enum(MODES as [string, ...string[]])
    .default('enforce')
    .transform((m) => m as (typeof MODES)[number]),
  defaults: z
    .strictObject({
      incoming: defaultAction.prefault({ action: 'deny', log: true }),
      outgoing: defaultAction.prefault({ action: 'allow', log: true }),
    })
    .prefault({}),
  addressGroups: z
    .record(
      z.string().regex(/^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,63}$/, 'group name may hold letters, digits, _ . -'),
      addressGroupList,
    )
    .default({}),
  lists: z
    .record(
      z.string().regex(/^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,63}$/, 'list name may hold letters, digits, _ . -'),
      listSchema,
    )
    .optional(),
  rules: z.array(ruleSchema, { error: 'rules must be a list' }).default([]),
  include: z.array(includeSchema, { error: 'include must be a list of subscriptions' }).optional(),
  disabled: z
    .array(z.string({ error: 'an entry of disabled is an included rule name: subscription/rule' }), {
      error: 'disabled must be a list of included rule names (subscription/rule)',
    })
    .optional(),
});
