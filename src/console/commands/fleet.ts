/** `warden fleet apply|status`: many engines at once (docs/fleet.md). */
import type { Command } from 'commander';
import { ErrorCode, WardenError } from '../../errors.js';
import { EngineList } from '../engines.js';
import { readTextFile } from '../files.js';
import { fleetPassword, fleetTargets, queryFleet, shortFingerprint, shortHash } from '../fleet.js';
import { type RolloutOptions, rollout } from '../fleet-rollout.js';
import type { CommandIo, CommandStatus } from '../io.js';
import { renderTable } from '../render/table.js';

export interface FleetStatusOptions {
  readonly group?: string;
  readonly json?: boolean;
  readonly timeout?: string;
}

/** A whole number option in a range, or a usage error naming it. */
function count(value: string | undefined, option: string, min: number, max: number): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!Number.isInteger(n) || n < min || n > max)
    throw new WardenError(
      ErrorCode.USAGE,
      `${option} "${value}" is not a whole number from ${min} to ${max}`,
    );
  return n;
}

export async function fleetStatus(o: FleetStatusOptions, io: CommandIo): Promise<CommandStatus> {
  const engines = await EngineList.open();
  const names = fleetTargets(engines, o.group);
  const timeoutMs = (count(o.timeout, '--timeout', 1, 600) ?? 8) * 1000;
  await fleetPassword(engines, names);
  const rows = await queryFleet(names, engines, io, { transport: true, timeoutMs });
  if (o.json) io.out(JSON.stringify(rows, null, 2));
  else
    io.out(
      renderTable(
        [
          'engine',
          'version',
          'fingerprint',
          'policy',
          'hash',
          'last contact',
          'decisions/min',
          'log',
          'state',
        ],
        rows.map((r) => [
          r.engine,
          r.version ?? '',
          shortFingerprint(r.fingerprint),
          r.policyVersion === undefined ? '' : `v${r.policyVersion}`,
          r.rulesHash === undefined || r.rulesHash === r.policyHash
            ? shortHash(r.policyHash)
            : `${shortHash(r.policyHash)} (with includes ${shortHash(r.rulesHash)})`,
          r.lastContact ?? 'never',
          r.decisionsPerMinute === undefined ? '' : String(r.decisionsPerMinute),
          r.logTransport?.toUpperCase() ?? '',
          r.reachable
            ? r.problems && r.problems.length > 0
              ? `problem: ${r.problems.join('; ')}`
              : 'up'
            : `unreachable: ${r.error}`,
        ]),
      ),
    );
  return rows.every((r) => r.reachable && (r.problems?.length ?? 0) === 0) ? 0 : 1;
}

export interface FleetApplyOptions {
  readonly group?: string;
  readonly canary?: string;
  readonly wave?: string;
  readonly confirm?: string;
  readonly bake?: string;
  readonly allowUnreachable?: boolean;
  readonly json?: boolean;
}

export async function fleetApply(file: string, o: FleetApplyOptions, io: CommandIo): Promise<CommandStatus> {
  const text = await readTextFile(file, 'policy file');
  const engines = await EngineList.open();
  const names = fleetTargets(engines, o.group);
  const wave = count(o.wave, '--wave', 1, 10_000);
  const options: RolloutOptions = {
    ...(o.group !== undefined ? { group: o.group } : {}),
    canary: count(o.canary, '--canary', 1, 10_000) ?? 1,
    ...(wave !== undefined ? { wave } : {}),
    confirm: count(o.confirm, '--confirm', 5, 3600) ?? 120,
    bake: count(o.bake, '--bake', 0, 3600) ?? 0,
    allowUnreachable: o.allowUnreachable === true,
  };
  await fleetPassword(engines, names);
  const result = await rollout(file, text, names, engines, options, io, (line) =>
    o.json ? io.err(line) : io.out(line),
  );
  if (o.json) io.out(JSON.stringify(result, null, 2));
  else {
    io.out(
      renderTable(
        ['engine', 'wave', 'result', 'detail'],
        result.engines.map((e) => [
          e.engine,
          e.wave === undefined ? '' : e.wave === 0 ? 'canary' : String(e.wave),
          e.state,
          e.detail,
        ]),
      ),
    );
    io.out(
      result.ok
        ? `Rollout of ${shortHash(result.hash)} done.`
        : `Rollout of ${shortHash(result.hash)} stopped: see the failed wave above; later waves were not touched.`,
    );
  }
  return result.ok ? 0 : 1;
}

export function registerFleet(
  program: Command,
  run: (s: Promise<CommandStatus>) => void,
  io: CommandIo,
): void {
  const fleet = program
    .command('fleet')
    .description('many engines at once: staged policy rollout and one status table (see engines group)');
  fleet
    .command('apply')
    .description(
      'roll a policy file out to a group: the canary first, then waves, each applied with confirm, checked and confirmed; stops at the first failure',
    )
    .argument('<file>', 'policy file (YAML), validated here before any engine is touched')
    .option('--group <name>', 'the engines of this group (default: every remembered engine)')
    .option('--canary <n>', 'engines in the first wave', '1')
    .option('--wave <n>', 'engines per later wave (default: a quarter of them)')
    .option(
      '--confirm <seconds>',
      'each engine undoes the change by itself unless confirmed within this time',
      '120',
    )
    .option('--bake <seconds>', 'let each wave run the new policy this long before checking it', '0')
    .option('--allow-unreachable', 'skip engines unreachable at the start (default: change nothing)')
    .option('--json', 'print the outcome as JSON (progress goes to stderr)')
    .addHelpText(
      'after',
      '\nAn engine already at the policy (same hash) is skipped. Exit status: 0 when every engine runs the policy, 1 otherwise.',
    )
    .action((file: string, o: FleetApplyOptions) => run(fleetApply(file, o, io)));
  fleet
    .command('status')
    .description(
      'one table for the fleet: version, fingerprint, policy version and hash, last contact, decisions per minute, log transport',
    )
    .option('--group <name>', 'the engines of this group (default: every remembered engine)')
    .option('--timeout <seconds>', 'per-engine deadline', '8')
    .option('--json', 'print as JSON')
    .action((o: FleetStatusOptions) => run(fleetStatus(o, io)));
}
