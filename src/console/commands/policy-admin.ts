/**
 * Policy-level changes on an engine, in the style of ufw and firewall-cmd:
 * `warden policy show|mode|default` and `warden groups list|add|set|remove`. Each change prints what
 * changed and the command that undoes it, and takes --confirm like every change.
 */
import type { Command } from 'commander';
import { ErrorCode, WardenError } from '../../errors.js';
import { Methods } from '../../protocol/methods.js';
import type { DefaultJson } from '../../protocol/policy-methods.js';
import type { CommandIo, CommandStatus } from '../io.js';
import { type RemoteOptions, remoteOptions, withEngine } from '../remote.js';
import { renderTable } from '../render/table.js';
import { confirmParam, pendingNote } from './config.js';

type Opts = RemoteOptions & { json?: boolean; confirm?: string; log?: boolean; replace?: boolean };
type Run = (s: Promise<CommandStatus>) => void;

const CONFIRM_HELP = 'roll back by itself unless `warden config confirm` comes within this time';
const MODES = ['enforce', 'learning', 'monitor'];
const ACTIONS = ['allow', 'deny', 'reject', 'ask'];
const DIRECTIONS: Record<string, 'incoming' | 'outgoing'> = {
  incoming: 'incoming',
  in: 'incoming',
  outgoing: 'outgoing',
  out: 'outgoing',
};

/** The command that undoes a change, on the same engine. */
const undo = (o: Opts, command: string) =>
  `Undo: ${command}${o.engine !== undefined ? ` --engine ${o.engine}` : ''}`;
const defaultText = (d: DefaultJson) => `${d.action}${d.log ? ', logged' : ', not logged'}`;
const logFlag = (log: boolean) => (log ? '--log' : '--no-log');

function oneOf(what: string, text: string, allowed: readonly string[]): string {
  if (allowed.includes(text)) return text;
  const near = allowed.find((a) => a.startsWith(text.slice(0, 2).toLowerCase()));
  throw new WardenError(ErrorCode.USAGE, `${what} "${text}" is not one of ${allowed.join(', ')}`, {
    ...(near !== undefined ? { suggestion: `Did you mean ${near}?` } : {}),
  });
}

