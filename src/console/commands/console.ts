/** `warden console [--port N]`: the web Administration Console on 127.0.0.1, until interrupted. */
import type { Command } from 'commander';
import { ErrorCode, WardenError } from '../../errors.js';
import type { CommandIo, CommandStatus } from '../io.js';
import { localTokenPath } from '../remote.js';
import { startConsoleServer } from '../web/server.js';

export async function consoleCommand(o: { port?: string }, io: CommandIo): Promise<CommandStatus> {
  const port = o.port === undefined ? 0 : Number(o.port);
  if (!Number.isInteger(port) || port < 0 || port > 65535)
    throw new WardenError(ErrorCode.USAGE, `--port "${o.port}" is not a port number (0-65535)`);
  const server = await startConsoleServer({ port, localTokenPath: localTokenPath() });
  io.out('Warden web console (listening on 127.0.0.1 only). Open this URL; it holds the access token:');
  io.out(`  ${server.url}`);
  io.err('Press Ctrl+C to stop.');
  await new Promise<void>((done) => {
    process.once('SIGINT', done);
    process.once('SIGTERM', done);
  });
  await server.close();
  return 0;
}

export function registerConsole(program: Command, run: (s: Promise<CommandStatus>) => void, io: CommandIo) {
  program
    .command('console')
    .description('start the web Administration Console on 127.0.0.1 (prints a URL with an access token)')
    .option('--port <n>', 'port on 127.0.0.1 (default: a free one)')
    .action((o: { port?: string }) => run(consoleCommand(o, io)));
}
