/**
 * The start time of a process from /proc/PID/stat, read on the BPF attribution path once per queued
 * connection (src/kernel/attribution.ts): it tells the process that made a socket from a later one
 * that reuses its pid, so it is read cheaply (no stat call, no buffer per read, no split).
 */
import { closeSync, constants, openSync, readFileSync, readSync } from 'node:fs';

/** Field 22 of /proc/PID/stat, the start time in clock ticks since boot, counted after the command name in parentheses (which may hold anything). */
export function startTimeOf(stat: string): string | null {
  // After ") " come field 3 (state) onwards: the start time is the 20th of those.
  let at = stat.lastIndexOf(')');
  if (at < 0) return null;
  at += 2;
  for (let field = 0; field < 19; field++) {
    at = stat.indexOf(' ', at) + 1;
    if (at === 0) return null;
  }
  const end = stat.indexOf(' ', at);
  const value = end < 0 ? stat.slice(at).trimEnd() : stat.slice(at, end);
  return value === '' ? null : value;
}

/**
 * One buffer for every /proc/PID/stat read on the BPF path (once per queued connection): the whole
 * file is about 300 bytes (the command name at most 64), so one read fills it without a stat call
 * or a new buffer per connection. A file that fills it is read whole instead.
 */
const statBuffer = Buffer.allocUnsafe(4096);

/** The start time of /proc/PID/stat at `path` (startTimeOf), or null when it cannot be read (the process is gone). */
export function readStartTime(path: string): string | null {
  let fd: number;
  try {
    fd = openSync(path, constants.O_RDONLY);
  } catch {
    return null;
  }
  try {
    const n = readSync(fd, statBuffer, 0, statBuffer.length, 0);
    if (n < statBuffer.length) return startTimeOf(statBuffer.toString('latin1', 0, n));
    return startTimeOf(readFileSync(path, 'latin1'));
  } catch {
    return null;
  } finally {
    closeSync(fd);
  }
}
