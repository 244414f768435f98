/**
 * Keeps Warden's own listening ports out of the kernel's ephemeral port range
 * (`net.ipv4.ip_local_reserved_ports`, per network namespace; it covers IPv6 too). Without it, a
 * program's outgoing connection may be given the application port as its local port by chance,
 * and a restarting engine then cannot listen there: no console, and with the engine not started,
 * nothing enforced. Reserved ports are still bindable on purpose, by a program that names them
 * (docs/security.md, known limits).
 */
import { readFile, writeFile } from 'node:fs/promises';

const SYSCTL = '/proc/sys/net/ipv4/ip_local_reserved_ports';

/** The reserved-port list with `ports` added: the kernel's own `a,b-c` syntax, nothing already reserved removed. */
export function withReservedPorts(current: string, ports: readonly number[]): string {
  const ranges: [number, number][] = [];
  for (const part of current.trim().split(',')) {
    const m = /^(\d+)(?:-(\d+))?$/.exec(part.trim());
    if (m) ranges.push([Number(m[1]), Number(m[2] ?? m[1])]);
  }
  for (const p of ports) if (Number.isInteger(p) && p > 0 && p < 65536) ranges.push([p, p]);
  ranges.sort((a, b) => a[0] - b[0]);
  const merged: [number, number][] = [];
  for (const [from, to] of ranges) {
    const last = merged[merged.length - 1];
    if (last !== undefined && from <= last[1] + 1) last[1] = Math.max(last[1], to);
    else merged.push([from, to]);
  }
  return merged.map(([a, b]) => (a === b ? `${a}` : `${a}-${b}`)).join(',');
}

/** Reserves `ports` in this network namespace; returns what went wrong, or undefined. Needs root. */
export async function reserveLocalPorts(ports: readonly number[]): Promise<string | undefined> {
  try {
    const current = await readFile(SYSCTL, 'utf8');
    const wanted = withReservedPorts(current, ports);
    if (wanted !== withReservedPorts(current, [])) await writeFile(SYSCTL, `${wanted}\n`);
    return undefined;
  } catch (e) {
    return `cannot reserve ports ${ports.join(', ')} (${SYSCTL}): ${(e as Error).message}`;
  }
}
