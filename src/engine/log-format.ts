/**
 * The engine's own log lines on stderr, in one of two formats (README "Log output"):
 * - `human`: `HH:MM:SS level  message  key=value ...`, for a person at a terminal;
 * - `json`: one JSON object per line (`time`, `level`, `message`, fields), for a service manager
 *   or a log shipper.
 * `auto` (the default) picks JSON when systemd's journal receives stderr (JOURNAL_STREAM is set) or
 * stderr is not a terminal (a pipe or a file), and human lines on a terminal. `--log-format` or
 * WARDEN_LOG_FORMAT choose explicitly.
 */
import { ErrorCode, WardenError } from '../errors.js';
import type { EngineLog } from './daemon.js';

export type LogFormat = 'human' | 'json';

/** Resolves `auto` (or an explicit choice) against the environment; bad names are usage errors. */
export function chooseLogFormat(
  requested: string | undefined,
  env: Readonly<Record<string, string | undefined>>,
  stderrIsTty: boolean,
): LogFormat {
  const wanted = requested ?? (env.WARDEN_LOG_FORMAT || undefined) ?? 'auto';
  if (wanted === 'human' || wanted === 'json') return wanted;
  if (wanted !== 'auto') {
    throw new WardenError(ErrorCode.USAGE, `--log-format "${wanted}" is not a log format`, {
      suggestion: 'Use --log-format human, json or auto (json when not on a terminal or under systemd).',
    });
  }
  return env.JOURNAL_STREAM !== undefined || !stderrIsTty ? 'json' : 'human';
}

function fieldText(v: unknown): string {
  const s = typeof v === 'string' ? v : Array.isArray(v) ? v.join(',') : JSON.stringify(v);
  return s !== undefined && /^[^\s"=]+$/.test(s) ? s : JSON.stringify(s ?? String(v));
}

/** One log line (with its newline) in the format. */
export function formatLogLine(
  format: LogFormat,
  now: Date,
  level: string,
  message: string,
  fields: Record<string, unknown>,
): string {
  if (format === 'json') return `${JSON.stringify({ time: now.toISOString(), level, message, ...fields })}\n`;
  const time = now.toTimeString().slice(0, 8);
  const extra = Object.entries(fields)
    .filter(([, v]) => v !== undefined)
    .map(([k, v]) => `${k}=${fieldText(v)}`)
    .join(' ');
  return `${time} ${level.padEnd(5)} ${message}${extra ? `  ${extra}` : ''}\n`;
}

/** An EngineLog writing to `write` in the format. */
export function engineLog(format: LogFormat, write: (line: string) => void): EngineLog {
  return (level, message, fields = {}) => write(formatLogLine(format, new Date(), level, message, fields));
}
