/**
 * Does one compiled rule match one connection? `matches` is the hot path
 * (no allocation); `findMismatch` says which condition failed first, for
 * explain. A property test keeps the two in agreement.
 */
import { formatIp } from '../ip/index.js';
import { type AddressSet, addressInSet, type CompiledRule, hostInSet, interfaceInSet } from './compile.js';
import { globMatch } from './glob.js';
import { portListText } from './ports.js';
import { protocolBit } from './protocol-bits.js';
import type { ConnectionFacts } from './rule.js';

/** True when the port is in one of the spans ([from0, to0, from1, to1, ...]); a connection without one is in none. */
export function portIn(spans: Int32Array, port: number | null): boolean {
  if (port === null) return false;
  for (let i = 0; i < spans.length; i += 2) if (spans[i]! <= port && port <= spans[i + 1]!) return true;
  return false;
}

/**
 * True when the connection's remote address or one of its names is in the set. The usual cases of
 * the rules beside the rule index (rule-index.ts) first and without calls: the address through
 * the bit the engine remembers per address (AddressSet.addressBit) or the set's range lookup,
 * names through their lists' bits (AddressSet.domainMask).
 */
export function remoteIn(set: AddressSet, f: ConnectionFacts): boolean {
  const a = f.remoteAddress;
  if (a !== null) {
    // A large set's membership as the engine remembers it per address: one bit (address-lists.ts).
    const known = f.remoteAddressLists;
    if (known !== undefined && known.table === set.addressTable) {
      if ((known.bits & set.addressBit) !== 0) return true;
    } else if (a.version === 4) {
      const v4 = set.v4Set;
      if (v4 !== null ? v4.has(a.value) : set.v4.length > 0 && addressInSet(set, a)) return true;
    } else {
      const v6 = set.v6Set;
      if (v6 !== null ? v6.has(a.value) : set.v6.length > 0 && addressInSet(set, a)) return true;
    }
  }
  if (f.remoteHosts.length === 0) return false;
  const lists = f.remoteHostLists;
  if (
    lists !== undefined &&
    lists.table === set.domainTable &&
    set.hosts.size === 0 &&
    set.suffixes.length === 0
  )
    return (lists.bits & set.domainMask) !== 0;
  return hostInSet(set, f.remoteHosts, lists);
}

/** True when the active rule matches the connection. Inactive rules never match. */
export function matches(r: CompiledRule, f: ConnectionFacts): boolean {
  if (!r.active) return false;
  if (f.direction === 'incoming' ? !r.incoming : !r.outgoing) return false;
  if ((r.protocols & protocolBit(f.protocol)) === 0) return false;
  if (r.application !== null && r.application !== f.application) return false;
  if (r.sha256 !== null && r.sha256 !== f.applicationSha256) return false;
  if (r.uid !== null && r.uid !== f.uid) return false;
  if (r.userName !== null && r.userName !== f.user) return false;
  if (r.remotePortSpans !== null && !portIn(r.remotePortSpans, f.remotePort)) return false;
  if (r.localPortSpans !== null && !portIn(r.localPortSpans, f.localPort)) return false;
  if (r.remote !== null && !remoteIn(r.remote, f)) return false;
  if (r.parent !== null && r.parent !== f.parent) return false;
  if (r.ancestor !== null && !(f.ancestors?.includes(r.ancestor) ?? false)) return false;
  if (r.argumentsGlob !== null && (f.arguments == null || !globMatch(r.argumentsGlob, f.arguments)))
    return false;
  if (r.interfaces !== null && !interfaceInSet(r.interfaces, f.interface)) return false;
  if (r.expires && f.now >= r.expiresAt) return false;
  return true;
}

/** The start of a hash, for messages: 12 hex digits name a file version well enough for a person. */
export function shortHash(hex: string): string {
  return `${hex.slice(0, 12)}…`;
}

/** Why a pinned rule does not match: the file is now another one, or its hash is not known. */
export function pinReason(
  pinned: string,
  application: string | null,
  actual: string | null | undefined,
): string {
  return actual === null || actual === undefined
    ? `rule pins sha256 ${shortHash(pinned)}, but the hash of ${application ?? 'the executable'} is not known`
    : `pinned sha256 ${shortHash(pinned)} but ${application ?? 'the executable'} is now ${shortHash(actual)}`;
}

