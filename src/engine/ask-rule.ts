/**
 * The rule an answer to an `ask` prompt adds (duration `temporary` or `always`): pure,
 * so what "this application / this port / this host" means is in one place and tested.
 */
import { type IpRange, parseIp } from '../ip/index.js';
import type { Rule } from '../policy/index.js';
import type { AskAnswer, AskPrompt } from '../protocol/asks.js';

const MAX_NAME = 120;

/** The rule for an answer; its name is unique among `taken` (a counter is appended when needed). */
export function ruleForAnswer(
  prompt: AskPrompt,
  answer: AskAnswer,
  now: number,
  taken: ReadonlySet<string> = new Set(),
): Rule {
  const app = prompt.application ?? 'any';
  const what =
    answer.scope === 'port'
      ? `${prompt.protocol} port ${portOf(prompt)}`
      : answer.scope === 'host'
        ? (prompt.hosts[0] ?? prompt.remoteAddress)
        : 'all traffic';
  const base = `ask: ${answer.verdict} ${app === 'any' ? 'any application' : baseName(app)} ${prompt.direction} ${what}`;
  const rule: Rule = {
    name: uniqueName(base.slice(0, MAX_NAME - 4), taken),
    enabled: true,
    direction: prompt.direction,
    protocol:
      answer.scope === 'port' && (prompt.protocol === 'tcp' || prompt.protocol === 'udp')
        ? prompt.protocol
        : 'any',
    application: app,
    // A permanent rule for a program pins the file that was asked about (an update asks again, or is re-pinned).
    ...(answer.duration === 'always' && app !== 'any' && prompt.sha256 !== undefined
      ? { sha256: prompt.sha256 }
      : {}),
    ...(answer.scope === 'port' && portOf(prompt) !== undefined
      ? prompt.direction === 'outgoing'
        ? { remotePorts: [{ from: portOf(prompt)!, to: portOf(prompt)! }] }
        : { localPorts: [{ from: portOf(prompt)!, to: portOf(prompt)! }] }
      : {}),
    ...(answer.scope === 'host'
      ? {
          remote: [
            prompt.hosts[0] !== undefined
              ? { kind: 'host' as const, name: prompt.hosts[0] }
              : { kind: 'ip' as const, range: ipRange(prompt.remoteAddress) },
          ],
        }
      : {}),
    action: answer.verdict,
    log: true,
    ...(answer.duration === 'temporary'
      ? { expires: new Date(now + answer.minutes * 60_000).toISOString() }
      : {}),
    comment: `added by an answer to an ask prompt (${answer.duration}, scope ${answer.scope})`,
  };
  return rule;
}

/** The port that identifies the service: the remote port going out, the local port coming in. */
function portOf(prompt: AskPrompt): number | undefined {
  if (prompt.direction === 'outgoing') return prompt.remotePort;
  const m = /:(\d+)$/.exec(prompt.local);
  return m ? Number(m[1]) : undefined;
}

function baseName(path: string): string {
  return path.slice(path.lastIndexOf('/') + 1) || path;
}

function uniqueName(base: string, taken: ReadonlySet<string>): string {
  if (!taken.has(base)) return base;
  for (let i = 2; ; i++) if (!taken.has(`${base} #${i}`)) return `${base} #${i}`;
}

function ipRange(address: string): IpRange {
  const ip = parseIp(address);
  if (ip === null) throw new Error(`ask prompt has no valid remote address: ${address}`);
  return ip.version === 4
    ? { version: 4, first: ip.value, last: ip.value }
    : { version: 6, first: ip.value, last: ip.value };
}
