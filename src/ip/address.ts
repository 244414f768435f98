/**
 * IP addresses and ranges as numbers, parsed without node: so the policy core
 * stays pure. IPv4 is a uint32 in a number; IPv6 is a 128-bit bigint. An
 * IPv4-mapped IPv6 address (::ffff:a.b.c.d) is parsed as the IPv4 address,
 * which is how the kernel and users mean it.
 */

export type IpAddress =
  | { readonly version: 4; readonly value: number }
  | { readonly version: 6; readonly value: bigint };

export type IpRange =
  | { readonly version: 4; readonly first: number; readonly last: number }
  | { readonly version: 6; readonly first: bigint; readonly last: bigint };

/** Result of a parse: the value, or a sentence that says what is wrong. */
export type Parsed<T> = { ok: true; value: T } | { ok: false; message: string };

const V6_MAX = (1n << 128n) - 1n;

/** Parses dotted-quad IPv4 into a uint32, or returns null. Leading zeros are refused (they mean octal to some tools). */
export function parseIpv4(text: string): number | null {
  const parts = text.split('.');
  if (parts.length !== 4) return null;
  let value = 0;
  for (const part of parts) {
    if (part.length === 0 || part.length > 3 || !/^[0-9]+$/.test(part)) return null;
    if (part.length > 1 && part[0] === '0') return null;
    const n = Number(part);
    if (n > 255) return null;
    value = value * 256 + n;
  }
  return value;
}

/** Parses an IPv6 address (with :: and an optional trailing IPv4 part) into a bigint, or returns null. */
export function parseIpv6(text: string): bigint | null {
  if (text.length < 2 || text.length > 45 || text.includes('%')) return null;
  let groups: number[] = [];
  let tail = text;
  // An embedded IPv4 part counts as two groups.
  const lastColon = text.lastIndexOf(':');
  if (text.indexOf('.', lastColon) !== -1) {
    const v4 = parseIpv4(text.slice(lastColon + 1));
    if (v4 === null) return null;
    tail = `${text.slice(0, lastColon + 1)}${(v4 >>> 16).toString(16)}:${(v4 & 0xffff).toString(16)}`;
  }
  const doubleColon = tail.indexOf('::');
  if (doubleColon !== -1 && tail.indexOf('::', doubleColon + 1) !== -1) return null;
  const parseGroups = (s: string): number[] | null => {
    if (s === '') return [];
    const out: number[] = [];
    for (const g of s.split(':')) {
      if (g.length === 0 || g.length > 4 || !/^[0-9a-fA-F]+$/.test(g)) return null;
      out.push(Number.parseInt(g, 16));
    }
    return out;
  };
  if (doubleColon === -1) {
    const all = parseGroups(tail);
    if (all === null || all.length !== 8) return null;
    groups = all;
  } else {
    const head = parseGroups(tail.slice(0, doubleColon));
    const rest = parseGroups(tail.slice(doubleColon + 2));
    if (head === null || rest === null || head.length + rest.length > 7) return null;
    groups = [...head, ...new Array<number>(8 - head.length - rest.length).fill(0), ...rest];
  }
  let value = 0n;
  for (const g of groups) value = (value << 16n) | BigInt(g);
  return value;
}

/** Parses an IPv4 or IPv6 address; IPv4-mapped IPv6 becomes IPv4. Returns null when it is neither. */
export function parseIp(text: string): IpAddress | null {
  const v4 = parseIpv4(text);
  if (v4 !== null) return { version: 4, value: v4 };
  const v6 = parseIpv6(text);
  if (v6 === null) return null;
  if (v6 >> 32n === 0xffffn) return { version: 4, value: Number(v6 & 0xffffffffn) };
  return { version: 6, value: v6 };
}

/** Formats an IPv4 uint32 as a dotted quad. */
export function formatIpv4(value: number): string {
  return `${value >>> 24}.${(value >>> 16) & 255}.${(value >>> 8) & 255}.${value & 255}`;
}