export function registerPolicyAdmin(policy: Command, run: Run, io: CommandIo): void {
  remoteOptions(
    policy
      .command('show')
      .description("an engine's mode, defaults and address groups (what applies when no rule decides)"),
  )
    .option('--json', 'print as JSON')
    .addHelpText('after', '\nExamples:\n  warden policy show\n  warden policy show --engine office --json')
    .action((o: Opts) =>
      run(
        withEngine(o, io, async (c) => {
          const p = await c.call(Methods.policyGet, {});
          if (o.json) {
            io.out(JSON.stringify(p, null, 2));
            return 0;
          }
          io.out(`mode:      ${p.mode}`);
          io.out(`incoming:  ${defaultText(p.defaults.incoming)} (when no rule decides)`);
          io.out(`outgoing:  ${defaultText(p.defaults.outgoing)} (when no rule decides)`);
          const groups = Object.entries(p.addressGroups);
          if (groups.length === 0) io.out('groups:    none (add one: warden groups add lan 192.168.0.0/16)');
          for (const [name, members] of groups) io.out(`group @${name}: ${members.join(', ') || '(empty)'}`);
          return 0;
        }),
      ),
    );
  remoteOptions(
    policy
      .command('mode')
      .description('set the mode: enforce (decide), learning (allow and propose rules), monitor (log only)')
      .argument('<mode>', 'enforce, learning or monitor'),
  )
    .option('--confirm <seconds>', CONFIRM_HELP)
    .option('--json', 'print as JSON')
    .addHelpText(
      'after',
      '\nExamples:\n  warden policy mode learning          allow what no rule decides, and propose rules (warden proposals list)\n  warden policy mode enforce --confirm 60',
    )
    .action((text: string, o: Opts) =>
      run(
        withEngine(o, io, async (c) => {
          const mode = oneOf('mode', text, MODES) as 'enforce';
          const r = await c.call(Methods.policySetMode, { mode, ...confirmParam(o.confirm) });
          if (o.json) io.out(JSON.stringify(r, null, 2));
          else if (r.previous === mode) io.out(`The mode is ${mode} already; nothing changed.`);
          else
            io.out(
              `Mode: ${r.previous} -> ${mode}.${pendingNote(r.pending)}\n${undo(o, `warden policy mode ${r.previous}`)}`,
            );
          return 0;
        }),
      ),
    );
  remoteOptions(
    policy
      .command('default')
      .description('set what happens to connections no rule decides in one direction')
      .argument('<direction>', 'incoming or outgoing (in, out)')
      .argument('[action]', 'allow, deny, reject or ask'),
  )
    .option('--log', 'log these connections (blocked ones are always logged)')
    .option('--no-log', 'do not log allowed ones')
    .option('--confirm <seconds>', CONFIRM_HELP)
    .option('--json', 'print as JSON')
    .addHelpText(
      'after',
      '\nExamples:\n  warden policy default outgoing deny --log\n  warden policy default incoming reject\n  warden policy default outgoing --no-log',
    )
    .action((dir: string, action: string | undefined, o: Opts) =>
      run(
        withEngine(o, io, async (c) => {
          const direction = DIRECTIONS[dir];
          if (direction === undefined) oneOf('direction', dir, ['incoming', 'outgoing']);
          if (action === undefined && o.log === undefined)
            throw new WardenError(ErrorCode.USAGE, 'give an action, --log or --no-log', {
              suggestion: 'e.g. warden policy default outgoing deny --log',
            });
          const r = await c.call(Methods.policySetDefault, {
            direction: direction!,
            ...(action !== undefined ? { action: oneOf('action', action, ACTIONS) as 'deny' } : {}),
            ...(o.log !== undefined ? { log: o.log } : {}),
            ...confirmParam(o.confirm),
          });
          if (o.json) io.out(JSON.stringify(r, null, 2));
          else if (r.previous.action === r.default.action && r.previous.log === r.default.log)
            io.out(`Default ${direction} is ${defaultText(r.default)} already; nothing changed.`);
          else
            io.out(
              `Default ${direction}: ${defaultText(r.previous)} -> ${defaultText(r.default)}.${pendingNote(r.pending)}\n` +
                undo(o, `warden policy default ${direction} ${r.previous.action} ${logFlag(r.previous.log)}`),
            );
          return 0;
        }),
      ),
    );
}

