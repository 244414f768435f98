/**
 * `warden users list|add|remove|role|passwd`: who may log in to an engine remotely. Passwords for
 * the user being changed come from WARDEN_NEW_PASSWORD or a prompt (typed twice), never argv;
 * WARDEN_PASSWORD stays the password the console logs in with.
 */
import type { Command } from 'commander';
import { ErrorCode, WardenError } from '../../errors.js';
import { Methods, type Role } from '../../protocol/methods.js';
import type { CommandIo, CommandStatus } from '../io.js';
import { ask, canPrompt } from '../prompt.js';
import { type RemoteOptions, remoteOptions, withEngine } from '../remote.js';
import { renderTable } from '../render/table.js';

type Opts = RemoteOptions & { json?: boolean; role?: string };

function roleArg(text: string): Role {
  if (text !== 'administrator' && text !== 'auditor')
    throw new WardenError(ErrorCode.USAGE, `role "${text}" is not administrator or auditor`);
  return text;
}

async function newPassword(name: string): Promise<string> {
  const fromEnv = process.env.WARDEN_NEW_PASSWORD;
  if (fromEnv !== undefined) return fromEnv;
  if (!canPrompt())
    throw new WardenError(ErrorCode.USAGE, `no new password for ${name}`, {
      suggestion:
        'Set WARDEN_NEW_PASSWORD, or run in a terminal to be asked (passwords are never taken from arguments).',
    });
  const first = await ask(`New password for ${name}: `, { secret: true });
  const again = await ask(`The same again: `, { secret: true });
  if (first !== again)
    throw new WardenError(ErrorCode.USAGE, 'the two passwords differ; nothing was changed');
  return first;
}

export function registerUsers(
  program: Command,
  run: (s: Promise<CommandStatus>) => void,
  io: CommandIo,
): void {
  const users = program
    .command('users')
    .description("an engine's console users and their roles: list, add, remove, role, passwd");
  remoteOptions(users.command('list').description('the users and their roles'))
    .option('--json', 'print as JSON')
    .action((o: Opts) =>
      run(
        withEngine(o, io, async (c) => {
          const r = await c.call(Methods.usersList, {});
          io.out(
            o.json
              ? JSON.stringify(r, null, 2)
              : renderTable(
                  ['user', 'role'],
                  r.users.map((u) => [u.name, u.role]),
                ),
          );
          return 0;
        }),
      ),
    );
  remoteOptions(
    users
      .command('add')
      .description('add a user (password from WARDEN_NEW_PASSWORD or a prompt)')
      .argument('<name>'),
  )
    .option('--role <role>', 'administrator or auditor', 'auditor')
    .action((name: string, o: Opts) => {
      const role = roleArg(o.role ?? 'auditor');
      run(
        withEngine(o, io, async (c) => {
          await c.call(Methods.usersAdd, { name, role, password: await newPassword(name) });
          io.out(`User ${name} added (${role}).`);
          return 0;
        }),
      );
    });
  remoteOptions(
    users.command('remove').description('remove a user; their consoles are logged out').argument('<name>'),
  ).action((name: string, o: Opts) =>
    run(
      withEngine(o, io, async (c) => {
        await c.call(Methods.usersRemove, { name });
        io.out(`User ${name} removed.`);
        return 0;
      }),
    ),
  );
  remoteOptions(
    users
      .command('role')
      .description("change a user's role; their consoles are logged out")
      .argument('<name>')
      .argument('<role>'),
  ).action((name: string, role: string, o: Opts) => {
    const r = roleArg(role);
    run(
      withEngine(o, io, async (c) => {
        await c.call(Methods.usersSetRole, { name, role: r });
        io.out(`${name} is now ${r}.`);
        return 0;
      }),
    );
  });
  remoteOptions(
    users
      .command('passwd')
      .description("set a user's password (from WARDEN_NEW_PASSWORD or a prompt)")
      .argument('<name>'),
  ).action((name: string, o: Opts) =>
    run(
      withEngine(o, io, async (c) => {
        await c.call(Methods.usersSetPassword, { name, password: await newPassword(name) });
        io.out(`Password of ${name} changed.`);
        return 0;
      }),
    ),
  );
}