/** The first condition of a rule that a connection fails. */
export interface Mismatch {
  /** The rule field that failed: enabled, condition, direction, protocol, application, sha256, user, remotePorts, localPorts, remote, parent, ancestor, arguments, interface, expires. */
  readonly field: string;
  /** Human sentence: what the rule wants and what the connection has. */
  readonly reason: string;
}

/** Returns why the rule does not match the connection, or null when it matches. Checks in the same order as `matches`. */
export function findMismatch(r: CompiledRule, f: ConnectionFacts): Mismatch | null {
  if (!r.active) {
    return { field: r.rule.enabled ? 'condition' : 'enabled', reason: r.inactiveBecause ?? 'inactive' };
  }
  if (f.direction === 'incoming' ? !r.incoming : !r.outgoing) {
    return {
      field: 'direction',
      reason: `rule is for ${r.rule.direction} connections; this one is ${f.direction}`,
    };
  }
  if ((r.protocols & protocolBit(f.protocol)) === 0) {
    return { field: 'protocol', reason: `rule is for ${r.rule.protocol}; this connection is ${f.protocol}` };
  }
  if (r.application !== null && r.application !== f.application) {
    return {
      field: 'application',
      reason: `rule is for ${r.application}; this connection is from ${f.application ?? 'an unknown application'}`,
    };
  }
  if (r.sha256 !== null && r.sha256 !== f.applicationSha256) {
    return { field: 'sha256', reason: pinReason(r.sha256, r.application, f.applicationSha256) };
  }
  if (r.uid !== null && r.uid !== f.uid) {
    return {
      field: 'user',
      reason: `rule is for uid ${r.uid}; this connection's uid is ${f.uid ?? 'unknown'}`,
    };
  }
  if (r.userName !== null && r.userName !== f.user) {
    return {
      field: 'user',
      reason: `rule is for user ${r.userName}; this connection's user is ${f.user ?? 'unknown'}`,
    };
  }
  if (r.remotePorts !== null && r.remotePortSpans !== null && !portIn(r.remotePortSpans, f.remotePort)) {
    return {
      field: 'remotePorts',
      reason: `rule wants remote port ${portListText(r.remotePorts)}; this connection's is ${f.remotePort ?? 'none'}`,
    };
  }
  if (r.localPorts !== null && r.localPortSpans !== null && !portIn(r.localPortSpans, f.localPort)) {
    return {
      field: 'localPorts',
      reason: `rule wants local port ${portListText(r.localPorts)}; this connection's is ${f.localPort ?? 'none'}`,
    };
  }
  if (r.remote !== null && !remoteIn(r.remote, f)) {
    const addr = f.remoteAddress === null ? 'an unknown address' : formatIp(f.remoteAddress);
    const names = f.remoteHosts.length === 0 ? '' : ` (${f.remoteHosts.join(', ')})`;
    const lists = r.remote.lists.length === 0 ? '' : ` (lists ${r.remote.lists.join(', ')} included)`;
    return {
      field: 'remote',
      reason: `remote ${addr}${names} is not among the rule's remote addresses${lists}`,
    };
  }
  if (r.parent !== null && r.parent !== f.parent) {
    return {
      field: 'parent',
      reason: `rule wants parent ${r.parent}; this connection's parent is ${f.parent ?? 'unknown'}`,
    };
  }
  if (r.ancestor !== null && !(f.ancestors?.includes(r.ancestor) ?? false)) {
    const chain = f.ancestors === undefined || f.ancestors.length === 0 ? 'unknown' : f.ancestors.join(' < ');
    return {
      field: 'ancestor',
      reason: `rule wants ancestor ${r.ancestor}; this connection's ancestors are ${chain}`,
    };
  }
  if (r.argumentsGlob !== null && (f.arguments == null || !globMatch(r.argumentsGlob, f.arguments))) {
    return {
      field: 'arguments',
      reason: `rule wants arguments ${JSON.stringify(r.argumentsGlob.source)}; this connection's command line is ${f.arguments == null ? 'unknown' : JSON.stringify(f.arguments)}`,
    };
  }
  if (r.interfaces !== null && !interfaceInSet(r.interfaces, f.interface)) {
    const wanted = r.rule.interface?.join(', ') ?? '';
    return {
      field: 'interface',
      reason: `rule wants interface ${wanted}; this connection's is ${f.interface ?? 'unknown'}`,
    };
  }
  if (r.expires && f.now >= r.expiresAt) {
    return { field: 'expires', reason: `rule expired at ${new Date(r.expiresAt).toISOString()}` };
  }
  return null;
}
