/** `warden policy explain FILE --app PATH --out --tcp --to HOST:PORT`: which rule decides, and why each earlier one did not. */
import { lookup } from 'node:dns/promises';
import type { Command } from 'commander';
import { ErrorCode, WardenError } from '../../errors.js';
import { fileSha256 } from '../../host-programs.js';
import { formatIp, parseIp } from '../../ip/index.js';
import { type ConnectionFacts, explain, interfaceNameProblem, ruleToPlain } from '../../policy/index.js';
import { loadCompiled } from '../files.js';
import type { CommandIo, CommandStatus } from '../io.js';
import { connectionSummary, ruleSummary } from '../render/rule-text.js';
import { type Endpoint, parseEndpoint, parseInstant, parsePort } from './options.js';

export interface PolicyExplainOptions {
  readonly settings?: string;
  readonly app?: string;
  readonly in?: boolean;
  readonly out?: boolean;
  readonly tcp?: boolean;
  readonly udp?: boolean;
  readonly icmp?: boolean;
  readonly to?: string;
  readonly from?: string;
  readonly localPort?: string;
  readonly uid?: string;
  readonly user?: string;
  readonly host?: string[];
  readonly interface?: string;
  readonly resolve?: boolean;
  readonly at?: string;
  readonly json?: boolean;
  readonly parent?: string;
  readonly ancestor?: string[];
  readonly args?: string;
}

const usage = (message: string, suggestion?: string) =>
  new WardenError(ErrorCode.USAGE, message, suggestion === undefined ? {} : { suggestion });

/** Turns the command line into connection facts (resolving a host name only with --resolve). */
export async function factsFromOptions(o: PolicyExplainOptions): Promise<ConnectionFacts> {
  if (o.in && o.out) throw usage('--in and --out exclude each other');
  if (o.to !== undefined && o.from !== undefined)
    throw usage('--to (outgoing) and --from (incoming) exclude each other');
  const direction =
    o.in || o.from !== undefined ? 'incoming' : o.out || o.to !== undefined ? 'outgoing' : undefined;
  if (direction === undefined)
    throw usage(
      'say which way the connection goes',
      'Add --out --to HOST:PORT, or --in --from HOST[:PORT] --local-port N',
    );
  if (
    (direction === 'incoming' && o.to !== undefined) ||
    (direction === 'outgoing' && o.from !== undefined)
  ) {
    throw usage(
      `${direction === 'incoming' ? '--to' : '--from'} does not fit an ${direction} connection`,
      'Use --to with --out, --from with --in',
    );
  }
  const protocols = [o.tcp && 'tcp', o.udp && 'udp', o.icmp && 'icmp'].filter(Boolean) as (
    | 'tcp'
    | 'udp'
    | 'icmp'
  )[];
  if (protocols.length > 1)
    throw usage(`choose one protocol, not ${protocols.map((p) => `--${p}`).join(' and ')}`);
  const protocol = protocols[0] ?? 'tcp';
  const remoteText = o.to ?? o.from;
  const remote: Endpoint =
    remoteText === undefined
      ? { address: null, name: null, port: null }
      : parseEndpoint(remoteText, o.to ? '--to' : '--from');
  if (protocol === 'icmp' && (remote.port !== null || o.localPort !== undefined))
    throw usage('ICMP has no ports; drop the :PORT and --local-port');
  if (o.app !== undefined && o.app !== 'any' && !o.app.startsWith('/'))
    throw usage(
      `--app "${o.app}" is not an absolute path`,
      'Give the executable path, e.g. --app /usr/bin/curl',
    );
  for (const [flag, path] of [
    ['--parent', o.parent],
    ...(o.ancestor ?? []).map((a) => ['--ancestor', a]),
  ] as const)
    if (path !== undefined && !path.startsWith('/'))
      throw usage(
        `${flag} "${path}" is not an absolute path`,
        `Give the executable path, e.g. ${flag} /usr/bin/bash`,
      );
  let uid: number | null = null;
  if (o.uid !== undefined) {
    if (!/^[0-9]+$/.test(o.uid)) throw usage(`--uid "${o.uid}" is not a number`);
    uid = Number(o.uid);
  }
  const hosts = new Set<string>((o.host ?? []).map((h) => h.toLowerCase()));
  let address = remote.address;
  if (remote.name !== null) {
    hosts.add(remote.name);
    if (o.resolve) address = await resolveName(remote.name);
  }
  return {
    direction,
    protocol,
    application: o.app === undefined || o.app === 'any' ? null : o.app,
    uid,
    user: o.user ?? null,
    localAddress: null,
    localPort: o.localPort === undefined ? null : parsePort(o.localPort, '--local-port'),
    remoteAddress: address,
    remotePort: remote.port,
    remoteHosts: [...hosts],
    ...(o.interface === undefined ? {} : { interface: interfaceOption(o.interface) }),
    now: parseInstant(o.at),
    parent: o.parent ?? null,
    ancestors: o.ancestor ?? (o.parent === undefined ? [] : [o.parent]),
    arguments: o.args ?? null,
  };
}

function interfaceOption(name: string): string {
  if (name.endsWith('*') || interfaceNameProblem(name) !== null)
    throw usage(`--interface "${name}" is not an interface name`, 'Give the name, e.g. --interface eth0');
  return name;
}

