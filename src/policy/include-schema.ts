/**
 * The `include:` section of a policy: each subscription names a rules file by local path or https
 * URL (docs/policy.md, "Included rules"). The file's rules are not part of the policy: the engine
 * loads them (src/engine/includes.ts), the policy only says where from and how often.
 */
import { z } from 'zod';
import { fetchedSource } from './list-schema.js';
import type { IncludeSource } from './rule.js';

export const INCLUDE_DEFAULTS = {
  refreshSeconds: 6 * 3600,
  maxBytes: 4 << 20,
  limitBytes: 64 << 20,
} as const;

/** Subscription names: they prefix rule names (`corp/allow-dns`), so no `/`. */
export const INCLUDE_NAME = /^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,31}$/;

export const includeSchema = z
  .strictObject({
    name: z
      .string({
        error: 'a subscription needs a name (letters, digits, _ . -): its rules are named name/rule',
      })
      .regex(INCLUDE_NAME, 'subscription name may hold letters, digits, _ . - (up to 32, no /)'),
    file: z.string({ error: 'file must be an absolute path of a rules file' }).optional(),
    url: z.string({ error: 'url must be an https:// URL' }).optional(),
    refresh: z.unknown().optional(),
    maxBytes: z.number().int().min(1).max(INCLUDE_DEFAULTS.limitBytes).optional(),
  })
  .transform((v, ctx): IncludeSource => {
    const common = { name: v.name, maxBytes: v.maxBytes ?? INCLUDE_DEFAULTS.maxBytes };
    const source = fetchedSource(v, ctx, {
      what: 'subscription',
      decides: 'included rules decide what is allowed',
      refreshSeconds: INCLUDE_DEFAULTS.refreshSeconds,
    });
    return source === z.NEVER ? z.NEVER : { ...source, ...common };
  });
