/**
 * The rules' hot-path data packed into one Int32Array, eight ints per rule,
 * so checking a candidate touches one cache line instead of a chain of
 * objects. `hotMatch` checks everything that fits in the record; rules that
 * also constrain addresses, host names, user names or expiry are finished by
 * `matches` on the full rule. Together they answer exactly what `matches`
 * answers (the property test compares the indexed and the linear searches).
 */
import type { CompiledRule } from './compile.js';
import type { ConnectionFacts } from './rule.js';

const STRIDE = 12;

const F_INCOMING = 1 << 0;
const F_OUTGOING = 1 << 1;
/** Bits 2-5: the protocol mask (tcp 1, udp 2, icmp 4, other 8) shifted by 2. */
const PROTO_SHIFT = 2;
const F_APP = 1 << 6;
const F_UID = 1 << 7;
const F_REMOTE_PORTS = 1 << 8;
const F_LOCAL_PORTS = 1 << 9;
/** The rule needs `matches` on the full object (remote addresses, user name, expiry). */
const F_FULL = 1 << 10;
const F_ACTIVE = 1 << 11;
/** The rule's remote addresses are one IPv4 range, kept in the record (no F_FULL needed for them). */
const F_V4_RANGE = 1 << 12;

/** Packed rule records plus the tables they point into. */
export interface HotRules {
  /** [flags, appId, uid, remotePortOffset, remotePortCount, localPortOffset, localPortCount, v4First, v4Last, 0, 0, 0] per rule. */
  readonly records: Int32Array;
  /** Port ranges as [from, to, ...], referenced by offset and count from the records. */
  readonly ports: Int32Array;
  /** Application path -> id used in the records. */
  readonly appIds: ReadonlyMap<string, number>;
}

/** Packs the rules' hot data. */
export function packRules(rules: readonly CompiledRule[]): HotRules {
  const records = new Int32Array(rules.length * STRIDE);
  const ports: number[] = [];
  const appIds = new Map<string, number>();
  const addPorts = (spans: Int32Array | null): [number, number] => {
    if (spans === null) return [0, 0];
    const offset = ports.length;
    for (const v of spans) ports.push(v);
    return [offset, spans.length / 2];
  };
  rules.forEach((r, i) => {
    let flags = (r.protocols << PROTO_SHIFT) | (r.incoming ? F_INCOMING : 0) | (r.outgoing ? F_OUTGOING : 0);
    if (r.active) flags |= F_ACTIVE;
    let appId = -1;
    if (r.application !== null) {
      flags |= F_APP;
      appId = appIds.get(r.application) ?? appIds.size;
      appIds.set(r.application, appId);
    }
    if (r.uid !== null) flags |= F_UID;
    if (r.remotePortSpans !== null) flags |= F_REMOTE_PORTS;
    if (r.localPortSpans !== null) flags |= F_LOCAL_PORTS;
    const remote = r.remote;
    const oneV4 =
      remote !== null &&
      remote.v4.length === 2 &&
      remote.v6.length === 0 &&
      remote.hosts.size === 0 &&
      remote.suffixes.length === 0;
    if (oneV4) flags |= F_V4_RANGE;
    if ((remote !== null && !oneV4) || r.userName !== null || r.expires) flags |= F_FULL;
    const [ro, rc] = addPorts(r.remotePortSpans);
    const [lo, lc] = addPorts(r.localPortSpans);
    const base = i * STRIDE;
    records[base] = flags;
    records[base + 1] = appId;
    records[base + 2] = r.uid === null ? 0 : r.uid | 0;
    records[base + 3] = ro;
    records[base + 4] = rc;
    records[base + 5] = lo;
    records[base + 6] = lc;
    if (oneV4) {
      // Stored as int32; compared after >>> 0, so the whole unsigned range fits.
      records[base + 7] = remote.v4[0]! | 0;
      records[base + 8] = remote.v4[1]! | 0;
    }
  });
  return { records, ports: Int32Array.from(ports), appIds };
}

/** The connection's facts as the records need them, computed once per decision. */
export interface HotFacts {
  /** F_INCOMING or F_OUTGOING. */
  readonly direction: number;
  /** The protocol bit shifted like the records' protocol mask. */
  readonly protocol: number;
  /** Id of the connection's application in HotRules.appIds, or -2 when no rule names it. */
  readonly appId: number;
}

/** Computes the per-decision facts for hotMatch. */
export function hotFacts(hot: HotRules, f: ConnectionFacts): HotFacts {
  const bit = f.protocol === 'tcp' ? 1 : f.protocol === 'udp' ? 2 : f.protocol === 'icmp' ? 4 : 8;
  const appId = f.application === null ? -2 : (hot.appIds.get(f.application) ?? -2);
  return {
    direction: f.direction === 'incoming' ? F_INCOMING : F_OUTGOING,
    protocol: bit << PROTO_SHIFT,
    appId,
  };
}

function portIn(ports: Int32Array, offset: number, count: number, port: number | null): boolean {
  if (port === null) return false;
  const end = offset + count * 2;
  for (let i = offset; i < end; i += 2) if (ports[i]! <= port && port <= ports[i + 1]!) return true;
  return false;
}

/**
 * Checks rule `index` against the connection using the packed record only.
 * Returns 0 (no match), 1 (match) or 2 (the record matches; finish with `matches`).
 */
export function hotMatch(hot: HotRules, index: number, f: ConnectionFacts, hf: HotFacts): 0 | 1 | 2 {
  const rec = hot.records;
  const base = index * STRIDE;
  const flags = rec[base]!;
  if ((flags & F_ACTIVE) === 0 || (flags & hf.direction) === 0 || (flags & hf.protocol) === 0) return 0;
  if ((flags & F_APP) !== 0 && rec[base + 1] !== hf.appId) return 0;
  if ((flags & F_UID) !== 0 && (f.uid === null || rec[base + 2] !== (f.uid | 0))) return 0;
  if ((flags & F_REMOTE_PORTS) !== 0 && !portIn(hot.ports, rec[base + 3]!, rec[base + 4]!, f.remotePort))
    return 0;
  if ((flags & F_LOCAL_PORTS) !== 0 && !portIn(hot.ports, rec[base + 5]!, rec[base + 6]!, f.localPort))
    return 0;
  if ((flags & F_V4_RANGE) !== 0) {
    const a = f.remoteAddress;
    if (a === null || a.version !== 4 || a.value < rec[base + 7]! >>> 0 || a.value > rec[base + 8]! >>> 0)
      return 0;
  }
  return (flags & F_FULL) !== 0 ? 2 : 1;
}
