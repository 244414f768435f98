/**
 * Durations as people write them: a whole number and a unit, `90s`, `30m`, `6h`, `1d`, `2w`. One
 * grammar for list and subscription refreshes, `warden rules unused --since` and OpenSnitch's timed
 * rules (`5m`, `1h`, `12h`: the same grammar without weeks).
 */

const UNIT_SECONDS: Record<string, number> = { s: 1, m: 60, h: 3600, d: 86_400, w: 604_800 };

/** Seconds in `text` (`90s`, `30m`, `6h`, `1d`, `2w`, up to 7 digits, at least 1), or null when it is none of those. */
export function durationSeconds(text: string): number | null {
  const m = /^(\d{1,7})\s*([smhdw])$/.exec(text.trim());
  const seconds = m === null ? 0 : Number(m[1]) * UNIT_SECONDS[m[2]!]!;
  return seconds > 0 ? seconds : null;
}

/** Writes seconds back as the largest whole unit up to days (`6h`, `90m`, `14d`). */
export function formatDuration(seconds: number): string {
  for (const unit of ['d', 'h', 'm'] as const)
    if (seconds % UNIT_SECONDS[unit]! === 0) return `${seconds / UNIT_SECONDS[unit]!}${unit}`;
  return `${seconds}s`;
}
