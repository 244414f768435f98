/** `warden engines list|forget`: the engines this console remembers. */
import type { Command } from 'commander';
import { defaultKnownHostsPath, KnownHosts } from '../../client/known-hosts.js';
import { ErrorCode, WardenError } from '../../errors.js';
import { EngineList, hostPortKey, parseHostPort } from '../engines.js';
import type { CommandIo, CommandStatus } from '../io.js';
import { renderTable } from '../render/table.js';

export async function enginesList(o: { json?: boolean }, io: CommandIo): Promise<CommandStatus> {
  const engines = await EngineList.open();
  const known = await KnownHosts.open(defaultKnownHostsPath());
  const rows = engines.all().map(([name, e]) => ({
    name,
    ...e,
    default: name === engines.defaultName,
    fingerprint: known.lookup(hostPortKey(e)) ?? null,
  }));
  if (o.json) {
    io.out(JSON.stringify(rows, null, 2));
    return 0;
  }
  if (rows.length === 0) io.out('No engines yet. Add one with: warden connect HOST --user NAME');
  else
    io.out(
      renderTable(
        ['name', 'address', 'user', 'fingerprint'],
        rows.map((r) => [
          `${r.name}${r.default ? ' (default)' : ''}`,
          hostPortKey(r),
          r.user ?? '(local token)',
          r.fingerprint ?? '(not pinned)',
        ]),
      ),
    );
  // An engine without a pinned fingerprint was never logged in to (an older console also remembered
  // failed connects): say how to finish or drop it.
  for (const r of rows.filter((x) => x.fingerprint === null))
    io.out(
      `${r.name}: never connected; connect with \`warden connect ${hostPortKey(r)}\` or drop it with \`warden engines forget ${r.name}\``,
    );
  return 0;
}

export async function enginesForget(nameOrAddress: string, io: CommandIo): Promise<CommandStatus> {
  const engines = await EngineList.open();
  const known = await KnownHosts.open(defaultKnownHostsPath());
  const { name, entry } = engines.resolve(nameOrAddress);
  const removed = await engines.remove(name);
  let key = hostPortKey(entry);
  let unpinned = await known.forget(key);
  if (!unpinned && !removed) {
    key = hostPortKey(parseHostPort(nameOrAddress));
    unpinned = await known.forget(key);
  }
  if (!removed && !unpinned)
    throw new WardenError(ErrorCode.NOT_FOUND, `no engine "${nameOrAddress}" is remembered`, {
      suggestion: 'See `warden engines list`.',
    });
  io.out(`Forgot ${name}${unpinned ? ` and the fingerprint pinned for ${key}` : ''}.`);
  return 0;
}

export function registerEngines(
  program: Command,
  run: (s: Promise<CommandStatus>) => void,
  io: CommandIo,
): void {
  const engines = program.command('engines').description('the engines this console remembers');
  engines
    .command('list')
    .description('list remembered engines and their pinned fingerprints')
    .option('--json', 'print as JSON')
    .action((o: { json?: boolean }) => run(enginesList(o, io)));
  engines
    .command('forget')
    .description('forget an engine and its pinned fingerprint (after a legitimate certificate change)')
    .argument('<name|host:port>')
    .action((n: string) => run(enginesForget(n, io)));
}
