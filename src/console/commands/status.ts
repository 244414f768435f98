/** `warden status [--engine E]...`: the state of one or several engines. */
import type { Command } from 'commander';
import type { StatusResult } from '../../protocol/methods.js';
import { Methods } from '../../protocol/methods.js';
import { EngineList } from '../engines.js';
import type { CommandIo, CommandStatus } from '../io.js';
import { openEngine, type RemoteOptions, remoteOptions } from '../remote.js';
import { renderTable } from '../render/table.js';

export interface StatusOptions extends RemoteOptions {
  readonly all?: boolean;
  readonly json?: boolean;
}

export async function status(o: StatusOptions, io: CommandIo): Promise<CommandStatus> {
  const engines = await EngineList.open();
  const names = o.all ? engines.all().map(([n]) => n) : [o.engine];
  const results: { name: string; status?: StatusResult; error?: string; transport?: string }[] = [];
  for (const engine of names) {
    try {
      const { client, name } = await openEngine({ ...o, engine }, io, { engines });
      try {
        results.push({ name, status: await client.call(Methods.status, {}) });
      } finally {
        client.close();
      }
    } catch (e) {
      results.push({ name: engine ?? 'default', error: (e as Error).message.split('\n')[0] });
    }
  }
  if (o.json) io.out(JSON.stringify(results, null, 2));
  else {
    io.out(
      renderTable(
        [
          'engine',
          'host',
          'version',
          'mode',
          'rules',
          'internal',
          'consoles',
          'remote admin',
          'last log',
          'state',
        ],
        results.map((r) =>
          r.status
            ? [
                r.name,
                r.status.hostname,
                r.status.version,
                r.status.mode,
                String(r.status.rules),
                String(r.status.internalRules),
                String(r.status.consoles),
                r.status.remoteAdministration ? 'enabled' : 'disabled',
                String(r.status.lastLogSeq),
                'up',
              ]
            : [r.name, '', '', '', '', '', '', '', '', `unreachable: ${r.error}`],
        ),
      ),
    );
  }
  return results.every((r) => r.status) ? 0 : 1;
}

export function registerStatus(
  program: Command,
  run: (s: Promise<CommandStatus>) => void,
  io: CommandIo,
): void {
  remoteOptions(
    program
      .command('status')
      .description('show the state of an engine, or of every remembered engine with --all'),
  )
    .option('--all', 'every engine in the console configuration')
    .option('--json', 'print as JSON')
    .action((o: StatusOptions) => run(status(o, io)));
}
