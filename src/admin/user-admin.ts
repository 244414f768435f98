/**
 * The users.* methods: administrators manage who may log in to this engine remotely, over the
 * protocol. Every change is an audit item; a removed or re-roled user's consoles are logged out
 * (their sessions carried the old role), and the last administrator is never removed or demoted:
 * the engine would be left with nobody who can change it from afar.
 */
import { ErrorCode, WardenError } from '../errors.js';
import type { Role, UserJson } from '../protocol/methods.js';
import type { UserStore } from './auth/users.js';
import type { Caller } from './handlers.js';
import type { LogStore } from './log-store.js';

/** The caller of a users.* method, with its own connection (kept when it changes its own password). */
export interface UserCaller extends Caller {
  readonly connectionId?: string;
}

export interface UserAdminContext {
  readonly users: UserStore;
  readonly logs: LogStore;
  /** Logs out the consoles of `name` (case-insensitive) but the connection `keep`; returns how many. */
  readonly endSessionsOf: (name: string, reason: string, keep?: string) => number;
}

function lastAdministrator(name: string): WardenError {
  return new WardenError(
    ErrorCode.LOCKOUT_RISK,
    `${name} is the last administrator: without one, nobody could change this engine from a console`,
    {
      suggestion: 'Add another administrator first: `warden users add NAME --role administrator`.',
    },
  );
}

export function createUserHandlers(ctx: UserAdminContext) {
  const audit = (caller: Caller, message: string) =>
    ctx.logs.append({ kind: 'admin', user: caller.user, source: caller.source, message });
  const isLastAdministrator = (name: string) => {
    const admins = ctx.users.list().filter((u) => u.role === 'administrator');
    return admins.length === 1 && admins[0]!.name.toLowerCase() === name.toLowerCase();
  };
  const existing = (name: string): UserJson => {
    const user = ctx.users.get(name);
    if (user === undefined)
      throw new WardenError(ErrorCode.NOT_FOUND, `there is no user named ${JSON.stringify(name)}`, {
        suggestion: 'List the users with `warden users list` (or the Users page).',
      });
    return user;
  };

  return {
    usersList: () => ({ users: ctx.users.list() }),

    usersAdd: async (
      p: { name: string; role: Role; password: string },
      caller: Caller,
    ): Promise<UserJson> => {
      await ctx.users.add(p.name, p.role, p.password);
      audit(caller, `${caller.user} added user ${p.name} (${p.role})`);
      return { name: p.name, role: p.role };
    },

    usersRemove: async (p: { name: string }, caller: Caller): Promise<Record<string, never>> => {
      const user = existing(p.name);
      if (user.role === 'administrator' && isLastAdministrator(user.name)) throw lastAdministrator(user.name);
      await ctx.users.remove(user.name);
      const ended = ctx.endSessionsOf(user.name, `user ${user.name} was removed`);
      audit(
        caller,
        `${caller.user} removed user ${user.name} (${user.role}); ${ended} console(s) logged out`,
      );
      return {};
    },

    usersSetRole: async (p: { name: string; role: Role }, caller: Caller): Promise<UserJson> => {
      const user = existing(p.name);
      if (user.role === p.role) return user;
      if (user.role === 'administrator' && isLastAdministrator(user.name)) throw lastAdministrator(user.name);
      await ctx.users.setRole(user.name, p.role);
      const ended = ctx.endSessionsOf(user.name, `the role of ${user.name} changed to ${p.role}`);
      audit(
        caller,
        `${caller.user} made ${user.name} ${p.role} (was ${user.role}); ${ended} console(s) logged out`,
      );
      return { name: user.name, role: p.role };
    },

    usersSetPassword: async (
      p: { name: string; password: string },
      caller: UserCaller,
    ): Promise<Record<string, never>> => {
      const user = existing(p.name);
      await ctx.users.setPassword(user.name, p.password);
      const ended = ctx.endSessionsOf(user.name, `the password of ${user.name} changed`, caller.connectionId);
      audit(caller, `${caller.user} set the password of ${user.name}; ${ended} other console(s) logged out`);
      return {};
    },
  };
}
