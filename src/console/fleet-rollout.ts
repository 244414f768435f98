/**
 * `warden fleet apply`: one policy to many engines, staged (docs/fleet.md). The file is validated here
 * first (located errors, nothing sent). Then the canary, then the rest in waves; each wave is applied
 * with confirmed apply (policy.apply with confirm), given its bake time, and checked over a fresh
 * connection per engine (the console still reaches it, it runs the new policy's hash, it reports no
 * problems) before it is confirmed. On the first failure nothing of that wave is confirmed: the
 * engines the console reaches undo the change at once (config.undo), the others by themselves at the
 * deadline (the console waits for it), the console checks them, and the waves after it are left
 * untouched.
 */
import type { EngineClient } from '../client/engine-client.js';
import { ErrorCode, WardenError } from '../errors.js';
import { parsePolicyText } from '../policy/index.js';
import { policyHash } from '../policy-hash.js';
import { Methods } from '../protocol/methods.js';
import type { EngineList } from './engines.js';
import {
  FLEET_TIMEOUT_MS,
  type FleetRow,
  firstLine,
  mapLimited,
  openFleetEngine,
  queryFleet,
  withDeadline,
} from './fleet.js';
import type { CommandIo } from './io.js';

export interface RolloutOptions {
  readonly group?: string;
  /** Engines in the first wave (default 1). */
  readonly canary: number;
  /** Engines per later wave (default: a quarter of them, at least 1). */
  readonly wave?: number;
  /** Seconds each change may stay unconfirmed before the engine undoes it. */
  readonly confirm: number;
  /** Seconds to let a wave run the new policy before checking it (default 0). */
  readonly bake: number;
  /** Skip engines unreachable at the start instead of refusing to begin. */
  readonly allowUnreachable: boolean;
}

/** What happened to one engine. */
export interface EngineOutcome {
  readonly engine: string;
  /** 0: the canary; absent: not in a wave (already at the policy, skipped). */
  wave?: number;
  state:
    | 'applied'
    | 'already'
    | 'skipped-unreachable'
    | 'failed'
    | 'rolled-back'
    | 'not-rolled-back'
    | 'untouched';
  detail: string;
  /** The configuration version the rollout made on it (confirmed or undone). */
  version?: number;
}

export interface RolloutResult {
  readonly hash: string;
  readonly ok: boolean;
  readonly engines: EngineOutcome[];
}

type Applied = { engine: string; version?: number; deadline?: string; error?: string };