async function resolveName(name: string) {
  const timeout = new Promise<never>((_, reject) =>
    setTimeout(() => reject(new Error('timed out after 3 s')), 3000).unref(),
  );
  try {
    const answers = await Promise.race([lookup(name, { all: true }), timeout]);
    const first = answers[0];
    return first === undefined ? null : parseIp(first.address);
  } catch (cause) {
    throw new WardenError(
      ErrorCode.CONNECTION_INVALID,
      `cannot resolve ${name}: ${(cause as Error).message}`,
      {
        cause,
        suggestion: 'Give an IP address with --to, or leave out --resolve to match by name only',
      },
    );
  }
}

/** Explains the decision; returns 0 when the connection would be allowed, 1 otherwise. */
export async function policyExplain(
  file: string,
  options: PolicyExplainOptions,
  io: CommandIo,
): Promise<CommandStatus> {
  const base = await factsFromOptions(options);
  const { compiled } = await loadCompiled(file, options.settings);
  // A rule pinning the application: judge the pin with the file at that path on this host.
  const app = base.application;
  const pinned = app !== null && compiled.rules.some((r) => r.sha256 !== null && r.application === app);
  const facts = pinned ? { ...base, applicationSha256: await fileSha256(app).catch(() => null) } : base;
  const e = explain(compiled, facts);
  const d = e.decision;
  if (options.json) {
    const decidingRule = d.ruleIndex >= 0 ? ruleToPlain(compiled.rules[d.ruleIndex]!.rule) : null;
    io.out(
      JSON.stringify(
        {
          connection: {
            ...facts,
            localAddress: null,
            remoteAddress: facts.remoteAddress === null ? null : formatIp(facts.remoteAddress),
          },
          decision: { ...d, ...(d.proposal ? { proposal: ruleToPlain(d.proposal) } : {}) },
          decidingRule,
          internal: e.internal ?? null,
          skipped: e.skipped,
        },
        null,
        2,
      ),
    );
  } else {
    io.out(`connection: ${connectionSummary(facts)}`);
    const where =
      d.source === 'default'
        ? 'no rule matched'
        : `${d.source} rule #${d.ruleIndex + 1 - (d.source === 'user' ? compiled.internalCount : 0)}`;
    const modeNote = d.verdict === d.action ? '' : ` (the rule says ${d.action}; ${d.mode} mode)`;
    io.out(
      `verdict:    ${d.verdict.toUpperCase()}${modeNote} by "${d.ruleName}" (${where}); ${d.log ? 'logged' : 'not logged'}`,
    );
    if (d.ruleIndex >= 0) io.out(`rule:       ${ruleSummary(compiled.rules[d.ruleIndex]!.rule)}`);
    if (e.internal) io.out(`internal:   ${e.internal.id} (${e.internal.purpose}): ${e.internal.because}`);
    if (d.proposal) io.out(`proposed:   ${ruleSummary(d.proposal)}`);
    if (e.skipped.length > 0) {
      io.out('earlier rules that did not match:');
      for (const s of e.skipped)
        io.out(`  ${s.source === 'internal' ? (s.id ?? s.name) : `"${s.name}"`}: ${s.field}: ${s.reason}`);
    }
  }
  return d.verdict === 'allow' ? 0 : 1;
}

/** Adds the command to `warden policy`. */
export function registerPolicyExplain(
  policy: Command,
  run: (status: Promise<CommandStatus>) => void,
  io: CommandIo,
): void {
  const collect = (v: string, prev: string[] = []) => [...prev, v];
  policy
    .command('explain')
    .description(
      'show which rule decides a connection (real or hypothetical) and why each earlier rule did not match',
    )
    .argument('<file>', 'policy file (YAML)')
    .option('--settings <file>', 'settings file (internal rules and conditions follow it)')
    .option('--app <path>', 'executable path of the local application')
    .option('--out', 'an outgoing connection (implied by --to)')
    .option('--in', 'an incoming connection (implied by --from)')
    .option('--tcp', 'TCP (the default)')
    .option('--udp', 'UDP')
    .option('--icmp', 'ICMP')
    .option('--to <host:port>', 'remote end of an outgoing connection: IP, [IPv6] or host name, with :port')
    .option('--from <host[:port]>', 'remote end of an incoming connection')
    .option('--local-port <port>', 'local port (the service port of an incoming connection)')
    .option('--uid <uid>', 'numeric user id of the local process')
    .option('--user <name>', 'user name of the local process')
    .option('--host <name>', 'a DNS name known for the remote address (repeatable)', collect)
    .option('--interface <name>', 'the interface it leaves by (outgoing) or comes in by (incoming)')
    .option('--resolve', 'resolve a host name given in --to/--from through DNS')
    .option('--at <instant>', 'evaluate at this ISO 8601 instant (for temporary rules)')
    .option('--parent <path>', "executable of the process's direct parent")
    .option(
      '--ancestor <path>',
      'executable of an ancestor, parent first (repeatable; default: the parent)',
      collect,
    )
    .option('--args <text>', 'the command line, arguments joined by single spaces')
    .option('--json', 'print the explanation as JSON')
    .addHelpText(
      'after',
      `
Exit status: 0 allowed, 1 denied, rejected or asked, 2 usage error.

Examples:
  warden policy explain policy.yaml --app /usr/bin/curl --to example.com:443
  warden policy explain policy.yaml --app /usr/bin/curl --to 93.184.215.14:443 --host example.com
  warden policy explain policy.yaml --in --tcp --from 203.0.113.7 --local-port 22 --app /usr/sbin/sshd`,
    )
    .action((file: string, options: PolicyExplainOptions) => run(policyExplain(file, options, io)));
}
