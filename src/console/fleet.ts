/**
 * A fleet of engines from one console (issue 14, docs/fleet.md): which engines a command means (a
 * group, or every remembered one), and one row per engine as `warden fleet status` and the web
 * console's Fleet page show it, each engine queried over its own fresh connection with a deadline so
 * one engine that does not answer never holds up the others.
 */
import type { EngineClient } from '../client/engine-client.js';
import { ErrorCode, WardenError } from '../errors.js';
import { Methods, type StatusResult } from '../protocol/methods.js';
import { type EngineList, hostPortKey } from './engines.js';
import type { CommandIo } from './io.js';
import { ask, canPrompt } from './prompt.js';
import { openEngine, usePromptedPassword } from './remote.js';

/** Per-engine deadline for connecting, logging in and each call (ms). */
export const FLEET_TIMEOUT_MS = 8000;

/** One engine of the fleet, as the status table shows it. */
export interface FleetRow {
  readonly engine: string;
  readonly address: string;
  readonly reachable: boolean;
  /** Why it is not reachable (the first line of the error). */
  readonly error?: string;
  readonly version?: string;
  readonly fingerprint?: string;
  readonly policyVersion?: number;
  readonly policyHash?: string;
  /** The rules in force with included rules (engine.status rulesHash); absent from older engines. */
  readonly rulesHash?: string;
  /** When the console last reached it (now when reachable), ISO 8601; null: never recorded. */
  readonly lastContact: string | null;
  readonly decisionsPerMinute?: number;
  /** How log items reach this console: udp, tcp, or pending when neither was settled in time. */
  readonly logTransport?: string;
  readonly problems?: string[];
}

/** The engines a fleet command means: the group's members, or every remembered engine. */
export function fleetTargets(engines: EngineList, group: string | undefined): string[] {
  if (group !== undefined) {
    const members = [...engines.group(group)];
    if (members.length === 0)
      throw new WardenError(ErrorCode.USAGE, `engine group "${group}" has no engines`, {
        suggestion: `Add some with \`warden engines group add ${group} ENGINE...\`.`,
      });
    const known = new Set(engines.all().map(([n]) => n));
    const strangers = members.filter((m) => !known.has(m));
    if (strangers.length > 0)
      throw new WardenError(
        ErrorCode.NOT_FOUND,
        `engine group "${group}" names ${strangers.map((m) => `"${m}"`).join(', ')}, which this console does not remember`,
        {
          suggestion: `Connect to it (\`warden connect HOST --name NAME\`) or take it out: \`warden engines group remove ${group} NAME\`.`,
        },
      );
    return members;
  }
  const all = engines.all().map(([n]) => n);
  if (all.length === 0)
    throw new WardenError(ErrorCode.USAGE, 'this console remembers no engines', {
      suggestion: 'Connect to one with `warden connect HOST --user NAME --name NAME`.',
    });
  return all;
}

/** `p`, or a CONNECTION_FAILED error naming `what` once `ms` have passed. */
export function withDeadline<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, fail) => {
    timer = setTimeout(
      () => fail(new WardenError(ErrorCode.CONNECTION_FAILED, `${what}: no answer within ${ms / 1000} s`)),
      ms,
    );
  });
  return Promise.race([p, late]).finally(() => clearTimeout(timer));
}

/** The first line of an error's message: one engine's failure fits in a table cell. */
export const firstLine = (e: unknown): string => String((e as Error)?.message ?? e).split('\n')[0]!;

/**
 * Asks once for the password of the engines' users when none is in WARDEN_PASSWORD and a terminal can
 * answer, so engines queried in parallel do not each prompt at once.
 */
export async function fleetPassword(engines: EngineList, names: readonly string[]): Promise<void> {
  if (process.env.WARDEN_PASSWORD !== undefined || !canPrompt()) return;
  const users = new Set(names.map((n) => engines.resolve(n).entry.user).filter((u) => u !== undefined));
  if (users.size === 0) return;
  usePromptedPassword(
    await ask(`Password for ${[...users].join(', ')} on the engines: `, {
      secret: true,
    }),
  );
}

