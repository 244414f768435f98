/** `warden hints`: which ports to open in a network firewall, for both situations, as ready rules (offline). */
import type { Command } from 'commander';
import { ErrorCode, WardenError } from '../../errors.js';
import { type FirewallHints, firewallHints, RULE_FORMATS, type RuleFormat } from '../../hints/index.js';
import { formatIp, parseIp } from '../../ip/index.js';
import { DEFAULT_PORT } from '../engines.js';
import type { CommandIo, CommandStatus } from '../io.js';

export interface HintsOptions {
  readonly port?: string;
  readonly engine?: string;
  readonly console?: string;
  readonly format?: string;
  readonly json?: boolean;
}

const FORMATS: readonly string[] = [...RULE_FORMATS, 'all'];

const TOOL_TITLES: Record<RuleFormat, string> = {
  nftables: 'nftables (nft -f FILE)',
  iptables: 'iptables / ip6tables',
  ufw: 'ufw',
  firewalld: 'firewalld (firewall-cmd)',
};

function parsePort(text: string | undefined): number {
  if (text === undefined) return DEFAULT_PORT;
  if (!/^[0-9]{1,5}$/.test(text) || Number(text) < 1 || Number(text) > 65535) {
    throw new WardenError(ErrorCode.USAGE, `--port "${text}" is not a port number (1-65535)`, {
      suggestion: `Give the engine's application port, e.g. --port ${DEFAULT_PORT} (the default)`,
    });
  }
  return Number(text);
}

function parseAddress(text: string | undefined, option: string): string | undefined {
  if (text === undefined) return undefined;
  const address = parseIp(text);
  if (address === null) {
    throw new WardenError(ErrorCode.USAGE, `${option} "${text}" is not an IPv4 or IPv6 address`, {
      suggestion: `Firewall rules need an address, not a name or a network: e.g. ${option} 192.0.2.10 or ${option} 2001:db8::10; leave ${option} out to allow any address`,
    });
  }
  return formatIp(address);
}

function parseFormat(text: string | undefined): RuleFormat | 'all' {
  const format = (text ?? 'all').toLowerCase();
  if (!FORMATS.includes(format)) {
    throw new WardenError(ErrorCode.USAGE, `--format "${text}" is not one of ${FORMATS.join(', ')}`, {
      suggestion: 'e.g. --format nftables; leave --format out for all of them',
    });
  }
  return format as RuleFormat | 'all';
}

/** Wraps a paragraph to `width` columns. */
function wrap(paragraph: string, width = 78): string {
  const lines: string[] = [];
  let line = '';
  for (const word of paragraph.split(/\s+/).filter((w) => w !== '')) {
    if (line !== '' && line.length + 1 + word.length > width) {
      lines.push(line);
      line = word;
    } else line = line === '' ? word : `${line} ${word}`;
  }
  if (line !== '') lines.push(line);
  return lines.join('\n');
}

/** Prints both situations with their explanation and rules. */
export async function hints(options: HintsOptions, io: CommandIo): Promise<CommandStatus> {
  const applicationPort = parsePort(options.port);
  const engineAddress = parseAddress(options.engine, '--engine');
  const consoleAddress = parseAddress(options.console, '--console');
  const format = parseFormat(options.format);
  let result: FirewallHints;
  try {
    result = firewallHints({
      applicationPort,
      ...(engineAddress === undefined ? {} : { engineAddress }),
      ...(consoleAddress === undefined ? {} : { consoleAddress }),
    });
  } catch (error) {
    if (!(error instanceof RangeError)) throw error;
    throw new WardenError(ErrorCode.USAGE, error.message, {
      suggestion: 'Give --engine and --console addresses of the same IP version, or leave one out',
    });
  }
  const formats = format === 'all' ? RULE_FORMATS : [format];
  if (options.json) {
    const situations = result.situations.map((s) => ({
      ...s,
      rules: Object.fromEntries(formats.map((f) => [f, s.rules[f]])),
    }));
    io.out(JSON.stringify({ ...result, situations }, null, 2));
    return 0;
  }
  io.out(
    `Firewall configuration hints for application port ${result.applicationPort} ` +
      '(TCP: configuration over TLS; UDP: live log items).',
  );
  result.situations.forEach((s, i) => {
    io.out(`\n== ${i + 1}. ${s.title} ==\n`);
    io.out(
      s.explanation
        .split('\n\n')
        .map((p) => wrap(p))
        .join('\n\n'),
    );
    for (const f of formats) {
      io.out(`\n-- ${TOOL_TITLES[f]} --\n`);
      io.out(s.rules[f].trimEnd());
    }
  });
  return 0;
}

/** Adds `warden hints` to the program. */
export function registerHints(
  program: Command,
  run: (status: Promise<CommandStatus>) => void,
  io: CommandIo,
): void {
  program
    .command('hints')
    .description(
      'print which ports to open in a network firewall (engine or console behind it), as ready rules for nftables, iptables, ufw and firewalld',
    )
    .option('--port <n>', `the engine's application port (default ${DEFAULT_PORT})`)
    .option(
      '--engine <address>',
      "restrict the rules to the engine's own IPv4 or IPv6 address (behind NAT: its local one)",
    )
    .option('--console <address>', "restrict the rules to the console's IPv4 or IPv6 address")
    .option('--format <tool>', `only the rules for one tool: ${FORMATS.join(', ')} (default all)`)
    .option('--json', 'print the hints as JSON')
    .addHelpText(
      'after',
      `
Two situations: the engine behind a firewall (open the application port for
incoming TCP and UDP to it) and the console behind a firewall (allow outgoing
TCP and UDP to the application port, and the replies: the engine's UDP log
items come back as replies to the console's registration).

Nothing is changed on this machine: the rules are printed for you to review
and apply.

Examples:
  warden hints
  warden hints --engine 192.0.2.10 --console 203.0.113.9 --format nftables
  warden hints --port 44400 --console 2001:db8::9 --json`,
    )
    .action((options: HintsOptions) => run(hints(options, io)));
}
