/**
 * The `include:` section of a policy: each subscription names a rules file by local path or https
 * URL (docs/policy.md, "Included rules"). The file's rules are not part of the policy: the engine
 * loads them (src/engine/includes.ts), the policy only says where from and how often.
 */
import { z } from 'zod';
import { LIST_DEFAULTS, parseDuration } from './list-schema.js';
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
    if ((v.file === undefined) === (v.url === undefined)) {
      ctx.addIssue({
        code: 'custom',
        message: 'a subscription has either file: /path or url: https://..., not both or neither',
      });
      return z.NEVER;
    }
    if (v.file !== undefined) {
      if (!v.file.startsWith('/') || v.file.endsWith('/') || [...v.file].some((c) => c.charCodeAt(0) < 0x20))
        ctx.addIssue({ code: 'custom', message: `"${v.file}" is not an absolute file path`, path: ['file'] });
      if (v.refresh !== undefined)
        ctx.addIssue({
          code: 'custom',
          message: 'refresh is for url subscriptions; a file is read when the policy is applied',
          path: ['refresh'],
        });
      return { file: v.file, ...common };
    }
    const url = v.url!;
    let parsed: URL | undefined;
    try {
      parsed = new URL(url);
    } catch {
      ctx.addIssue({ code: 'custom', message: `"${url}" is not a URL`, path: ['url'] });
    }
    if (parsed !== undefined && parsed.protocol !== 'https:')
      ctx.addIssue({
        code: 'custom',
        message: `"${url}" is not https: included rules decide what is allowed, so they are only fetched over https`,
        path: ['url'],
      });
    if (parsed !== undefined && (parsed.username !== '' || parsed.password !== ''))
      ctx.addIssue({
        code: 'custom',
        message: 'the url holds credentials; the policy is not a place for secrets',
        path: ['url'],
      });
    let refreshSeconds: number = INCLUDE_DEFAULTS.refreshSeconds;
    if (v.refresh !== undefined) {
      const r = parseDuration(v.refresh);
      if (r === null)
        ctx.addIssue({
          code: 'custom',
          message: `refresh ${JSON.stringify(v.refresh)} is not a duration such as 30m, 6h or 1d`,
          path: ['refresh'],
        });
      else if (r < LIST_DEFAULTS.minRefreshSeconds || r > LIST_DEFAULTS.maxRefreshSeconds)
        ctx.addIssue({ code: 'custom', message: 'refresh must be between 5m and 30d', path: ['refresh'] });
      else refreshSeconds = r;
    }
    return { url, refreshSeconds, ...common };
  });
