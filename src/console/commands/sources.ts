/**
 * `warden lists [refresh NAME]` and `warden includes [refresh NAME]`: the policy's lists and rule
 * subscriptions as the engine loaded them (engine.status), and fetching one now (lists.refresh,
 * includes.refresh) instead of at its next refresh.
 */
import type { Command } from 'commander';
import { type IncludeStatus, type ListStatus, Methods } from '../../protocol/methods.js';
import type { CommandIo, CommandStatus } from '../io.js';
import { type RemoteOptions, remoteOptions, withEngine } from '../remote.js';
import { renderTable } from '../render/table.js';

type Opts = RemoteOptions & { json?: boolean };

const when = (iso: string | undefined) => iso ?? '';

export function listRows(lists: readonly ListStatus[]): string {
  return renderTable(
    ['list', 'format', 'entries', 'copy', 'loaded', 'next refresh', 'source', 'problem'],
    lists.map((l) => [
      l.name,
      l.format,
      String(l.entries),
      l.copy,
      when(l.loadedAt),
      when(l.nextRefresh),
      l.source,
      l.lastError ?? (l.badLines > 0 ? `${l.badLines} bad lines skipped` : ''),
    ]),
  );
}

export function includeRows(includes: readonly IncludeStatus[]): string {
  return renderTable(
    ['subscription', 'rules', 'copy', 'loaded', 'next refresh', 'source', 'problem'],
    includes.map((i) => [
      i.name,
      String(i.rules),
      i.copy,
      when(i.loadedAt),
      when(i.nextRefresh),
      i.source,
      i.lastError?.split('\n')[0] ?? '',
    ]),
  );
}

export function registerSources(
  program: Command,
  run: (s: Promise<CommandStatus>) => void,
  io: CommandIo,
): void {
  for (const kind of ['lists', 'includes'] as const) {
    const isList = kind === 'lists';
    const what = isList ? 'list' : 'rule subscription';
    const group = remoteOptions(
      program
        .command(kind)
        .description(
          isList
            ? "the policy's lists as the engine loaded them (entries, where the copy came from, problems)"
            : "the policy's rule subscriptions (include:) as the engine loaded them",
        ),
    )
      .option('--json', 'print as JSON')
      .action((o: Opts) =>
        run(
          withEngine(o, io, async (c) => {
            const s = await c.call(Methods.status, {});
            const states = (isList ? s.lists : s.includes) ?? [];
            if (o.json) io.out(JSON.stringify(states, null, 2));
            else if (states.length === 0) io.out(`The policy has no ${isList ? 'lists' : 'include:'}.`);
            else io.out(isList ? listRows(states as ListStatus[]) : includeRows(states as IncludeStatus[]));
            return 0;
          }),
        ),
      );
    remoteOptions(
      group
        .command('refresh')
        .description(`fetch (or read) a ${what} now instead of at its next refresh`)
        .argument('<name>'),
    )
      .option('--json', 'print as JSON')
      .action((name: string, o: Opts) =>
        run(
          withEngine(o, io, async (c) => {
            const r = isList
              ? await c.call(Methods.listsRefresh, { name })
              : await c.call(Methods.includesRefresh, { name });
            const state = 'list' in r ? r.list : r.include;
            if (o.json) {
              io.out(JSON.stringify(r, null, 2));
            } else {
              io.out(
                'list' in r ? listRows([r.list]) : includeRows([(r as { include: IncludeStatus }).include]),
              );
              if (!r.done) io.out(`\nStill fetching: see \`warden ${kind}\` in a moment.`);
            }
            return r.done && state.lastError === undefined ? 0 : 1;
          }),
        ),
      );
  }
}
