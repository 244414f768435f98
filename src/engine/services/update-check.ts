/**
 * The update checker: reads the release feed (settings updates.feedUrl) through the proxy the OS
 * configuration names, or directly, soon after the engine starts and then every
 * updates.intervalHours. When the feed names a version newer than the running one, a system log
 * item and an engine log line say so (once per version). It never installs anything.
 *
 * Feed format (JSON): {"latest": "0.2.0", "url": "https://...", "notes": "optional text"}.
 */
import { z } from 'zod';
import { ErrorCode, WardenError } from '../../errors.js';
import type { Settings } from '../../settings/index.js';
import type { ServiceContext } from './context.js';
import { httpRequest } from './http-client.js';

const SEMVER = /^v?(\d{1,9})\.(\d{1,9})\.(\d{1,9})(?:-([0-9A-Za-z.-]+))?(?:\+[0-9A-Za-z.-]+)?$/;

export const releaseFeedSchema = z.object({
  latest: z.string().regex(SEMVER, 'is not a version such as 1.2.3'),
  url: z.string().url().optional(),
  notes: z.string().max(2000).optional(),
});

export type ReleaseFeed = z.output<typeof releaseFeedSchema>;

/** Compares two semantic versions (1.2.3, 1.2.3-rc.1): negative, 0 or positive; undefined when either does not parse. */
export function compareVersions(a: string, b: string): number | undefined {
  const ma = SEMVER.exec(a);
  const mb = SEMVER.exec(b);
  if (ma === null || mb === null) return undefined;
  for (let i = 1; i <= 3; i++) {
    const d = Number(ma[i]) - Number(mb[i]);
    if (d !== 0) return Math.sign(d);
  }
  const pa = ma[4];
  const pb = mb[4];
  if (pa === undefined || pb === undefined) return pa === pb ? 0 : pa === undefined ? 1 : -1;
  const xa = pa.split('.');
  const xb = pb.split('.');
  for (let i = 0; i < Math.max(xa.length, xb.length); i++) {
    const x = xa[i];
    const y = xb[i];
    if (x === undefined) return -1;
    if (y === undefined) return 1;
    if (x === y) continue;
    const nx = /^\d+$/.test(x);
    const ny = /^\d+$/.test(y);
    if (nx && ny) return Math.sign(Number(x) - Number(y));
    if (nx !== ny) return nx ? -1 : 1;
    return x < y ? -1 : 1;
  }
  return 0;
}

/** Parses a feed answer; a WardenError naming the field when it is not the documented format. */
export function parseReleaseFeed(text: string, url: string): ReleaseFeed {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (e) {
    throw new WardenError(ErrorCode.SERVICE_ANSWER_INVALID, `the release feed ${url} is not JSON`, {
      cause: e,
    });
  }
  const parsed = releaseFeedSchema.safeParse(value);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    const field = issue.path.join('.') || '(document)';
    throw new WardenError(
      ErrorCode.SERVICE_ANSWER_INVALID,
      `the release feed ${url}: ${field}: ${issue.message}`,
      {
        suggestion: 'The feed must be {"latest": "1.2.3", "url": "https://..."} (docs/services.md).',
      },
    );
  }
  return parsed.data;
}

/** What one check found. */
export type UpdateCheckResult =
  | { readonly kind: 'newer'; readonly feed: ReleaseFeed }
  | { readonly kind: 'current'; readonly feed: ReleaseFeed };

/** Reads the feed once and compares it with `version`. */
export async function checkForUpdate(ctx: ServiceContext, settings: Settings): Promise<UpdateCheckResult> {
  const url = settings.updates.feedUrl;
  const answer = await httpRequest({
    url,
    route: ctx.route(settings, url),
    ...(ctx.ca !== undefined ? { ca: ctx.ca } : {}),
    maxBytes: 64 * 1024,
  });
  const feed = parseReleaseFeed(answer.body, url);
  return (compareVersions(feed.latest, ctx.version) ?? 0) > 0
    ? { kind: 'newer', feed }
    : { kind: 'current', feed };
}

/** Delay of the next check after a failed one, when the interval is longer. */
const RETRY_AFTER_FAILURE_MS = 15 * 60_000;

/** setTimeout's largest delay (about 24.8 days); a longer interval checks a little early. */
const MAX_TIMER_MS = 2 ** 31 - 1;

/** Runs checks while updates are enabled; `stop()` ends them. */
export function startUpdateChecker(
  ctx: ServiceContext,
  settings: Settings,
  timing: { firstDelayMs: number },
): { stop(): void } {
  let stopped = false;
  let timer: NodeJS.Timeout | undefined;
  let lastProblem: string | undefined;
  const schedule = (ms: number) => {
    if (stopped) return;
    timer = setTimeout(run, Math.min(ms, MAX_TIMER_MS));
    timer.unref();
  };
  const run = () => {
    checkForUpdate(ctx, settings)
      .then(
        (result) => {
          lastProblem = undefined;
          if (stopped) return;
          if (result.kind === 'newer' && ctx.announcedVersion.value !== result.feed.latest) {
            ctx.announcedVersion.value = result.feed.latest;
            const where = result.feed.url === undefined ? '' : `: ${result.feed.url}`;
            ctx.logs.append({
              kind: 'system',
              message: `update available: Warden ${result.feed.latest} (running ${ctx.version})${where}`,
            });
            ctx.log('info', 'update available', { latest: result.feed.latest, running: ctx.version });
          } else {
            const state = result.kind === 'newer' ? 'newer version already announced' : 'up to date';
            ctx.log('info', `update check: ${state}`, { latest: result.feed.latest, running: ctx.version });
          }
        },
        (e: Error) => {
          if (stopped) return;
          ctx.log('warn', `update check failed: ${e.message}`);
          if (lastProblem !== e.message) {
            lastProblem = e.message;
            ctx.logs.append({ kind: 'system', message: `update check failed: ${e.message}` });
          }
        },
      )
      .catch((e: Error) => ctx.log('error', `update check: ${e.message}`))
      .finally(() => {
        // After a failure (e.g. no network yet at boot) the next try comes sooner: at most 15 minutes later.
        const interval = settings.updates.intervalHours * 3_600_000;
        schedule(lastProblem === undefined ? interval : Math.min(interval, RETRY_AFTER_FAILURE_MS));
      });
  };
  schedule(timing.firstDelayMs);
  return {
    stop() {
      stopped = true;
      clearTimeout(timer);
    },
  };
}
