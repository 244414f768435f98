/** Parsing of option values shared by several commands; bad values throw WARDEN_E_USAGE naming the option. */
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
