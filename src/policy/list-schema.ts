/**
 * The `lists:` section of a policy: each list names its source (a local file or an https URL),
 * the format of its text, how often a URL is fetched again, and its size bounds (docs/policy.md,
 * "Lists"). The list's content is not part of the policy: the engine loads it (src/engine/lists.ts).
 */
import { z } from 'zod';
import { durationSeconds, formatDuration } from './duration.js';
import { LIST_FORMATS, type ListFormat, type ListSource } from './rule.js';

/** Defaults and bounds of a list definition. */
export const LIST_DEFAULTS = {
  refreshSeconds: 24 * 3600,
  /** A URL is fetched at most this often: list servers are not to be hammered. */
  minRefreshSeconds: 5 * 60,
  maxRefreshSeconds: 30 * 24 * 3600,
  maxBytes: 64 << 20,
  maxEntries: 2_000_000,
  /** The largest bounds a policy may ask for. */
  limitBytes: 512 << 20,
  limitEntries: 10_000_000,
} as const;

/** `90s`, `30m`, `6h`, `1d` (or a number of seconds) in seconds; null when it is none of those. */
export function parseDuration(v: unknown): number | null {
  if (typeof v === 'number') return Number.isInteger(v) && v > 0 ? v : null;
  return typeof v === 'string' ? durationSeconds(v) : null;
}

export { formatDuration };

const format = z.enum(LIST_FORMATS as [string, ...string[]], {
  error: `format must be one of ${LIST_FORMATS.join(', ')} (hosts: "0.0.0.0 name" lines; domains: one name a line; ips: addresses and CIDRs)`,
});

export const listSchema = z
  .strictObject({
    file: z
      .string({ error: 'file must be an absolute path (of a file, or of a directory of files)' })
      .optional(),
    url: z.string({ error: 'url must be an https:// URL' }).optional(),
    format,
    refresh: z.unknown().optional(),
    maxBytes: z.number().int().min(1).max(LIST_DEFAULTS.limitBytes).optional(),
    maxEntries: z.number().int().min(1).max(LIST_DEFAULTS.limitEntries).optional(),
  })
  .transform((v, ctx): ListSource => {
    const bounds = {
      format: v.format as ListFormat,
      maxBytes: v.maxBytes ?? LIST_DEFAULTS.maxBytes,
      maxEntries: v.maxEntries ?? LIST_DEFAULTS.maxEntries,
    };
    const source = fetchedSource(v, ctx, {
      what: 'list',
      decides: 'a list decides what is blocked',
      refreshSeconds: LIST_DEFAULTS.refreshSeconds,
    });
    return source === z.NEVER ? z.NEVER : { ...source, ...bounds };
  });

/**
 * Where a part of the policy fetched by the engine comes from (a list, a rule subscription): an
 * absolute `file:` or an `https:` `url:` without credentials, refreshed every `refresh` (5m to 30d).
 * Problems are added to ctx at their field; NEVER when neither or both sources are given.
 */
export function fetchedSource(
  v: { file?: string | undefined; url?: string | undefined; refresh?: unknown },
  ctx: z.RefinementCtx,
  words: { what: string; decides: string; refreshSeconds: number },
): { file: string } | { url: string; refreshSeconds: number } | typeof z.NEVER {
  if ((v.file === undefined) === (v.url === undefined)) {
    ctx.addIssue({
      code: 'custom',
      message: `a ${words.what} has either file: /path or url: https://..., not both or neither`,
    });
    return z.NEVER;
  }
  if (v.file !== undefined) {
    if (!v.file.startsWith('/') || v.file.endsWith('/') || [...v.file].some((c) => c.charCodeAt(0) < 0x20))
      ctx.addIssue({ code: 'custom', message: `"${v.file}" is not an absolute file path`, path: ['file'] });
    if (v.refresh !== undefined)
      ctx.addIssue({
        code: 'custom',
        message: `refresh is for url ${words.what}s; a file ${words.what} is read when the policy is applied`,
        path: ['refresh'],
      });
    return { file: v.file };
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
      message: `"${url}" is not https: ${words.decides}, so it is only fetched over https`,
      path: ['url'],
    });
  if (parsed !== undefined && (parsed.username !== '' || parsed.password !== ''))
    ctx.addIssue({
      code: 'custom',
      message: 'the url holds credentials; the policy is not a place for secrets',
      path: ['url'],
    });
  let refreshSeconds = words.refreshSeconds;
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
  return { url, refreshSeconds };
}
