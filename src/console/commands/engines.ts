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

export async function groupAdd(group: string, members: string[], io: CommandIo): Promise<CommandStatus> {
  const engines = await EngineList.open();
  const added = await engines.addToGroup(group, members);
  const all = engines.group(group);
  io.out(
    added.length === 0
      ? `Group ${group} has ${members.join(', ')} already (members: ${all.join(', ')}).`
      : `Group ${group}: added ${added.join(', ')} (members: ${all.join(', ')}).`,
  );
  return 0;
}

export async function groupRemove(group: string, members: string[], io: CommandIo): Promise<CommandStatus> {
  const engines = await EngineList.open();
  await engines.removeFromGroup(group, members);
  io.out(
    members.length === 0
      ? `Removed group ${group} (its engines are still remembered).`
      : `Group ${group}: removed ${members.join(', ')} (members: ${engines.group(group).join(', ') || '(none)'}).`,
  );
  return 0;
}

export async function groupList(o: { json?: boolean }, io: CommandIo): Promise<CommandStatus> {
  const groups = (await EngineList.open()).groups();
  if (o.json) io.out(JSON.stringify(groups, null, 2));
  else if (Object.keys(groups).length === 0)
    io.out('No engine groups yet. Make one with: warden engines group add NAME ENGINE...');
  else
    io.out(
      renderTable(
        ['group', 'engines'],
        Object.entries(groups).map(([g, m]) => [g, m.join(', ') || '(none)']),
      ),
    );
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
  const group = engines
    .command('group')
    .description('named groups of engines, for `warden fleet apply|status --group`');
  group
    .command('add')
    .description('add remembered engines to a group (created when missing)')
    .argument('<group>')
    .argument('<engines...>', 'engine names from `warden engines list`')
    .action((g: string, m: string[]) => run(groupAdd(g, m, io)));
  group
    .command('remove')
    .description('remove engines from a group, or without engines the group itself')
    .argument('<group>')
    .argument('[engines...]')
    .action((g: string, m: string[]) => run(groupRemove(g, m, io)));
  group
    .command('list')
    .description('list the groups and their engines')
    .option('--json', 'print as JSON')
    .action((o: { json?: boolean }) => run(groupList(o, io)));
}
