/** `warden logs [filters] [--follow]`: an engine's log items, stored and live. */
import type { Command } from 'commander';
import type { EngineClient } from '../../client/engine-client.js';
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
import { usageFromIssue } from './options.js';

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
  readonly reverse?: boolean;
}

/** Items per answer asked for when paging (the protocol's largest `limit`). */
const PAGE = 10_000;
/** Items printed without --limit when no range is given (journalctl -n prints 10; a screenful or so). */
export const DEFAULT_NEWEST = 100;

/** A whole number given to `option`, at least 1. */
function count(text: string | undefined, option: string): number | undefined {
  if (text === undefined) return undefined;
  if (!/^[0-9]+$/.test(text) || Number(text) < 1)
    throw new WardenError(ErrorCode.USAGE, `${option} "${text}" is not a whole number of at least 1`, {
      suggestion: `For example: warden logs ${option} 100`,
    });
  return Number(text);
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
    ...(o.fromSeq ? { fromSeq: count(o.fromSeq, '--from-seq') } : {}),
  };
  const r = logQuerySchema.safeParse(raw);
  if (!r.success) {
    const option = (field: string) =>
      ({ application: '--app', fromSeq: '--from-seq' })[field] ?? `--${field}`;
    // The numbers as typed ("abc", not NaN) for the message.
    const input = { ...raw, limit: o.limit, fromSeq: o.fromSeq };
    throw usageFromIssue(r.error.issues[0]!, { command: 'warden logs', input, option });
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

/**
 * Stored items, printed oldest first (newest first with --reverse):
 * - no --limit and a range (--since, --until or --from-seq): the whole range, page after page;
 * - otherwise the newest --limit (default 100) matches, like `journalctl -n`; from --from-seq on,
 *   the first --limit from there.
 */
async function stored(
  client: EngineClient,
  q: LogQueryParsed,
  o: LogsOptions,
  print: (items: readonly LogItem[]) => void,
): Promise<void> {
  const limit = count(o.limit, '--limit');
  const range = o.since !== undefined || o.until !== undefined || o.fromSeq !== undefined;
  const wanted = limit ?? (range ? Number.POSITIVE_INFINITY : DEFAULT_NEWEST);
  if (o.fromSeq !== undefined && !o.reverse) {
    // Oldest first from a seq: pages go forward and print as they come.
    let left = wanted;
    for (let from = q.fromSeq!; left > 0; ) {
      const r = await client.call(Methods.logsQuery, { ...q, fromSeq: from, limit: Math.min(PAGE, left) });
      print(r.items);
      left -= r.items.length;
      const last = r.searchedTo ?? r.items.at(-1)?.seq;
      if (
        last === undefined ||
        (r.searchedTo === undefined && r.items.length < Math.min(PAGE, left + r.items.length))
      )
        return;
      from = last + 1;
    }
    return;
  }
  // Newest first, page after page downwards; kept only when they must be printed oldest first.
  const kept: LogItem[] = [];
  let left = wanted;
  let before: number | undefined;
  while (left > 0) {
    const r = await client.call(Methods.logsQuery, {
      ...q,
      order: 'newest',
      limit: Math.min(PAGE, left),
      ...(before !== undefined ? { beforeSeq: before } : {}),
    });
    if (o.reverse) print(r.items);
    else kept.push(...r.items);
    left -= r.items.length;
    const next =
      r.searchedTo ??
      (r.items.length === Math.min(PAGE, left + r.items.length) ? r.items.at(-1)?.seq : undefined);
    if (next === undefined || next <= (q.fromSeq ?? 1)) break;
    before = next;
  }
  if (!o.reverse) print(kept.reverse());
}

export async function logs(o: LogsOptions, io: CommandIo): Promise<CommandStatus> {
  const q = query(o);
  count(o.limit, '--limit'); // a bad value is a usage error before any connection
  if (o.follow && (o.limit !== undefined || o.reverse))
    throw new WardenError(
      ErrorCode.USAGE,
      '--follow prints new items as they come: not with --limit or --reverse',
      {
        suggestion: 'Print the newest first (warden logs --limit 20), then follow (warden logs --follow).',
      },
    );
  const { client } = await openEngine(o, io);
  const print = (items: readonly LogItem[]) => {
    for (const i of items) if (logItemMatches(i, q)) io.out(o.json ? JSON.stringify(i) : formatItem(i));
  };
  if (!o.follow) {
    try {
      await stored(client, q, o, print);
      return 0;
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
    .option(
      '-n, --limit <n>',
      `the newest n items (default ${DEFAULT_NEWEST}; without it --since/--until/--from-seq print the whole range)`,
    )
    .option('--from-seq <n>', 'items from sequence number n on (with --limit: the first n from there)')
    .option('-r, --reverse', 'newest first')
    .option('-f, --follow', 'keep printing new items as they arrive')
    .option('--tcp', 'with --follow: receive over the TCP channel instead of UDP')
    .option('--json', 'one JSON object per line')
    .addHelpText(
      'after',
      `
Items print oldest first, ending with the newest (like journalctl); --reverse starts with the newest.

Examples:
  warden logs                                   the newest ${DEFAULT_NEWEST} items
  warden logs -n 20 --verdict deny              the newest 20 blocked connections
  warden logs --since 2026-11-23T00:00:00Z      everything since then, however many
  warden logs --kind admin --reverse | less     the audit trail, newest first
  warden logs --follow --kind connection --engine office`,
    )
    .action((o: LogsOptions) => run(logs(o, io)));
}
