/**
 * Product registration: enrols this engine with the configured server (settings registration.server)
 * over HTTPS, through the proxy or directly. The enrolment is a POST of
 * {engineId, hostname, version, fingerprint}; the server answers {"registrationId": "..."}.
 * The result is kept in <stateDir>/registration.json (0600, written atomically); an engine already
 * registered with the same server does not enrol again. Failures are retried with backoff.
 */
import { randomUUID } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { z } from 'zod';
import { writeFileAtomic } from '../../admin/private-file.js';
import { ErrorCode, WardenError } from '../../errors.js';
import type { Settings } from '../../settings/index.js';
import type { ServiceContext } from './context.js';
import { httpRequest } from './http-client.js';

const stateSchema = z.object({
  engineId: z.string().min(1),
  server: z.string().optional(),
  registrationId: z.string().optional(),
  registeredAt: z.string().optional(),
});

export type RegistrationState = z.output<typeof stateSchema>;

const answerSchema = z.object({ registrationId: z.string().min(1).max(200) });

export const REGISTRATION_FILE = 'registration.json';

/** Reads <stateDir>/registration.json, making a fresh engine id when there is none (or it is unreadable). */
export async function readRegistration(stateDir: string): Promise<RegistrationState> {
  const text = await readFile(join(stateDir, REGISTRATION_FILE), 'utf8').catch(() => undefined);
  if (text !== undefined) {
    try {
      const parsed = stateSchema.safeParse(JSON.parse(text));
      if (parsed.success) return parsed.data;
    } catch {
      // fall through: a damaged file is replaced on the next successful write
    }
  }
  return { engineId: randomUUID() };
}

/** Enrols once when not yet registered with `settings.registration.server`; resolves with the state in force. */
export async function registerOnce(
  ctx: ServiceContext,
  settings: Settings,
): Promise<{ state: RegistrationState; enrolled: boolean }> {
  const server = settings.registration.server;
  const state = await readRegistration(ctx.stateDir);
  if (state.server === server && state.registrationId !== undefined) return { state, enrolled: false };
  const answer = await httpRequest({
    url: server,
    method: 'POST',
    json: {
      engineId: state.engineId,
      hostname: ctx.hostname,
      version: ctx.version,
      fingerprint: ctx.fingerprint,
    },
    route: ctx.route(settings, server),
    ...(ctx.ca !== undefined ? { ca: ctx.ca } : {}),
    maxBytes: 64 * 1024,
  });
  let parsed: z.ZodSafeParseResult<z.output<typeof answerSchema>>;
  try {
    parsed = answerSchema.safeParse(JSON.parse(answer.body));
  } catch (e) {
    throw new WardenError(
      ErrorCode.SERVICE_ANSWER_INVALID,
      `the registration server ${server} did not answer JSON`,
      {
        cause: e,
      },
    );
  }
  if (!parsed.success) {
    throw new WardenError(
      ErrorCode.SERVICE_ANSWER_INVALID,
      `the registration server ${server} answered without a registrationId (a non-empty string)`,
    );
  }
  const next: RegistrationState = {
    engineId: state.engineId,
    server,
    registrationId: parsed.data.registrationId,
    registeredAt: new Date().toISOString(),
  };
  await writeFileAtomic(join(ctx.stateDir, REGISTRATION_FILE), `${JSON.stringify(next, null, 2)}\n`, 0o600);
  return { state: next, enrolled: true };
}

/** Enrols in the background while registration is enabled, retrying with backoff; `stop()` ends it. */
export function startRegistration(
  ctx: ServiceContext,
  settings: Settings,
  timing: { minBackoffMs: number; maxBackoffMs: number },
): { stop(): void; readonly done: Promise<void> } {
  let stopped = false;
  let timer: NodeJS.Timeout | undefined;
  let backoff = timing.minBackoffMs;
  let finish: () => void = () => {};
  const done = new Promise<void>((resolve) => {
    finish = resolve;
  });
  const attempt = () => {
    registerOnce(ctx, settings)
      .then(
        ({ state, enrolled }) => {
          if (stopped) return;
          if (enrolled) {
            ctx.logs.append({
              kind: 'system',
              message: `engine registered with ${state.server} as ${state.registrationId}`,
            });
            ctx.log('info', 'registered', { server: state.server, registrationId: state.registrationId });
          } else {
            ctx.log('info', 'already registered', {
              server: state.server,
              registrationId: state.registrationId,
            });
          }
          finish();
        },
        (e: Error) => {
          if (stopped) return;
          const next = Math.round(backoff / 1000);
          ctx.log('warn', `registration failed, next attempt in ${next} s: ${e.message}`);
          if (backoff === timing.minBackoffMs) {
            ctx.logs.append({ kind: 'system', message: `registration failed (retrying): ${e.message}` });
          }
          timer = setTimeout(attempt, backoff);
          timer.unref();
          backoff = Math.min(backoff * 2, timing.maxBackoffMs);
        },
      )
      .catch((e: Error) => ctx.log('error', `registration: ${e.message}`));
  };
  attempt();
  return {
    done,
    stop() {
      stopped = true;
      clearTimeout(timer);
      finish();
    },
  };
}