export function registerGroups(program: Command, run: Run, io: CommandIo): void {
  const groups = program
    .command('groups')
    .description("an engine's address groups, used in rules as @name")
    .addHelpText(
      'after',
      '\nExamples:\n  warden groups list\n  warden groups add lan 192.168.0.0/16 10.0.0.0/8\n  warden groups remove lan 10.0.0.0/8\n  warden groups remove lan',
    );
  remoteOptions(groups.command('list').description('list the groups, their members and the rules using them'))
    .option('--json', 'print as JSON')
    .action((o: Opts) =>
      run(
        withEngine(o, io, async (c) => {
          const p = await c.call(Methods.policyGet, {});
          if (o.json) {
            io.out(JSON.stringify({ groups: p.addressGroups, usedBy: p.groupUsers }, null, 2));
            return 0;
          }
          const names = Object.keys(p.addressGroups);
          if (names.length === 0) {
            io.out('No address groups. Add one: warden groups add lan 192.168.0.0/16');
            return 0;
          }
          io.out(
            renderTable(
              ['group', 'members', 'used by'],
              names.map((n) => [
                `@${n}`,
                p.addressGroups[n]!.join(', ') || '(empty)',
                p.groupUsers[n]?.join(', ') || '-',
              ]),
            ),
          );
          return 0;
        }),
      ),
    );
  remoteOptions(
    groups
      .command('add')
      .description('add members to a group (the group is created when missing)')
      .argument('<group>', 'the group name, without @')
      .argument('<members...>', 'addresses, CIDRs, ranges (a-b), host names, *.domain, localhost, @group'),
  )
    .option('--confirm <seconds>', CONFIRM_HELP)
    .option('--json', 'print as JSON')
    .addHelpText(
      'after',
      '\nExamples:\n  warden groups add lan 192.168.0.0/16\n  warden groups add mirrors deb.debian.org',
    )
    .action((name: string, members: string[], o: Opts) =>
      run(
        withEngine(o, io, async (c) => {
          const g = name.replace(/^@/, '');
          const r = await c.call(Methods.groupsAdd, { name: g, members, ...confirmParam(o.confirm) });
          const added = r.members.filter((m) => !r.previous?.includes(m));
          if (o.json) io.out(JSON.stringify(r, null, 2));
          else
            io.out(
              `${r.previous === null ? 'Created' : 'Changed'} @${g}: ${r.members.join(', ')} (added ${added.join(', ')}).${pendingNote(r.pending)}\n` +
                undo(o, `warden groups remove ${g}${r.previous === null ? '' : ` ${added.join(' ')}`}`),
            );
          return 0;
        }),
      ),
    );
  remoteOptions(
    groups
      .command('set')
      .description('create a group or replace all its members')
      .argument('<group>', 'the group name, without @')
      .argument('[members...]', 'the new members (none: an empty group)'),
  )
    .option('--confirm <seconds>', CONFIRM_HELP)
    .option('--json', 'print as JSON')
    .addHelpText('after', '\nExample:\n  warden groups set dns 192.0.2.53 192.0.2.54')
    .action((name: string, members: string[], o: Opts) =>
      run(
        withEngine(o, io, async (c) => {
          const g = name.replace(/^@/, '');
          const r = await c.call(Methods.groupsSet, { name: g, members, ...confirmParam(o.confirm) });
          if (o.json) io.out(JSON.stringify(r, null, 2));
          else
            io.out(
              `@${g}: ${r.previous === null ? '(new)' : r.previous.join(', ') || '(empty)'} -> ${r.members.join(', ') || '(empty)'}.${pendingNote(r.pending)}\n` +
                undo(
                  o,
                  r.previous === null
                    ? `warden groups remove ${g}`
                    : `warden groups set ${g} ${r.previous.join(' ')}`.trimEnd(),
                ),
            );
          return 0;
        }),
      ),
    );
  remoteOptions(
    groups
      .command('remove')
      .description('remove members of a group, or the whole group when no member is given')
      .argument('<group>', 'the group name, without @')
      .argument('[members...]', 'members to remove'),
  )
    .option('--confirm <seconds>', CONFIRM_HELP)
    .option('--json', 'print as JSON')
    .addHelpText('after', '\nExamples:\n  warden groups remove lan 10.0.0.0/8\n  warden groups remove lan')
    .action((name: string, members: string[], o: Opts) =>
      run(
        withEngine(o, io, async (c) => {
          const g = name.replace(/^@/, '');
          const r = await c.call(Methods.groupsRemove, {
            name: g,
            ...(members.length > 0 ? { members } : {}),
            ...confirmParam(o.confirm),
          });
          if (o.json) io.out(JSON.stringify(r, null, 2));
          else if (r.members === null)
            io.out(
              `Removed @${g} (it held ${r.previous.join(', ') || 'nothing'}).${pendingNote(r.pending)}\n` +
                undo(o, `warden groups set ${g} ${r.previous.join(' ')}`.trimEnd()),
            );
          else {
            const gone = r.previous.filter((m) => !r.members!.includes(m));
            io.out(
              `Changed @${g}: ${r.members.join(', ') || '(empty)'} (removed ${gone.join(', ')}).${pendingNote(r.pending)}\n` +
                undo(o, `warden groups add ${g} ${gone.join(' ')}`),
            );
          }
          return 0;
        }),
      ),
    );
}
