/** `warden rules list|show|add|update|remove|move|enable|disable`: an engine's rules. */
import type { Command } from 'commander';
import { parse as parseYaml } from 'yaml';
import { ErrorCode, WardenError } from '../../errors.js';
import { durationSeconds } from '../../policy/duration.js';
import { Methods, type RuleJson } from '../../protocol/methods.js';
import type { CommandIo, CommandStatus } from '../io.js';
import { type RemoteOptions, remoteOptions, withEngine } from '../remote.js';
import { renderTable } from '../render/table.js';
import { confirmParam, pendingNote } from './config.js';

type Opts = RemoteOptions & {
  json?: boolean;
  internal?: boolean;
  position?: string;
  confirm?: string;
  pin?: boolean;
  since?: string;
};

/** `30d`, `12h`, `45m`, `90s`, `2w` in milliseconds; a usage error naming the option otherwise. */
export function parseDuration(text: string, option = '--since'): number {
  const seconds = durationSeconds(text);
  if (seconds === null)
    throw new WardenError(
      ErrorCode.USAGE,
      `${option} "${text}" is not a duration: write a whole number and a unit, s m h d or w (e.g. 30d, 12h)`,
      { suggestion: 'For example: warden rules unused --since 30d' },
    );
  return seconds * 1000;
}

/** When a rule last matched, relative and short ("3 min ago"), or "never". */
export function lastMatchText(at: unknown, now = Date.now()): string {
  if (typeof at !== 'string') return 'never';
  const s = Math.max(0, Math.round((now - Date.parse(at)) / 1000));
  if (s < 60) return `${s} s ago`;
  if (s < 3600) return `${Math.round(s / 60)} min ago`;
  if (s < 86400) return `${Math.round(s / 3600)} h ago`;
  return `${Math.round(s / 86400)} d ago`;
}

const CONFIRM_HELP = 'roll back by itself unless `warden config confirm` comes within this time';

function cell(v: unknown): string {
  if (v === undefined) return 'any';
  return Array.isArray(v) ? v.join(',') : String(v);
}

/** Parses a rule written inline as YAML/JSON, e.g. '{ name: ssh, direction: incoming, protocol: tcp, localPorts: 22, action: allow }'. */
function parseRuleText(text: string): Record<string, unknown> {
  let v: unknown;
  try {
    v = parseYaml(text);
  } catch (e) {
    throw new WardenError(
      ErrorCode.USAGE,
      `the rule is not valid YAML/JSON: ${(e as Error).message.split('\n')[0]}`,
      {
        suggestion:
          "Quote it for the shell: warden rules add '{ name: ssh, direction: incoming, protocol: tcp, localPorts: 22, action: allow }'",
      },
    );
  }
  if (v === null || typeof v !== 'object' || Array.isArray(v))
    throw new WardenError(
      ErrorCode.USAGE,
      'a rule is a mapping of fields, e.g. { name: x, direction: outgoing, action: deny }',
    );
  return v as Record<string, unknown>;
}

/** An invalid rule refused by the engine gets a hint: the fields a rule has and a command that works. */
async function withRuleHint<T>(call: Promise<T>, verb: 'add' | 'update'): Promise<T> {
  try {
    return await call;
  } catch (e) {
    if (!(e instanceof WardenError) || e.code !== ErrorCode.POLICY_INVALID || e.suggestion !== undefined)
      throw e;
    throw new WardenError(e.code, e.message, {
      problems: e.problems,
      suggestion:
        'A rule has name, direction (incoming, outgoing, both) and action (allow, deny, reject, ask), and may have ' +
        'protocol, application, sha256, user, localPorts, remotePorts, remote, interface, parent, ancestor, arguments, log, condition, enabled, expires, comment ' +
        '(docs/policy.md). ' +
        `For example: warden rules ${verb} ${verb === 'update' ? 'NAME ' : ''}'{ name: web, direction: outgoing, protocol: tcp, remotePorts: 443, action: allow }'`,
    });
  }
}

function position(text: string | undefined): number | undefined {
  if (text === undefined) return undefined;
  if (!/^\d+$/.test(text))
    throw new WardenError(ErrorCode.USAGE, `position "${text}" is not a whole number (1 = first)`, {
      suggestion: 'Positions count from 1; `warden rules list` shows the current order.',
    });
  if (Number(text) < 1)
    throw new WardenError(ErrorCode.USAGE, `position ${text} is out of range: positions count from 1`, {
      suggestion: 'Use 1 for the first place; `warden rules list` shows the current order.',
    });
  return Number(text) - 1;
}