/** Formats an IPv6 bigint in RFC 5952 form (lower case, longest zero run compressed). */
export function formatIpv6(value: bigint): string {
  if (value >> 32n === 0xffffn) return `::ffff:${formatIpv4(Number(value & 0xffffffffn))}`;
  const groups: number[] = [];
  for (let i = 7; i >= 0; i--) groups.push(Number((value >> BigInt(i * 16)) & 0xffffn));
  let bestStart = -1;
  let bestLen = 1;
  for (let i = 0; i < 8; ) {
    if (groups[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > bestLen) {
      bestStart = i;
      bestLen = j - i;
    }
    i = j;
  }
  const hex = groups.map((g) => g.toString(16));
  if (bestStart === -1) return hex.join(':');
  return `${hex.slice(0, bestStart).join(':')}::${hex.slice(bestStart + bestLen).join(':')}`;
}

/** Formats an address in its canonical text form. */
export function formatIp(addr: IpAddress): string {
  return addr.version === 4 ? formatIpv4(addr.value) : formatIpv6(addr.value);
}

/** Parses `a.b.c.d/n` or `x::/n`. Host bits set after the prefix are an error, with the corrected network as a hint. */
export function parseCidr(text: string): Parsed<IpRange> {
  const slash = text.indexOf('/');
  if (slash === -1) return { ok: false, message: `"${text}" is not a CIDR (expected address/prefix)` };
  const addr = parseIp(text.slice(0, slash));
  const bitsText = text.slice(slash + 1);
  if (addr === null)
    return {
      ok: false,
      message: `"${text}" is not a valid CIDR: "${text.slice(0, slash)}" is not an IP address`,
    };
  if (!/^[0-9]{1,3}$/.test(bitsText))
    return {
      ok: false,
      message: `"${text}" is not a valid CIDR: prefix length "${bitsText}" is not a number`,
    };
  const bits = Number(bitsText);
  // An IPv4-mapped IPv6 network was parsed as IPv4; its prefix counts the 96 mapped bits.
  const mapped = addr.version === 4 && text.slice(0, slash).includes(':');
  const max = addr.version === 4 ? 32 : 128;
  const effective = mapped ? bits - 96 : bits;
  if (bits > (mapped ? 128 : max) || effective < 0) {
    return {
      ok: false,
      message: `"${text}" is not a valid CIDR: prefix length ${bits} is out of range 0-${max} for IPv${addr.version}`,
    };
  }
  if (addr.version === 4) {
    const size = 2 ** (32 - effective);
    const first = Math.floor(addr.value / size) * size;
    if (first !== addr.value) {
      return {
        ok: false,
        message: `"${text}" has host bits set after /${bits}; did you mean ${formatIpv4(first)}/${bits}?`,
      };
    }
    return { ok: true, value: { version: 4, first, last: first + size - 1 } };
  }
  const hostMask = effective === 128 ? 0n : (1n << BigInt(128 - effective)) - 1n;
  const first = addr.value & (V6_MAX ^ hostMask);
  if (first !== addr.value) {
    return {
      ok: false,
      message: `"${text}" has host bits set after /${bits}; did you mean ${formatIpv6(first)}/${bits}?`,
    };
  }
  return { ok: true, value: { version: 6, first, last: first | hostMask } };
}

/** Parses `first-last` (both addresses of one family, first <= last). */
export function parseIpRange(text: string): Parsed<IpRange> {
  const dash = text.indexOf('-');
  const a = parseIp(text.slice(0, dash).trim());
  const b = parseIp(text.slice(dash + 1).trim());
  if (dash === -1 || a === null || b === null) {
    return {
      ok: false,
      message: `"${text}" is not a valid address range (expected first-last, e.g. 10.0.0.1-10.0.0.20)`,
    };
  }
  if (a.version !== b.version) return { ok: false, message: `"${text}" mixes IPv4 and IPv6` };
  if (a.value > b.value) {
    return {
      ok: false,
      message: `"${text}" is reversed: ${formatIp(a)} comes after ${formatIp(b)}; write ${formatIp(b)}-${formatIp(a)}`,
    };
  }
  return a.version === 4
    ? { ok: true, value: { version: 4, first: a.value, last: b.value as number } }
    : { ok: true, value: { version: 6, first: a.value, last: b.value as bigint } };
}

/** True when the address lies in the range. */
export function rangeContains(range: IpRange, addr: IpAddress): boolean {
  return range.version === addr.version && range.first <= addr.value && addr.value <= range.last;
}

/** Formats a range as CIDR when it is exactly one prefix, as a single address when it has one, else as first-last. */
export function formatRange(range: IpRange): string {
  if (range.first === range.last) {
    return range.version === 4 ? formatIpv4(range.first) : formatIpv6(range.first);
  }
  if (range.version === 4) {
    const size = range.last - range.first + 1;
    const bits = Math.log2(size);
    if (Number.isInteger(bits) && range.first % size === 0) return `${formatIpv4(range.first)}/${32 - bits}`;
    return `${formatIpv4(range.first)}-${formatIpv4(range.last)}`;
  }
  const size = range.last - range.first + 1n;
  if ((size & (size - 1n)) === 0n && range.first % size === 0n) {
    const bits = size.toString(2).length - 1;
    return `${formatIpv6(range.first)}/${128 - bits}`;
  }
  return `${formatIpv6(range.first)}-${formatIpv6(range.last)}`;
}
