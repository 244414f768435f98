/** `warden logs [filters] [--follow]`: an engine's log items, stored and live. */
import type { Command } from 'commander';
import { ErrorCode, WardenError } from '../../errors.js';
import {
  type LogItem,
  type LogQueryParsed,
  logItemMatches,
  logQuerySchema,
} from '../../protocol/log-item.js';
import { Methods } from '../../protocol/methods.js';
import type { CommandIo, CommandStatus } from '../io.js';
import { openEngine, type RemoteOptions, remoteOptions, untilInterrupted } from '../remote.js';

export interface LogsOptions extends RemoteOptions {
  readonly kind?: string;
  readonly verdict?: string;
  readonly app?: string;
  readonly address?: string;
  readonly since?: string;
  readonly until?: string;
  readonly text?: string;
  readonly limit?: string;
  readonly fromSeq?: string;
  readonly follow?: boolean;
  readonly tcp?: boolean;
  readonly json?: boolean;
}

function query(o: LogsOptions): LogQueryParsed {
  const raw = {
    ...(o.kind ? { kind: o.kind } : {}),
    ...(o.verdict ? { verdict: o.verdict } : {}),
    ...(o.app ? { application: o.app } : {}),
    ...(o.address ? { address: o.address } : {}),
    ...(o.since ? { since: o.since } : {}),
    ...(o.until ? { until: o.until } : {}),
    ...(o.text ? { text: o.text } : {}),
    ...(o.limit ? { limit: Number(o.limit) } : {}),
    ...(o.fromSeq ? { fromSeq: Number(o.fromSeq) } : {}),
  };
  const r = logQuerySchema.safeParse(raw);
  if (!r.success) {
    const i = r.error.issues[0]!;
    throw new WardenError(ErrorCode.USAGE, `--${String(i.path[0] ?? 'filter')}: ${i.message}`, {
      suggestion: 'See `warden logs --help`.',
    });
  }
  return r.data;
}

/** One log item as a line. */
export function formatItem(i: LogItem): string {
  const parts = [i.time, `#${i.seq}`, i.kind];
  if (i.verdict) parts.push(i.verdict.toUpperCase());
  if (i.application) parts.push(i.application);
  if (i.local || i.remote)
    parts.push(
      `${i.local ?? '?'} ${i.direction === 'incoming' ? '<-' : '->'} ${i.remote ?? '?'}${i.host ? ` (${i.host})` : ''}`,
    );
  if (i.rule) parts.push(`rule "${i.rule}"`);
  if (i.user) parts.push(`by ${i.user}${i.source ? `@${i.source}` : ''}`);
  parts.push(i.message);
  // Repeats of one connection attempt (retransmits) stored as one item.
  if (i.count !== undefined) parts.push(`x${i.count}`);
  return parts.join('  ');
}

export async function logs(o: LogsOptions, io: CommandIo): Promise<CommandStatus> {
  const q = query(o);
  const { client } = await openEngine(o, io);
  const print = (items: readonly LogItem[]) => {
    for (const i of items) if (logItemMatches(i, q)) io.out(o.json ? JSON.stringify(i) : formatItem(i));
  };
  if (!o.follow) {
    try {
      // A text search over many items comes in parts (searchedTo): ask on until done or the limit is reached.
      let left = q.limit;
      for (let from = q.fromSeq; ; ) {
        const r = await client.call(Methods.logsQuery, {
          ...q,
          limit: left,
          ...(from ? { fromSeq: from } : {}),
        });
        print(r.items);
        left -= r.items.length;
        if (r.searchedTo === undefined || left <= 0) return 0;
        from = r.searchedTo + 1;
      }
    } finally {
      client.close();
    }
  }
  // Follow: print what is stored (when asked with --from-seq), then everything new, until interrupted.
  let after: number | undefined;
  if (o.fromSeq) {
    const r = await client.call(Methods.logsQuery, q);
    print(r.items);
    after = r.items.at(-1)?.seq ?? r.lastSeq;
  }
  client.onTransport((t, reason) => io.err(`(log items now arrive over ${t.toUpperCase()}: ${reason})`));
  const follower = await client.follow(print, {
    udp: !o.tcp,
    ...(after === undefined ? {} : { afterSeq: after }),
  });
  io.err(
    `(following ${o.engine ?? 'the default engine'}; log items over ${follower.transport === 'pending' ? 'UDP once registered' : follower.transport.toUpperCase()}; Ctrl-C to stop)`,
  );
  return untilInterrupted(client, io, () => follower.stop());
}

export function registerLogs(
  program: Command,
  run: (s: Promise<CommandStatus>) => void,
  io: CommandIo,
): void {
  remoteOptions(
    program.command('logs').description("an engine's log items, filtered; --follow streams new ones live"),
  )
    .option('--kind <kind>', 'connection, security, admin or system')
    .option('--verdict <verdict>', 'allow, deny, reject or ask')
    .option('--app <path>', 'executable path')
    .option('--address <ip>', 'local or remote address')
    .option('--since <instant>', 'ISO 8601 instant')
    .option('--until <instant>', 'ISO 8601 instant')
    .option('--text <text>', 'words in the message, application, host or rule')
    .option('--limit <n>', 'at most n items (default 1000)')
    .option('--from-seq <n>', 'items from sequence number n on')
    .option('-f, --follow', 'keep printing new items as they arrive')
    .option('--tcp', 'with --follow: receive over the TCP channel instead of UDP')
    .option('--json', 'one JSON object per line')
    .addHelpText(
      'after',
      '\nExamples:\n  warden logs --verdict deny --since 2026-11-23T00:00:00Z\n  warden logs --follow --kind connection --engine office',
    )
    .action((o: LogsOptions) => run(logs(o, io)));
}
