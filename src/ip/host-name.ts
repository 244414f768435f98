/** DNS host names as rules and settings name them. */
import type { Parsed } from './address.js';

const LABEL = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/;

/** Validates a DNS host name (RFC 1123), optionally `*.`-prefixed; returns it lower-case without a trailing dot. */
export function parseHostName(text: string): Parsed<string> {
  let name = text.toLowerCase();
  if (name.endsWith('.')) name = name.slice(0, -1);
  const wildcard = name.startsWith('*.');
  const body = wildcard ? name.slice(2) : name;
  if (body.length === 0) return { ok: false, message: `"${text}" is not a valid host name: it is empty` };
  if (body.length > 253)
    return { ok: false, message: `"${text}" is not a valid host name: longer than 253 characters` };
  for (const label of body.split('.')) {
    if (!LABEL.test(label)) {
      const why =
        label === ''
          ? 'it has an empty label (two dots in a row?)'
          : label.length > 63
            ? `label "${label.slice(0, 20)}…" is longer than 63 characters`
            : `label "${label}" may only hold letters, digits and inner hyphens`;
      return { ok: false, message: `"${text}" is not a valid host name: ${why}` };
    }
  }
  if (/^[0-9.]+$/.test(body))
    return { ok: false, message: `"${text}" looks like an IPv4 address but is not a valid one` };
  const labels = body.split('.');
  if (labels.length === 4 && labels.filter((l) => /^[0-9]+$/.test(l)).length >= 3) {
    return {
      ok: false,
      message: `"${text}" looks like a mistyped IPv4 address; write four numbers 0-255, or a host name`,
    };
  }
  return { ok: true, value: name };
}