/** Opens a logged-in connection to one engine of the fleet, within the deadline. */
export async function openFleetEngine(
  name: string,
  engines: EngineList,
  io: CommandIo,
  timeoutMs = FLEET_TIMEOUT_MS,
): Promise<EngineClient> {
  let opened: EngineClient | undefined;
  let late = false;
  const opening = openEngine({ engine: name }, io, { engines, timeoutMs }).then(({ client }) => {
    if (late) client.close();
    opened = client;
    return client;
  });
  try {
    return await withDeadline(opening, timeoutMs, `${name}`);
  } catch (e) {
    late = true;
    opened?.close();
    throw e;
  }
}

/** The row of an engine that answered engine.status. */
export function rowOf(
  name: string,
  address: string,
  s: StatusResult,
  logTransport: string | undefined,
  lastContact: string,
): FleetRow {
  return {
    engine: name,
    address,
    reachable: true,
    version: s.version,
    fingerprint: s.fingerprint,
    policyVersion: s.policyVersion,
    policyHash: s.policyHash,
    ...(s.rulesHash !== undefined ? { rulesHash: s.rulesHash } : {}),
    lastContact,
    decisionsPerMinute: s.decisionsPerMinute,
    ...(logTransport !== undefined ? { logTransport } : {}),
    problems: s.problems,
  };
}

/** How long to wait for the log channel to settle on UDP or TCP (the engine's UDP grace decides). */
const TRANSPORT_WAIT_MS = 3500;

/** Waits until the client's log transport is udp or tcp, at most `ms`. */
async function settledTransport(client: EngineClient, ms: number): Promise<string> {
  const end = Date.now() + ms;
  while (client.transport === 'pending' && Date.now() < end) await new Promise((r) => setTimeout(r, 25));
  return client.transport;
}

/**
 * Queries one engine for its row: a fresh connection, engine.status, and with `transport` a log
 * subscription to see whether its log items reach this console over UDP or only over TCP.
 */
export async function queryEngine(
  name: string,
  engines: EngineList,
  io: CommandIo,
  o: { transport?: boolean; timeoutMs?: number } = {},
): Promise<FleetRow> {
  const { entry } = engines.resolve(name);
  const address = hostPortKey(entry);
  const timeoutMs = o.timeoutMs ?? FLEET_TIMEOUT_MS;
  let client: EngineClient | undefined;
  try {
    client = await openFleetEngine(name, engines, io, timeoutMs);
    const c = client;
    const status = await withDeadline(c.call(Methods.status, {}), timeoutMs, name);
    let transport: string | undefined;
    if (o.transport) {
      const follower = await withDeadline(
        c.follow(() => {}, { udpAckTimeoutMs: 2000 }),
        timeoutMs,
        name,
      );
      transport = await settledTransport(c, TRANSPORT_WAIT_MS);
      follower.stop();
    }
    return rowOf(name, address, status, transport, new Date().toISOString());
  } catch (e) {
    return { engine: name, address, reachable: false, error: firstLine(e), lastContact: null };
  } finally {
    client?.close();
  }
}

/** Engines a fleet command talks to at once (a thousand engines are not a thousand handshakes at once). */
export const FLEET_PARALLEL = 32;

/** `fn` over `items`, at most `limit` at a time; results in the order of `items`. */
export async function mapLimited<T, R>(
  items: readonly T[],
  fn: (item: T) => Promise<R>,
  limit = FLEET_PARALLEL,
): Promise<R[]> {
  const out: R[] = new Array(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const i = next++;
      out[i] = await fn(items[i]!);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return out;
}

/** Queries every engine in parallel; records the contacts; rows in the order of `names`. */
export async function queryFleet(
  names: readonly string[],
  engines: EngineList,
  io: CommandIo,
  o: { transport?: boolean; timeoutMs?: number } = {},
): Promise<FleetRow[]> {
  const rows = await mapLimited(names, (n) => queryEngine(n, engines, io, o));
  await engines.contacted(rows.filter((r) => r.reachable).map((r) => r.engine));
  return rows.map((r) => (r.reachable ? r : { ...r, lastContact: engines.lastContact(r.engine) ?? null }));
}

/** `SHA256:AB:CD:EF:01` from a full fingerprint: enough to tell engines apart in a table. */
export const shortFingerprint = (fp: string | undefined): string =>
  fp === undefined ? '' : fp.split(':').slice(0, 5).join(':');

/** `sha256:0123456789ab` from a policy hash. */
export const shortHash = (h: string | undefined): string => (h === undefined ? '' : h.slice(0, 19));