/** Splits `names` into the canary and the waves after it. */
export function planWaves(names: readonly string[], canary: number, wave: number | undefined): string[][] {
  const first = names.slice(0, Math.max(1, canary));
  const rest = names.slice(first.length);
  const size = Math.max(1, wave ?? Math.ceil(rest.length / 4));
  const waves = [first];
  for (let i = 0; i < rest.length; i += size) waves.push(rest.slice(i, i + size));
  return waves.filter((w) => w.length > 0);
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Runs the rollout; `say` reports progress as it goes (one line per step). */
export async function rollout(
  file: string,
  text: string,
  names: readonly string[],
  engines: EngineList,
  o: RolloutOptions,
  io: CommandIo,
  say: (line: string) => void,
): Promise<RolloutResult> {
  // Located errors (file, line, rule, field) before any engine is touched.
  const hash = policyHash(parsePolicyText(text, { file }));
  const before = await queryFleet(names, engines, io);
  const rowOf = new Map(before.map((r) => [r.engine, r]));
  const down = before.filter((r) => !r.reachable);
  if (down.length > 0 && !o.allowUnreachable)
    throw new WardenError(
      ErrorCode.CONNECTION_FAILED,
      `${down.length} of ${names.length} engines cannot be reached, so nothing was changed: ${down.map((r) => `${r.engine} (${r.error})`).join('; ')}`,
      { suggestion: 'Bring them back, or roll out to the others with --allow-unreachable.' },
    );
  const outcomes = new Map<string, EngineOutcome>();
  for (const r of down)
    outcomes.set(r.engine, { engine: r.engine, state: 'skipped-unreachable', detail: r.error ?? '' });
  for (const r of before.filter((x) => x.reachable && x.policyHash === hash))
    outcomes.set(r.engine, {
      engine: r.engine,
      state: 'already',
      detail: `at this policy already (version ${r.policyVersion})`,
    });
  const todo = names.filter((n) => !outcomes.has(n));
  const waves = planWaves(todo, o.canary, o.wave);
  say(
    `Policy ${file} (${hash.slice(0, 19)}): ${todo.length} engine(s) to change in ${waves.length} wave(s)` +
      (outcomes.size > 0 ? `, ${outcomes.size} skipped` : ''),
  );
  let failed = false;
  for (const [i, wave] of waves.entries()) {
    const label = i === 0 ? 'canary' : `wave ${i}`;
    if (failed) {
      for (const e of wave)
        outcomes.set(e, {
          engine: e,
          wave: i,
          state: 'untouched',
          detail: 'not changed: the rollout stopped',
        });
      continue;
    }
    const applied = await mapLimited(wave, (e) => applyTo(e, text, o.confirm, engines, io));
    say(
      `${label}: applied to ${applied.map((a) => (a.error ? `${a.engine} (failed: ${a.error})` : a.engine)).join(', ')}`,
    );
    let problems = applied
      .filter((a) => a.error !== undefined)
      .map((a) => ({ engine: a.engine, why: a.error! }));
    const clients = new Map<string, EngineClient>();
    try {
      if (problems.length === 0) {
        if (o.bake > 0) {
          say(`${label}: baking for ${o.bake} s before the checks`);
          await sleep(o.bake * 1000);
        }
        const checks = await mapLimited(applied, (a) => checkEngine(a, hash, engines, io));
        for (const c of checks) if (c.client) clients.set(c.engine, c.client);
        problems = checks.filter((c) => c.why !== undefined).map((c) => ({ engine: c.engine, why: c.why! }));
      }
      if (problems.length === 0) {
        // Every engine of the wave passed: confirm them all (an engine lost in between fails the wave).
        const confirmed = await mapLimited(applied, async (a) => {
          if (a.version === undefined) return undefined;
          try {
            await withDeadline(
              clients.get(a.engine)!.call(Methods.configConfirm, { version: a.version }),
              FLEET_TIMEOUT_MS,
              a.engine,
            );
            return undefined;
          } catch (e) {
            return { engine: a.engine, why: `confirm failed: ${firstLine(e)}` };
          }
        });
        problems = confirmed.filter((c) => c !== undefined);
      }
    } finally {
      for (const c of clients.values()) c.close();
    }
    if (problems.length === 0) {
      for (const a of applied)
        outcomes.set(a.engine, {
          engine: a.engine,
          wave: i,
          state: 'applied',
          detail:
            a.version === undefined
              ? 'at this policy already'
              : `version ${a.version}, checked and confirmed`,
          ...(a.version !== undefined ? { version: a.version } : {}),
        });
      say(`${label}: checked and confirmed`);
      continue;
    }
    failed = true;
    say(`${label}: FAILED: ${problems.map((p) => `${p.engine}: ${p.why}`).join('; ')}`);
    for (const out of await rollBack(applied, problems, rowOf, o.confirm, engines, io, say))
      outcomes.set(out.engine, { ...out, wave: i });
  }
  const order = new Map(names.map((n, k) => [n, k]));
  const list = [...outcomes.values()].sort((a, b) => order.get(a.engine)! - order.get(b.engine)!);
  return { hash, ok: !failed, engines: list };
}

/** policy.apply with confirm over a fresh connection. */
async function applyTo(
  engine: string,
  text: string,
  seconds: number,
  engines: EngineList,
  io: CommandIo,
): Promise<Applied> {
  let client: EngineClient | undefined;
  try {
    client = await openFleetEngine(engine, engines, io);
    const r = await withDeadline(
      client.call(Methods.policyApply, { policy: text, confirm: { seconds } }),
      FLEET_TIMEOUT_MS + 30_000, // the answer waits for the kernel to take the ruleset
      engine,
    );
    if (r.unchanged || r.pending === undefined) return { engine };
    return { engine, version: r.pending.version, deadline: r.pending.deadline };
  } catch (e) {
    return { engine, error: firstLine(e) };
  } finally {
    client?.close();
  }
}

/** The checks after a wave: a fresh connection works, the engine runs `hash`, it reports no problem. */
async function checkEngine(
  a: Applied,
  hash: string,
  engines: EngineList,
  io: CommandIo,
): Promise<{ engine: string; why?: string; client?: EngineClient }> {
  let client: EngineClient | undefined;
  try {
    client = await openFleetEngine(a.engine, engines, io);
    const s = await withDeadline(client.call(Methods.status, {}), FLEET_TIMEOUT_MS, a.engine);
    const why =
      s.policyHash !== hash
        ? `runs ${s.policyHash.slice(0, 19)}, not the policy applied (version ${s.policyVersion})`
        : s.problems.length > 0
          ? `reports: ${s.problems.join('; ')}`
          : undefined;
    return { engine: a.engine, client, ...(why !== undefined ? { why } : {}) };
  } catch (e) {
    client?.close();
    return { engine: a.engine, why: `not reachable after the change: ${firstLine(e)}` };
  }
}

/** config.undo over a fresh connection: true when the engine undid the change now. */
async function undoNow(a: Applied, engines: EngineList, io: CommandIo): Promise<boolean> {
  let client: EngineClient | undefined;
  try {
    client = await openFleetEngine(a.engine, engines, io);
    await withDeadline(
      client.call(Methods.configUndo, { version: a.version! }),
      FLEET_TIMEOUT_MS + 30_000, // the answer waits for the kernel to take the ruleset
      a.engine,
    );
    return true;
  } catch {
    return false;
  } finally {
    client?.close();
  }
}

/**
 * The failed wave: nothing was confirmed. Each engine the console can reach undoes the change at
 * once (config.undo, the same undo its deadline would make); for the others the console waits for
 * their deadline, the undo that works even when the console has lost the engine. Then it checks
 * each engine it can reach is back at its policy of before.
 */
async function rollBack(
  applied: readonly Applied[],
  problems: readonly { engine: string; why: string }[],
  before: ReadonlyMap<string, FleetRow>,
  confirmSeconds: number,
  engines: EngineList,
  io: CommandIo,
  say: (line: string) => void,
): Promise<Omit<EngineOutcome, 'wave'>[]> {
  const why = new Map(problems.map((p) => [p.engine, p.why]));
  const changed = applied.filter((a) => a.version !== undefined);
  const undone = new Set<string>();
  if (changed.length > 0) {
    const results = await mapLimited(changed, (a) => undoNow(a, engines, io));
    changed.forEach((a, k) => {
      if (results[k]) undone.add(a.engine);
    });
    if (undone.size > 0) say(`rolling back: ${[...undone].join(', ')} undid the change now (config.undo)`);
  }
  const waiting = changed.filter((a) => !undone.has(a.engine));
  // The engines' own deadlines, but never longer than --confirm from now (a deadline an engine made up).
  const latest = Date.now() + confirmSeconds * 1000;
  const last = Math.min(latest, Math.max(0, ...waiting.map((a) => Date.parse(a.deadline!) || latest)));
  if (waiting.length > 0) {
    say(
      `rolling back: ${waiting.map((a) => a.engine).join(', ')} undo the change at ${new Date(last).toISOString()}; waiting for it`,
    );
    await sleep(Math.max(0, last - Date.now()) + 1500);
  }
  const after = await queryFleet(
    applied.map((a) => a.engine),
    engines,
    io,
  );
  return applied.map((a, k): Omit<EngineOutcome, 'wave'> => {
    const reason = why.get(a.engine);
    const prefix = reason === undefined ? '' : `${reason}; `;
    const now = after[k]!;
    const old = before.get(a.engine)?.policyHash;
    if (a.version === undefined)
      return { engine: a.engine, state: reason ? 'failed' : 'rolled-back', detail: `${prefix}not changed` };
    if (!now.reachable)
      return {
        engine: a.engine,
        state: reason ? 'failed' : 'not-rolled-back',
        version: a.version,
        detail: `${prefix}unreachable: it undoes version ${a.version} by itself (at the deadline, or when it starts again)`,
      };
    const how = undone.has(a.engine) ? 'undone at once (config.undo)' : 'undone at its deadline';
    return now.policyHash === old
      ? {
          engine: a.engine,
          state: 'rolled-back',
          version: a.version,
          detail: `${prefix}version ${a.version} ${how}; back at ${old?.slice(0, 19)}`,
        }
      : {
          engine: a.engine,
          state: 'not-rolled-back',
          version: a.version,
          detail: `${prefix}still runs ${now.policyHash?.slice(0, 19)} after the deadline (see \`warden config history --engine ${a.engine}\`)`,
        };
  });
}
