/**
 * `warden config history|diff A B|rollback N|confirm N|undo N`: an engine's
 * configuration versions, the changes between two of them, rolling back, and
 * keeping a change applied with --confirm (confirmed apply).
 */
import type { Command } from 'commander';
import type { EngineClient } from '../../client/engine-client.js';
import { ErrorCode, WardenError } from '../../errors.js';
import { Methods } from '../../protocol/methods.js';
import type { CommandIo, CommandStatus } from '../io.js';
import { type RemoteOptions, remoteOptions, withEngine } from '../remote.js';
import { renderTable } from '../render/table.js';

type Opts = RemoteOptions & { json?: boolean; confirm?: string };

/** A version number argument (1 or more). */
export function versionArg(text: string, what = 'version'): number {
  if (!/^\d+$/.test(text) || Number(text) < 1)
    throw new WardenError(ErrorCode.USAGE, `${what} "${text}" is not a version number`, {
      suggestion: 'List the versions with: warden config history',
    });
  return Number(text);
}

/** The `confirm` param of a change from `--confirm SECONDS` (absent: none). */
export function confirmParam(text: string | undefined): { confirm?: { seconds: number } } {
  if (text === undefined) return {};
  if (!/^\d+$/.test(text) || Number(text) < 1 || Number(text) > 3600)
    throw new WardenError(ErrorCode.USAGE, `--confirm "${text}" is not a number of seconds (1-3600)`);
  return { confirm: { seconds: Number(text) } };
}

/** What to print after a change applied with confirm. */
export function pendingNote(pending: { version: number; deadline: string } | undefined): string {
  if (!pending) return '';
  return `\nApplied as version ${pending.version} on probation: it is rolled back at ${pending.deadline} unless you run: warden config confirm ${pending.version}`;
}

export function registerConfig(
  program: Command,
  run: (s: Promise<CommandStatus>) => void,
  io: CommandIo,
): void {
  const config = program
    .command('config')
    .description("an engine's configuration versions: history, diff, rollback, confirm, undo");
  remoteOptions(config.command('history').description('list the kept versions, newest first'))
    .option('--json', 'print as JSON')
    .action((o: Opts) =>
      run(
        withEngine(o, io, async (c) => {
          const r = await c.call(Methods.configHistory, {});
          if (o.json) {
            io.out(JSON.stringify(r, null, 2));
            return 0;
          }
          const waiting = new Map(r.pending.map((p) => [p.version, p.deadline]));
          io.out(
            renderTable(
              ['version', 'time', 'user', 'source', 'change'],
              r.versions.map((v) => [
                String(v.version),
                v.time,
                v.user,
                v.source,
                (v.what === 'rollback'
                  ? `rollback to ${v.restores}`
                  : v.what === 'revert'
                    ? `revert of ${v.reverts}`
                    : v.what) +
                  (waiting.has(v.version) ? ` (unconfirmed, rolled back at ${waiting.get(v.version)})` : ''),
              ]),
            ),
          );
          return 0;
        }),
      ),
    );
  remoteOptions(
    config
      .command('diff')
      .description('what changed from version A to version B (unified diff)')
      .argument('<a>')
      .argument('<b>'),
  )
    .option('--json', 'print as JSON')
    .action((a: string, b: string, o: Opts) => {
      const params = { a: versionArg(a, 'A'), b: versionArg(b, 'B') };
      run(
        withEngine(o, io, async (c) => {
          const r = await c.call(Methods.configDiff, params);
          if (o.json) io.out(JSON.stringify(r, null, 2));
          else if (r.policy === '' && r.settings === '') io.out(`Versions ${a} and ${b} are the same.`);
          else io.out(`${r.policy}${r.settings}`.trimEnd());
          return 0;
        }),
      );
    });
  remoteOptions(
    config
      .command('rollback')
      .description('make the configuration of a version current again (as a new version)')
      .argument('<version>'),
  )
    .option('--confirm <seconds>', 'roll back again by itself unless confirmed within this time')
    .option('--json', 'print as JSON')
    .action((version: string, o: Opts) => {
      const params = { version: versionArg(version), ...confirmParam(o.confirm) };
      run(
        withEngine(o, io, async (c) => {
          const r = await c.call(Methods.configRollback, params);
          io.out(
            o.json
              ? JSON.stringify(r, null, 2)
              : `Rolled back to version ${version}: now version ${r.version}.${pendingNote(r.pending)}`,
          );
          return 0;
        }),
      );
    });
  // confirm and undo: one pending version each, answered by the engine at once.
  const pendingCommand = <R extends { version: number }>(
    name: string,
    description: string,
    call: (c: EngineClient, version: number) => Promise<R>,
    said: (r: R) => string,
  ) =>
    remoteOptions(config.command(name).description(description).argument('<version>'))
      .option('--json', 'print as JSON')
      .action((version: string, o: Opts) => {
        const v = versionArg(version);
        run(
          withEngine(o, io, async (c) => {
            const r = await call(c, v);
            io.out(o.json ? JSON.stringify(r, null, 2) : said(r));
            return 0;
          }),
        );
      });
  pendingCommand(
    'confirm',
    'keep a change applied with --confirm (else it is rolled back at its deadline)',
    (c, version) => c.call(Methods.configConfirm, { version }),
    (r) => `Version ${r.version} confirmed: it stays.`,
  );
  pendingCommand(
    'undo',
    'undo a change applied with --confirm now, as its deadline would',
    (c, version) => c.call(Methods.configUndo, { version }),
    (r) => `Version ${r.version} undone before its deadline: version ${r.current} is in force.`,
  );
}
