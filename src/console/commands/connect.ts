/** `warden connect HOST[:PORT] --user NAME`: meet an engine, pin its fingerprint, log in, remember it. */
import type { Command } from 'commander';
import { Methods } from '../../protocol/methods.js';
import { EngineList, parseHostPort } from '../engines.js';
import type { CommandIo, CommandStatus } from '../io.js';
import { openEngine } from '../remote.js';

export interface ConnectOptions {
  readonly user?: string;
  readonly local?: boolean;
  readonly name?: string;
  readonly accept?: string;
  readonly json?: boolean;
}

export async function connect(address: string, o: ConnectOptions, io: CommandIo): Promise<CommandStatus> {
  const hp = parseHostPort(address);
  const engines = await EngineList.open();
  const name = o.name ?? address;
  const entry = { host: hp.host, port: hp.port, ...(o.user && !o.local ? { user: o.user } : {}) };
  // Remembered only once the login worked: a typo, a refused connection or a wrong password leaves
  // no stale engine behind (listed as "not pinned", offered as a login card in the web console).
  const { client } = await openEngine(o, io, { firstUse: true, target: { name, entry } });
  try {
    const status = await client.call(Methods.status, {});
    const session = client.session!;
    await engines.save(name, entry);
    if (o.json)
      io.out(
        JSON.stringify(
          { name, ...entry, fingerprint: client.fingerprint, user: session.user, role: session.role, status },
          null,
          2,
        ),
      );
    else {
      io.out(
        `Connected to ${name} (${status.hostname}, Warden ${status.version}) as ${session.user} (${session.role}).`,
      );
      io.out(`Fingerprint ${client.fingerprint}; remembered as "${name}" in ${engines.path}.`);
    }
  } finally {
    client.close();
  }
  return 0;
}

export function registerConnect(
  program: Command,
  run: (s: Promise<CommandStatus>) => void,
  io: CommandIo,
): void {
  program
    .command('connect')
    .description(
      'connect to an engine: check and pin its certificate fingerprint, log in, and remember it by name',
    )
    .argument('<host[:port]>', 'the engine (default port 44334); IPv6 as [addr]:port')
    .option('--user <name>', 'user to log in as (password from WARDEN_PASSWORD or a prompt)')
    .option('--local', 'log in with the local administrator token (root on the engine host)')
    .option('--name <name>', 'name to remember the engine by (default: the address)')
    .option('--accept <fingerprint>', "accept this fingerprint on first use (compare with the engine's)")
    .option('--json', 'print the result as JSON')
    .addHelpText(
      'after',
      '\nExamples:\n  warden connect fw1.example.net --user alice --name office\n  sudo warden connect localhost --local',
    )
    .action((address: string, o: ConnectOptions) => run(connect(address, o, io)));
}