/** Warnings about a stored rule go to stderr as `warning: ...` (the rule is kept). */
function printWarnings(warnings: readonly { message: string }[] | undefined, io: CommandIo): void {
  for (const w of warnings ?? []) io.err(`warning: ${w.message}`);
}

/** `positions`: each rule's place in the whole list (from 0) when `rules` is a part of it. */
function printRules(rules: RuleJson[], io: CommandIo, internal = false, positions?: number[]): void {
  io.out(
    renderTable(
      [
        internal ? 'id' : '#',
        'name',
        'action',
        'direction',
        'protocol',
        'application',
        'local port',
        'remote port',
        'remote',
        'enabled',
        'matches',
        'last match',
      ],
      rules.map((r, i) => [
        internal ? String(r.id) : String((positions?.[i] ?? i) + 1),
        // A rule included from a subscription (docs/policy.md, "Included rules") is the subscription's.
        typeof r.subscription === 'string'
          ? `${String(r.name)} (included: ${r.subscription}, read-only)`
          : String(r.name),
        String(r.action),
        String(r.direction),
        String(r.protocol),
        String(r.application),
        cell(r.localPorts),
        cell(r.remotePorts),
        cell(r.remote),
        r.enabled === false ? 'no' : 'yes',
        String(r.matches ?? 0),
        lastMatchText(r.lastMatch),
      ]),
    ),
  );
}

