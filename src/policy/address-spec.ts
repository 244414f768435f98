/** Remote address entries: any, localhost, IP, CIDR, range, host name, *.domain, @group, list:name. */
import { formatRange, type Parsed, parseCidr, parseHostName, parseIp, parseIpRange } from '../ip/index.js';
import type { AddressSpec } from './rule.js';

const GROUP_NAME = /^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,63}$/;

/** True when text is shaped like an address (digits and dots, or has a colon), so it is not taken as a host name. */
function looksLikeAddress(text: string): boolean {
  return /^[0-9.]+$/.test(text) || text.includes(':');
}

/** Parses one remote address entry. `any` is handled by the caller (it means "no list"). */
export function parseAddressSpec(text: string): Parsed<AddressSpec> {
  const t = text.trim();
  if (t === '') return { ok: false, message: 'address is empty' };
  if (t.toLowerCase() === 'localhost') return { ok: true, value: { kind: 'localhost' } };
  if (t.startsWith('list:')) {
    const name = t.slice(5);
    if (!GROUP_NAME.test(name))
      return { ok: false, message: `"${t}" is not a valid list reference (expected list:name)` };
    return { ok: true, value: { kind: 'list', name } };
  }
  if (t.startsWith('@')) {
    const name = t.slice(1);
    if (!GROUP_NAME.test(name))
      return { ok: false, message: `"${t}" is not a valid group reference (expected @name)` };
    return { ok: true, value: { kind: 'group', name } };
  }
  if (t.includes('/')) {
    const r = parseCidr(t);
    return r.ok ? { ok: true, value: { kind: 'ip', range: r.value } } : r;
  }
  const dash = t.indexOf('-');
  if (dash > 0 && looksLikeAddress(t.slice(0, dash).trim())) {
    const r = parseIpRange(t);
    if (r.ok) return { ok: true, value: { kind: 'ip', range: r.value } };
    // A host name may start with digits and a dash (1-2-3-4.sslip.io): it is a range only with an address on both sides.
    if (looksLikeAddress(t.slice(dash + 1).trim()) || !parseHostName(t).ok) return r;
  }
  if (looksLikeAddress(t)) {
    const ip = parseIp(t);
    if (ip === null) return { ok: false, message: `"${t}" is not a valid IP address` };
    const range =
      ip.version === 4
        ? { version: 4 as const, first: ip.value, last: ip.value }
        : { version: 6 as const, first: ip.value, last: ip.value };
    return { ok: true, value: { kind: 'ip', range } };
  }
  const host = parseHostName(t);
  return host.ok ? { ok: true, value: { kind: 'host', name: host.value } } : host;
}

/** Writes an address entry in its canonical text form. */
export function formatAddressSpec(spec: AddressSpec): string {
  switch (spec.kind) {
    case 'localhost':
      return 'localhost';
    case 'ip':
      return formatRange(spec.range);
    case 'host':
      return spec.name;
    case 'group':
      return `@${spec.name}`;
    case 'list':
      return `list:${spec.name}`;
  }
}
