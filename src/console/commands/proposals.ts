/**
 * `warden proposals list|accept|reject`: learning mode's proposed rules. Each is a connection no rule
 * decided, deduplicated by application, direction and destination; accepting makes it a rule (one
 * confirmed change for all accepted at once), rejecting remembers it so it is not proposed again.
 */
import type { Command } from 'commander';
import { ErrorCode, WardenError } from '../../errors.js';
import { Methods } from '../../protocol/methods.js';
import type { ProposalJson } from '../../protocol/policy-methods.js';
import type { CommandIo, CommandStatus } from '../io.js';
import { type RemoteOptions, remoteOptions, withEngine } from '../remote.js';
import { renderTable } from '../render/table.js';
import { confirmParam, pendingNote } from './config.js';

type Opts = RemoteOptions & { json?: boolean; confirm?: string; all?: boolean; app?: string };
type Run = (s: Promise<CommandStatus>) => void;

const destination = (p: ProposalJson) =>
  `${p.direction === 'incoming' ? 'from' : 'to'} ${p.remote ?? 'any'} ${p.protocol}${p.port !== undefined ? `/${p.port}` : ''}`;

/** The selection a command line means: ids, or --all (of --app). */
function selection(ids: string[], o: Opts): { ids?: string[]; all?: boolean; application?: string } {
  if (ids.length > 0 && o.all) throw new WardenError(ErrorCode.USAGE, 'give proposal ids or --all, not both');
  if (ids.length === 0 && !o.all)
    throw new WardenError(ErrorCode.USAGE, 'which proposals? give their ids, or --all [--app PATH]', {
      suggestion: 'See them with warden proposals list.',
    });
  for (const id of ids)
    if (!/^[0-9a-f]{12}$/.test(id))
      throw new WardenError(ErrorCode.USAGE, `"${id}" is not a proposal id (12 hex digits, as listed)`, {
        suggestion: 'See them with warden proposals list.',
      });
  return {
    ...(ids.length > 0 ? { ids } : { all: true }),
    ...(o.app !== undefined ? { application: o.app } : {}),
  };
}

export function registerProposals(program: Command, run: Run, io: CommandIo): void {
  const proposals = program
    .command('proposals')
    .description("learning mode's proposed rules: review, accept, reject")
    .addHelpText(
      'after',
      `
In learning mode (warden policy mode learning) connections no rule decides are allowed, and a rule
is proposed for each application and destination. Review them, accept the ones you want as rules
and reject the rest; rejected ones are not proposed again.

Examples:
  warden proposals list
  warden proposals accept 3f2a9c0d1e4b 77aa01bc9d3e
  warden proposals accept --all --app /usr/bin/curl
  warden proposals reject --all`,
    );
  remoteOptions(
    proposals.command('list').description('the proposals, grouped by application, most seen first'),
  )
    .option('--app <path>', 'only this application')
    .option('--json', 'print as JSON')
    .action((o: Opts) =>
      run(
        withEngine(o, io, async (c) => {
          const r = await c.call(Methods.proposalsList, o.app !== undefined ? { application: o.app } : {});
          if (o.json) {
            io.out(JSON.stringify(r, null, 2));
            return 0;
          }
          if (r.proposals.length === 0)
            io.out(
              'No proposals. In learning mode (warden policy mode learning) connections no rule decides are proposed as rules.',
            );
          let app: string | undefined;
          let rows: string[][] = [];
          const flush = () => {
            if (app === undefined) return;
            io.out(`\n${app} (${rows.length})`);
            io.out(renderTable(['id', 'direction', 'destination', 'seen', 'first seen', 'last seen'], rows));
            rows = [];
          };
          for (const p of r.proposals) {
            if (p.application !== app) {
              flush();
              app = p.application;
            }
            rows.push([p.id, p.direction, destination(p), String(p.count), p.firstSeen, p.lastSeen]);
          }
          flush();
          if (r.notStored > 0)
            io.out(
              `\n${r.notStored} more were seen while ${r.cap} proposals were waiting (the cap): accept or reject some.`,
            );
          if (r.proposals.length > 0)
            io.out(
              '\nAccept: warden proposals accept ID... | --all [--app PATH]; reject: warden proposals reject ...',
            );
          return 0;
        }),
      ),
    );
  remoteOptions(
    proposals
      .command('accept')
      .description('make proposals rules (added last, one change for all)')
      .argument('[ids...]', 'proposal ids from `warden proposals list`'),
  )
    .option('--all', 'every proposal (of --app when given)')
    .option('--app <path>', 'only proposals of this application')
    .option(
      '--confirm <seconds>',
      'roll back by itself unless `warden config confirm` comes within this time',
    )
    .option('--json', 'print as JSON')
    .action((ids: string[], o: Opts) =>
      run(
        withEngine(o, io, async (c) => {
          const r = await c.call(Methods.proposalsAccept, {
            ...selection(ids, o),
            ...confirmParam(o.confirm),
          });
          if (o.json) io.out(JSON.stringify(r, null, 2));
          else if (r.accepted.length === 0) io.out('No proposals matched; nothing changed.');
          else {
            io.out(
              `Added ${r.accepted.length} ${r.accepted.length === 1 ? 'rule' : 'rules'} (last in the list):`,
            );
            for (const a of r.accepted) io.out(`  "${String(a.rule.name)}"`);
            io.out(
              `${pendingNote(r.pending).trimStart()}${r.pending ? '\n' : ''}Undo: warden config rollback ${(r.version ?? 2) - 1} (or warden rules remove NAME)`,
            );
          }
          return 0;
        }),
      ),
    );
  remoteOptions(
    proposals
      .command('reject')
      .description('reject proposals: they are not proposed again')
      .argument('[ids...]', 'proposal ids from `warden proposals list`'),
  )
    .option('--all', 'every proposal (of --app when given)')
    .option('--app <path>', 'only proposals of this application')
    .option('--json', 'print as JSON')
    .action((ids: string[], o: Opts) =>
      run(
        withEngine(o, io, async (c) => {
          const r = await c.call(Methods.proposalsReject, selection(ids, o));
          if (o.json) io.out(JSON.stringify(r, null, 2));
          else
            io.out(
              r.rejected.length === 0
                ? 'No proposals matched; nothing changed.'
                : `Rejected ${r.rejected.length}: ${r.rejected.join(' ')}. They are not proposed again.`,
            );
          return 0;
        }),
      ),
    );
}