export function registerRules(
  program: Command,
  run: (s: Promise<CommandStatus>) => void,
  io: CommandIo,
): void {
  const rules = program.command('rules').description("an engine's ordered rules (the first match decides)");
  remoteOptions(
    rules
      .command('list')
      .description('list the rules; --internal also shows the hidden internal rules (read-only)'),
  )
    .option('--internal', 'also list the internal rules')
    .option('--json', 'print as JSON')
    .action((o: Opts) =>
      run(
        withEngine(o, io, async (c) => {
          const r = await c.call(Methods.rulesList, { internal: Boolean(o.internal) });
          if (o.json) io.out(JSON.stringify(r, null, 2));
          else {
            if (r.rules.length === 0) io.out('No user rules: the defaults decide everything.');
            else printRules(r.rules, io);
            if (r.internal) {
              io.out('\nInternal rules (evaluated first, read-only):');
              printRules(r.internal, io, true);
            }
          }
          return 0;
        }),
      ),
    );
  remoteOptions(
    rules
      .command('unused')
      .description('list the rules nothing matched within a time (never, or not since then)'),
  )
    .requiredOption('--since <duration>', 'how far back: 30d, 12h, 45m, 90s or 2w')
    .option('--internal', 'also look at the internal rules')
    .option('--json', 'print as JSON')
    .action((o: Opts) =>
      run(
        (async () => {
          const window = parseDuration(o.since ?? '');
          return withEngine(o, io, async (c) => {
            const r = await c.call(Methods.rulesList, { internal: Boolean(o.internal) });
            // The window is measured on this console's clock against the engine's last match times.
            const cut = Date.now() - window;
            const idle = (x: RuleJson) => typeof x.lastMatch !== 'string' || Date.parse(x.lastMatch) < cut;
            const positions = r.rules.flatMap((x, i) => (idle(x) ? [i] : []));
            const rules = positions.map((i) => r.rules[i]!);
            const internal = r.internal?.filter(idle);
            if (o.json) io.out(JSON.stringify({ rules, ...(internal ? { internal } : {}) }, null, 2));
            else {
              if (rules.length === 0) io.out(`Every rule matched within ${o.since}.`);
              else {
                io.out(`Rules nothing matched within ${o.since}:`);
                printRules(rules, io, false, positions);
              }
              if (internal !== undefined && internal.length > 0) {
                io.out(`\nInternal rules nothing matched within ${o.since}:`);
                printRules(internal, io, true);
              }
            }
            return 0;
          });
        })(),
      ),
    );
  remoteOptions(rules.command('show').description('show one rule').argument('<name>'))
    .option('--json', 'print as JSON')
    .action((name: string, o: Opts) =>
      run(
        withEngine(o, io, async (c) => {
          const r = await c.call(Methods.rulesGet, { name });
          io.out(o.json ? JSON.stringify(r, null, 2) : `#${r.position + 1} ${JSON.stringify(r.rule)}`);
          return 0;
        }),
      ),
    );
  remoteOptions(
    rules
      .command('add')
      .description('add a rule written as YAML/JSON')
      .argument(
        '<rule>',
        "e.g. '{ name: ssh, direction: incoming, protocol: tcp, localPorts: 22, action: allow }'",
      ),
  )
    .option('--position <n>', 'place it at position n (1 = first; default: last)')
    .option(
      '--pin',
      "pin the rule to the application's current SHA-256 on the engine host (the rule then matches only that file)",
    )
    .option('--confirm <seconds>', CONFIRM_HELP)
    .option('--json', 'print as JSON')
    .action((text: string, o: Opts) =>
      run(
        withEngine(o, io, async (c) => {
          const pos = position(o.position);
          const rule = parseRuleText(text);
          if (o.pin) {
            const app = rule.application;
            if (typeof app !== 'string' || !app.startsWith('/'))
              throw new WardenError(
                ErrorCode.USAGE,
                '--pin needs a rule with an application (an absolute path)',
                {
                  suggestion:
                    "e.g. warden rules add --pin '{ name: curl, direction: outgoing, application: /usr/bin/curl, action: allow }'",
                },
              );
            if (rule.sha256 !== undefined)
              throw new WardenError(
                ErrorCode.USAGE,
                '--pin fills in sha256: leave sha256 out of the rule, or --pin',
              );
            rule.sha256 = (await c.call(Methods.programsHash, { path: app })).sha256;
          }
          const r = await withRuleHint(
            c.call(Methods.rulesAdd, {
              rule,
              ...(pos === undefined ? {} : { position: pos }),
              ...confirmParam(o.confirm),
            }),
            'add',
          );
          io.out(
            o.json
              ? JSON.stringify(r, null, 2)
              : `Added "${r.rule.name}" at position ${r.position + 1}.${pendingNote(r.pending)}`,
          );
          printWarnings(r.warnings, io);
          return 0;
        }),
      ),
    );
  remoteOptions(
    rules
      .command('update')
      .description('replace a rule (keeps its position)')
      .argument('<name>')
      .argument('<rule>', 'the new rule as YAML/JSON'),
  )
    .option('--confirm <seconds>', CONFIRM_HELP)
    .option('--json', 'print as JSON')
    .action((name: string, text: string, o: Opts) =>
      run(
        withEngine(o, io, async (c) => {
          const r = await withRuleHint(
            c.call(Methods.rulesUpdate, { name, rule: parseRuleText(text), ...confirmParam(o.confirm) }),
            'update',
          );
          io.out(o.json ? JSON.stringify(r, null, 2) : `Updated "${name}".${pendingNote(r.pending)}`);
          printWarnings(r.warnings, io);
          return 0;
        }),
      ),
    );
  remoteOptions(rules.command('remove').description('remove a rule').argument('<name>'))
    .option('--confirm <seconds>', CONFIRM_HELP)
    .action((name: string, o: Opts) =>
      run(
        withEngine(o, io, async (c) => {
          const r = await c.call(Methods.rulesRemove, { name, ...confirmParam(o.confirm) });
          io.out(`Removed "${name}".${pendingNote(r.pending)}`);
          return 0;
        }),
      ),
    );
  remoteOptions(
    rules
      .command('move')
      .description('move a rule to a position (1 = first)')
      .argument('<name>')
      .argument('<position>'),
  )
    .option('--confirm <seconds>', CONFIRM_HELP)
    .action((name: string, pos: string, o: Opts) =>
      run(
        withEngine(o, io, async (c) => {
          const r = await c.call(Methods.rulesMove, {
            name,
            position: position(pos)!,
            ...confirmParam(o.confirm),
          });
          io.out(`Moved "${name}" to position ${r.position + 1}.${pendingNote(r.pending)}`);
          return 0;
        }),
      ),
    );
  for (const [verb, enabled] of [
    ['enable', true],
    ['disable', false],
  ] as const) {
    remoteOptions(rules.command(verb).description(`${verb} a rule`).argument('<name>')).action(
      (name: string, o: Opts) =>
        run(
          withEngine(o, io, async (c) => {
            const { rule } = await c.call(Methods.rulesGet, { name });
            await c.call(Methods.rulesUpdate, { name, rule: { ...rule, enabled } });
            io.out(`${enabled ? 'Enabled' : 'Disabled'} "${name}".`);
            return 0;
          }),
        ),
    );
  }
}
