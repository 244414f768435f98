/** Test helpers for the importers: fixture files and a decision for a described connection. */
import { parseIp } from '../../ip/index.js';
import { compilePolicy } from '../compile.js';
import { decide } from '../evaluate.js';
import type { ConnectionFacts, Policy } from '../rule.js';

/** A connection with sensible defaults for the fields a test leaves out. */
export function connection(
  f: Partial<Omit<ConnectionFacts, 'remoteAddress'>> & { remote?: string },
): ConnectionFacts {
  const { remote, ...rest } = f;
  return {
    direction: 'incoming',
    protocol: 'tcp',
    application: null,
    uid: null,
    user: null,
    localAddress: parseIp('10.0.0.100'),
    localPort: null,
    remoteAddress: remote === undefined ? parseIp('203.0.113.50') : parseIp(remote),
    remotePort: null,
    remoteHosts: [],
    now: Date.parse('2026-03-04T12:10:00Z'),
    ...rest,
  };
}

/** The verdict a policy gives a connection (no internal rules). */
export function verdict(policy: Policy, f: ConnectionFacts): string {
  return decide(compilePolicy(policy), f).verdict;
}
