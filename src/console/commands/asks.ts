/**
 * `warden asks list|answer|watch`: connections an `ask` rule holds on an engine, and the
 * administrator's answer (allow or deny; once, for N minutes, or always; for the application,
 * the port or the host).
 */
import type { Command } from 'commander';
import { ErrorCode, WardenError } from '../../errors.js';
import { type AskPrompt, type AskResolution, askAnswerSchema } from '../../protocol/asks.js';
import { Methods, Notifications } from '../../protocol/methods.js';
import type { CommandIo, CommandStatus } from '../io.js';
import { openEngine, type RemoteOptions, remoteOptions, untilInterrupted, withEngine } from '../remote.js';
import { usageFromIssue } from './options.js';

export interface AsksOptions extends RemoteOptions {
  readonly json?: boolean;
}

export interface AnswerOptions extends AsksOptions {
  readonly allow?: boolean;
  readonly deny?: boolean;
  readonly once?: boolean;
  readonly for?: string;
  readonly always?: boolean;
  readonly scope?: string;
}

/** One prompt as a line: what is waiting, for how long, and what happens if nobody answers. */
export function formatPrompt(p: AskPrompt, now = Date.now()): string {
  const left = Math.max(0, Math.round((Date.parse(p.expiresAt) - now) / 1000));
  const who = [
    p.application ?? 'unknown application',
    p.pid ? `pid ${p.pid}` : '',
    p.user ? `user ${p.user}` : '',
  ]
    .filter(Boolean)
    .join(', ');
  const arrow = p.direction === 'incoming' ? '<-' : '->';
  const host = p.hosts.length > 0 ? ` (${p.hosts.join(', ')})` : '';
  const change = p.change ? `  CHANGED: ${p.change}` : '';
  return `${p.id}  ${p.protocol.toUpperCase()} ${p.local} ${arrow} ${p.remote}${host}  ${who}  rule "${p.rule}"  ${left}s left, then ${p.defaultVerdict}${change}`;
}

function formatResolution(r: AskResolution): string {
  const by =
    r.by === 'console'
      ? `answered by ${r.user ?? 'a console'}`
      : r.by === 'timeout'
        ? 'no answer in time'
        : 'engine stopped';
  return `${r.id}  ${r.verdict.toUpperCase()}  ${by}${r.rule ? `; rule "${r.rule}" added` : ''}`;
}

export async function asksList(o: AsksOptions, io: CommandIo): Promise<CommandStatus> {
  return withEngine(o, io, async (client) => {
    const { prompts } = await client.call(Methods.asksList, {});
    if (o.json) io.out(JSON.stringify(prompts, null, 2));
    else if (prompts.length === 0) io.out('no connection is waiting for an answer');
    else for (const p of prompts) io.out(formatPrompt(p));
    return 0;
  });
}

/** Turns the answer flags into asks.answer params, refusing contradictions. */
export function answerParams(id: string, o: AnswerOptions) {
  if (o.allow === o.deny) {
    throw new WardenError(ErrorCode.USAGE, 'say --allow or --deny (exactly one)', {
      suggestion: 'e.g. warden asks answer ID --allow --always --scope port',
    });
  }
  const durations = [o.once, o.for !== undefined, o.always].filter(Boolean).length;
  if (durations > 1) {
    throw new WardenError(ErrorCode.USAGE, '--once, --for and --always exclude each other', {
      suggestion: 'Give one of them; without any, the answer is for this connection only (--once).',
    });
  }
  if (o.for !== undefined && !/^[0-9]+$/.test(o.for)) {
    throw new WardenError(ErrorCode.USAGE, `--for "${o.for}" is not a number of minutes`, {
      suggestion: 'e.g. --for 30 (minutes, 1-43200)',
    });
  }
  const r = askAnswerSchema.safeParse({
    id,
    verdict: o.allow ? 'allow' : 'deny',
    duration: o.always ? 'always' : o.for !== undefined ? 'temporary' : 'once',
    ...(o.for !== undefined ? { minutes: Number(o.for) } : {}),
    ...(o.scope !== undefined ? { scope: o.scope } : {}),
  });
  if (!r.success) {
    const option = (field: string) => ({ minutes: '--for', id: 'ID' })[field] ?? `--${field}`;
    const input = { id, minutes: o.for === undefined ? undefined : Number(o.for), scope: o.scope };
    const next = (field: string) =>
      field === 'id' ? 'The IDs of the waiting prompts: `warden asks list`.' : undefined;
    throw usageFromIssue(r.error.issues[0]!, { command: `warden asks answer ${id}`, input, option, next });
  }
  return r.data;
}

export async function asksAnswer(id: string, o: AnswerOptions, io: CommandIo): Promise<CommandStatus> {
  const params = answerParams(id, o);
  return withEngine(o, io, async (client) => {
    const r = await client.call(Methods.asksAnswer, params);
    io.out(o.json ? JSON.stringify(r, null, 2) : formatResolution(r));
    return 0;
  });
}

export async function asksWatch(o: AsksOptions, io: CommandIo): Promise<CommandStatus> {
  const { client, name } = await openEngine(o, io);
  client.onNotification((method, params) => {
    if (method === Notifications.askPrompt) {
      const p = params as AskPrompt;
      io.out(o.json ? JSON.stringify({ prompt: p }) : `ASK   ${formatPrompt(p)}`);
    } else if (method === Notifications.askResolved) {
      const r = params as AskResolution;
      io.out(o.json ? JSON.stringify({ resolved: r }) : `DONE  ${formatResolution(r)}`);
    }
  });
  const { prompts } = await client.call(Methods.asksList, {});
  for (const p of prompts) io.out(o.json ? JSON.stringify({ prompt: p }) : `ASK   ${formatPrompt(p)}`);
  io.err(
    `(watching ${name} for ask prompts; answer with: warden asks answer ID --allow|--deny; Ctrl-C to stop)`,
  );
  return untilInterrupted(client, io);
}

export function registerAsks(
  program: Command,
  run: (s: Promise<CommandStatus>) => void,
  io: CommandIo,
): void {
  const asks = program
    .command('asks')
    .description('connections held by an `ask` rule: list, answer, watch')
    .addHelpText(
      'after',
      '\nExamples:\n  warden asks watch\n  warden asks answer 3f2a9c01d4e5b6a7 --allow --always --scope port\n  warden asks answer 3f2a9c01d4e5b6a7 --deny --for 60 --scope host',
    );
  remoteOptions(asks.command('list').description('the connections waiting for an answer'))
    .option('--json', 'as JSON')
    .action((o: AsksOptions) => run(asksList(o, io)));
  remoteOptions(asks.command('answer <id>').description('answer a prompt (administrators only)'))
    .option('--allow', 'let the connection through')
    .option('--deny', 'block the connection')
    .option('--once', 'only this connection (the default)')
    .option('--for <minutes>', 'add a rule that expires after this many minutes')
    .option('--always', 'add a permanent rule')
    .option('--scope <scope>', 'what the rule covers: application (default), port or host')
    .option('--json', 'as JSON')
    .action((id: string, o: AnswerOptions) => run(asksAnswer(id, o, io)));
  remoteOptions(asks.command('watch').description('print prompts as they arrive and how they end'))
    .option('--json', 'one JSON object per line')
    .action((o: AsksOptions) => run(asksWatch(o, io)));
}
