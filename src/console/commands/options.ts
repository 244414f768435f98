/** Parsing of option values shared by several commands; bad values throw WARDEN_E_USAGE naming the option. */
import type { Command } from 'commander';
import type { z } from 'zod';
import { closest } from '../../document.js';
import { ErrorCode, WardenError } from '../../errors.js';
import { type IpAddress, parseIp } from '../../ip/index.js';

/** An ISO 8601 instant, or now when absent. */
export function parseInstant(text: string | undefined): number {
  if (text === undefined) return Date.now();
  const ms = Date.parse(text);
  if (Number.isNaN(ms)) {
    throw new WardenError(ErrorCode.USAGE, `--at "${text}" is not a date and time`, {
      suggestion: 'Use ISO 8601, e.g. --at 2026-12-31T18:00:00Z',
    });
  }
  return ms;
}

/** A port number 1-65535 given to `option`. */
export function parsePort(text: string, option: string): number {
  if (!/^[0-9]{1,5}$/.test(text) || Number(text) < 1 || Number(text) > 65535) {
    throw new WardenError(ErrorCode.USAGE, `${option} "${text}" is not a port number (1-65535)`);
  }
  return Number(text);
}

/** An endpoint `HOST[:PORT]`, `IP[:PORT]` or `[IPv6]:PORT`; the host may be a name. */
export interface Endpoint {
  readonly address: IpAddress | null;
  readonly name: string | null;
  readonly port: number | null;
}

/** Parses an endpoint given to `option`. */
export function parseEndpoint(text: string, option: string): Endpoint {
  let host = text;
  let port: number | null = null;
  const bracket = /^\[([^\]]+)\](?::(\d+))?$/.exec(text);
  if (bracket) {
    host = bracket[1]!;
    if (bracket[2] !== undefined) port = parsePort(bracket[2], option);
  } else if ((text.match(/:/g) ?? []).length === 1) {
    const i = text.indexOf(':');
    host = text.slice(0, i);
    port = parsePort(text.slice(i + 1), option);
  }
  const address = parseIp(host);
  if (address !== null) return { address, name: null, port };
  if (!/^[a-zA-Z0-9]([a-zA-Z0-9.-]*[a-zA-Z0-9])?$/.test(host) || /^[0-9.]+$/.test(host)) {
    throw new WardenError(
      ErrorCode.USAGE,
      `${option} "${text}": "${host}" is neither an IP address nor a host name`,
      {
        suggestion: 'Write HOST:PORT, IP:PORT or [IPv6]:PORT, e.g. --to example.com:443',
      },
    );
  }
  return { address: null, name: host.toLowerCase(), port };
}

/** Adds an "Examples:" section to a command's --help (test/shape/help-examples checks every command has one). */
export function examples(cmd: Command, lines: readonly string[]): Command {
  return cmd.addHelpText('after', `\nExamples:\n${lines.map((l) => `  ${l}`).join('\n')}`);
}

/** A value as the user typed it, for an error message. */
function shown(v: unknown): string {
  if (typeof v === 'number' && !Number.isFinite(v)) return '(not a number)';
  if (typeof v === 'string' && /^-?[0-9]+(\.[0-9]+)?$/.test(v)) return v;
  return typeof v === 'string' ? `"${v}"` : (JSON.stringify(v) ?? String(v));
}

/**
 * A usage error in the user's words from a zod issue about a command's option: what is wrong, where
 * (the option as typed), what is allowed, and a corrected command to run. `option` names the option
 * of a field (default `--field`), `command` is the command line without the option, `input` the values
 * given (zod reports no input unless parsed with reportInput).
 */
export function usageFromIssue(
  issue: z.core.$ZodIssue,
  where: {
    command: string;
    input: Readonly<Record<string, unknown>>;
    option?: (field: string) => string;
    /** The next command to run when an example value would not help (e.g. where to find an id). */
    next?: (field: string) => string | undefined;
  },
): WardenError {
  const field = String(issue.path[0] ?? '');
  const option = where.option?.(field) ?? (field === '' ? 'a value' : `--${field}`);
  const value = where.input[field];
  let what: string;
  let example: string | undefined;
  // A schema's own message (not zod's default text) already says what is allowed.
  const own = !/^(Too (big|small)|Invalid)\b/.test(issue.message);
  if (own) what = `${option}: ${issue.message} (got ${shown(value)})`;
  else
    switch (issue.code) {
      case 'too_big':
        what = `${option} ${shown(value)} is too large: at most ${String(issue.maximum)}${issue.inclusive ? '' : ' (exclusive)'}`;
        example = String(issue.maximum);
        break;
      case 'too_small':
        what = `${option} ${shown(value)} is too small: at least ${String(issue.minimum)}`;
        example = String(issue.minimum);
        break;
      case 'invalid_format':
        if (issue.format === 'datetime') {
          what = `${option} ${shown(value)} is not a date and time (ISO 8601 with a time zone)`;
          example = new Date(Math.floor(Date.now() / 3_600_000) * 3_600_000)
            .toISOString()
            .replace('.000', '');
        } else what = `${option} ${shown(value)} is not a valid ${issue.format}`;
        break;
      case 'invalid_value': {
        const allowed = issue.values.map(String);
        const near = typeof value === 'string' ? closest(value, allowed) : undefined;
        what = `${option} ${shown(value)} is not one of ${allowed.join(', ')}${near ? `; did you mean "${near}"?` : ''}`;
        example = near ?? allowed[0];
        break;
      }
      case 'invalid_type':
        what =
          value === undefined
            ? `${option} is missing`
            : `${option} ${shown(value)} is not ${issue.expected === 'number' ? 'a number' : `a ${issue.expected}`}`;
        break;
      default:
        what = `${option} ${shown(value)}: ${issue.message.replace(/^Invalid input: /, '')}`;
    }
  const next =
    where.next?.(field) ??
    (example === undefined || option.startsWith('a ')
      ? `See \`${where.command} --help\` for what is allowed.`
      : `For example: ${where.command} ${option.startsWith('-') ? `${option} ` : ''}${example}`);
  return new WardenError(ErrorCode.USAGE, what, { suggestion: next });
}

/** Protocol methods a message may still name (an older engine), and the command that does the same. */
const METHOD_COMMANDS: Record<string, string> = {
  'rules.list': 'warden rules list',
  'rules.get': 'warden rules show NAME',
  'rules.add': 'warden rules add RULE',
  'rules.update': 'warden rules update NAME RULE',
  'rules.remove': 'warden rules remove NAME',
  'rules.move': 'warden rules move NAME POSITION',
  'config.history': 'warden config history',
  'config.diff': 'warden config diff',
  'config.rollback': 'warden config rollback VERSION',
  'config.confirm': 'warden config confirm',
  'config.undo': 'warden config undo VERSION',
  'lists.refresh': 'warden lists refresh NAME',
  'includes.refresh': 'warden includes refresh NAME',
  'users.list': 'warden users list',
  'users.add': 'warden users add NAME',
  'asks.list': 'warden asks list',
  'logs.query': 'warden logs',
  'settings.get': 'warden settings get',
  'settings.set': 'warden settings set KEY=VALUE',
  'session.login': 'warden connect HOST --user NAME',
};

/**
 * Text for the user with protocol method names replaced by the commands that do the same:
 * "see config.history (warden config history)" -> "see `warden config history`",
 * "use rules.update" -> "use `warden rules update NAME RULE`".
 */
export function inCommandWords(text: string): string {
  return text.replace(
    /\b([a-z]+\.[a-z][a-zA-Z]*)\b(?:(?: \/ | )\((warden [^)]*)\))?/g,
    (whole, method: string, command: string | undefined) => {
      const known = METHOD_COMMANDS[method];
      if (known === undefined) return whole;
      return `\`${command ?? known}\``;
    },
  );
}
