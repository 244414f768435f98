/**
 * The parts of Warden's nft table that guard the queue and the flows rather than state the policy
 * (docs/kernel.md, sections "Floods" and "UDP flows"):
 *
 * - Flood limits: every packet the ruleset sends to the engine passes `queue_<chain>` first, where a
 *   dynamic set holds a token bucket per local uid (outgoing) or per source address (incoming; IPv6
 *   per /64). Over the limit the packet is dropped (a SYN is sent again later and judged then) and
 *   counted per uid/source in a `flood_*` set; an NFLOG item (at most one a second) tells the
 *   engine to read the counts and log them. One program's flood is so dropped at its source and
 *   cannot fill the queue that every other program's connections wait in.
 * - UDP flow owners: an established UDP flow carries only packets of the uids that the policy let
 *   use it. `reject_output` ends with rules (ownerRules) that record (tuple . uid) of every
 *   original-direction UDP packet that got through; the output chain accepts established UDP only
 *   when the sender's uid is recorded, so another uid reusing the flow is judged like a new connection.
 *
 * Pure text generation: no I/O.
 */
import type { Settings } from '../settings/schema.js';
import { MARK_DECIDED, markHex } from './marks.js';
import type { ChainModel, SetModel } from './ruleset-sets.js';

/** Dynamic set names (their elements come from traffic, so their count is never checked). */
export const OWNER_SETS = ['udp_owner4', 'udp_owner6'] as const;
export const FLOOD_COUNT_SETS = { output: ['flood_out'], input: ['flood_in4', 'flood_in6'] } as const;
/** NFLOG prefix by which the kernel tells the engine that flood counts changed. */
export const FLOOD_PREFIX = 'warden flood';
/** How long a uid's UDP flow ownership outlives its last packet (longer than conntrack's UDP timeouts). */
const OWNER_TIMEOUT = '1h';
const OWNER_SET_SIZE = 262144;
const FLOOD_SET_SIZE = 65536;
/** An IPv6 source is limited per /64: one host's addresses all share one bucket. */
const V6_PREFIX_MASK = 'ffff:ffff:ffff:ffff::';

type Chain = 'output' | 'input';

export interface Guards {
  /** The dynamic sets (no elements: traffic fills them). */
  readonly sets: SetModel[];
  readonly chains: ChainModel[];
  readonly chainNames: string[];
  readonly dynamicSets: string[];
  readonly ruleCount: number;
}

const udpTuple4 = 'ip saddr . udp sport . ip daddr . udp dport . meta skuid';
const udpTuple6 = 'ip6 saddr . udp sport . ip6 daddr . udp dport . meta skuid';

/**
 * IPv6 neighbour and router discovery is IPv6's ARP (which inet tables never see): conntrack leaves
 * it untracked, so without this rule a default deny dropped it and IPv6 stopped working on the
 * link. Hop limit 255 proves the packet was not forwarded (RFC 4861); sending it needs CAP_NET_RAW.
 */
const NEIGHBOUR_DISCOVERY =
  'icmpv6 type { nd-router-solicit, nd-router-advert, nd-neighbor-solicit, nd-neighbor-advert } ip6 hoplimit 255 accept';

/**
 * The established-traffic rules that open the base chain (replacing a plain `ct state established,related accept`).
 * Each only accepts, so their order changes nothing but the cost: the most frequent packet, an
 * established TCP one, leaves at the first rule, and the rare neighbour discovery is tested last.
 */
export function establishedRules(chain: Chain): string[] {
  if (chain === 'input') return ['ct state established,related accept', NEIGHBOUR_DISCOVERY];
  return [
    'ct state established meta l4proto != udp accept',
    'ct state established,related ct direction reply accept',
    'ct state related accept',
    // An established UDP packet is accepted only from a uid that the policy let use this flow.
    `ct state established meta nfproto ipv4 ${udpTuple4} @udp_owner4 accept`,
    `ct state established meta nfproto ipv6 ${udpTuple6} @udp_owner6 accept`,
    NEIGHBOUR_DISCOVERY,
  ];
}

/**
 * The UDP flow owners' records, the last rules of `reject_output` (priority 200, after iptables'
 * NFQUEUE at 150): a packet gets there only past every accept or drop of Warden's chains and the
 * engine's verdict, and the reject rules before them end the packets they refuse, so what they see
 * goes out as far as Warden is concerned. They once had a base chain of their own (`owner_output`,
 * priority 210), which every outgoing packet entered once more for nothing.
 */
export function ownerRules(): string[] {
  return [
    `ct direction original meta nfproto ipv4 update @udp_owner4 { ${udpTuple4} }`,
    `ct direction original meta nfproto ipv6 update @udp_owner6 { ${udpTuple6} }`,
  ];
}

/**
 * The verdict cache's liveness: one element (`tcp`) that the running engine renews every
 * LIVE_RENEW_MS (src/engine/cache-live.ts) and that expires LIVE_TIMEOUT_S after its last renewal.
 * DECIDED_RULE holds only while it is there: the mark bit stays on a socket after the engine's
 * programs are gone (they clear it on the next connect), so a stopped engine removes the element
 * before its programs are detached, and a killed one's expires within LIVE_TIMEOUT_S.
 */
export const LIVE_SET = 'warden_live';
export const LIVE_TIMEOUT_S = 2;
export const LIVE_RENEW_MS = 500;

/**
 * A new TCP connection whose socket the verdict cache's connect program marked (MARK_DECIDED: the
 * engine allowed this executable, uid, address and port before, under the policy in force) is
 * accepted, while the engine that set it lives (LIVE_SET). Logged and counted by the engine from the
 * BPF ring buffer. Where: near the head of the output chain (DECIDED_FIRST_RULE), before the policy's
 * rules, so a hit skips their set lookups (issue 12). The cache holds only allows that every rule
 * able to apply to the program decides from the key's fields alone (docs/attribution.md, "Verdict
 * cache"), so no rule the kernel decides would have stopped such a connection first; except by uid:
 * the kernel's rules test the socket's owner (`meta skuid`), the key the connecting process's
 * effective uid, which differ for a socket made under another uid (passed, or made before a setuid).
 * So when a rule the kernel decides on output names a uid, it waits at the head of `queue_output`,
 * where only what the policy sends to the engine gets: the kernel's own rules come first.
 */
export const DECIDED_RULE = `meta l4proto tcp meta mark & ${markHex(MARK_DECIDED)} == ${markHex(MARK_DECIDED)} meta l4proto @${LIVE_SET} accept`;

/**
 * DECIDED_RULE as the output chain has it: right after its first rule (established non-UDP), before
 * the other established tests, the neighbour discovery and `ct state invalid drop`, so a hit's SYN
 * crosses two rules, not eight; `ct state new` keeps out what the invalid test and the related and
 * established ones are there for (an untracked packet with the bit is no longer accepted by it).
 */
export const DECIDED_FIRST_RULE = DECIDED_RULE.replace('meta l4proto tcp ', 'meta l4proto tcp ct state new ');

/**
 * `queue` is the statement that hands a packet to the engine (mark + accept, or native `queue`);
 * with `verdictCache`, connections the cache decided are accepted before it (DECIDED_RULE), unless
 * `decidedInChain`: the output chain tests the bit itself before the policy (ruleset.ts, decidedFirst).
 */
export function guards(
  settings: Settings,
  queue: string,
  verdictCache = false,
  decidedInChain = false,
): Guards {
  const {
    floodOutgoingPerUid: outgoingPerUid,
    floodIncomingPerSource: incomingPerSource,
    floodBurst: burst,
  } = settings.enforcement;
  const logGroup = settings.enforcement.logGroup;
  const sets: SetModel[] = [];
  const chains: ChainModel[] = [];
  const dynamicSets: string[] = [...OWNER_SETS];
  let ruleCount = 0;
  const set = (name: string, type: string, timeout: string, size: number, counter = false) =>
    sets.push({
      name,
      declaration: [
        `type ${type}`,
        `size ${size}`,
        'flags dynamic,timeout',
        ...(counter ? ['counter'] : []),
        `timeout ${timeout}`,
      ],
      elements: [],
    });
  const chainText = (name: string, rules: string[], hook?: string) => {
    ruleCount += rules.length;
    chains.push({ name, hook: hook ?? null, rules });
  };

  set(
    'udp_owner4',
    'ipv4_addr . inet_service . ipv4_addr . inet_service . uid',
    OWNER_TIMEOUT,
    OWNER_SET_SIZE,
  );
  set(
    'udp_owner6',
    'ipv6_addr . inet_service . ipv6_addr . inet_service . uid',
    OWNER_TIMEOUT,
    OWNER_SET_SIZE,
  );
  const rate = (perSecond: number) => `limit rate over ${perSecond}/second burst ${burst} packets`;
  const notify = (chain: Chain) =>
    `limit rate 1/second log group ${logGroup} prefix "${FLOOD_PREFIX} ${chain} "`;
  const out: string[] = verdictCache && !decidedInChain ? [DECIDED_RULE] : [];
  if (verdictCache) {
    // Its element comes from the engine (renewed), never from the ruleset: a dynamic set.
    sets.push({
      name: LIVE_SET,
      declaration: ['type inet_proto', 'size 4', 'flags timeout', `timeout ${LIVE_TIMEOUT_S}s`],
      elements: [],
    });
    dynamicSets.push(LIVE_SET);
  }
  if (outgoingPerUid > 0) {
    set('rate_out', 'uid', '1m', FLOOD_SET_SIZE);
    set('flood_out', 'uid', '1h', FLOOD_SET_SIZE, true);
    dynamicSets.push('rate_out', 'flood_out');
    out.push(`update @rate_out { meta skuid ${rate(outgoingPerUid)} } goto flood_output`);
    chainText('flood_output', ['update @flood_out { meta skuid }', notify('output'), 'drop']);
  }
  out.push(queue);
  chainText('queue_output', out);

  const input: string[] = [];
  if (incomingPerSource > 0) {
    set('rate_in4', 'ipv4_addr', '1m', FLOOD_SET_SIZE);
    set('rate_in6', 'ipv6_addr', '1m', FLOOD_SET_SIZE);
    set('flood_in4', 'ipv4_addr', '1h', FLOOD_SET_SIZE, true);
    set('flood_in6', 'ipv6_addr', '1h', FLOOD_SET_SIZE, true);
    dynamicSets.push('rate_in4', 'rate_in6', 'flood_in4', 'flood_in6');
    input.push(
      `meta nfproto ipv4 update @rate_in4 { ip saddr ${rate(incomingPerSource)} } goto flood_input`,
      `meta nfproto ipv6 update @rate_in6 { ip6 saddr & ${V6_PREFIX_MASK} ${rate(incomingPerSource)} } goto flood_input`,
    );
    chainText('flood_input', [
      'meta nfproto ipv4 update @flood_in4 { ip saddr }',
      `meta nfproto ipv6 update @flood_in6 { ip6 saddr & ${V6_PREFIX_MASK} }`,
      notify('input'),
      'drop',
    ]);
  }
  input.push(queue);
  chainText('queue_input', input);

  const chainNames = ['queue_output', 'queue_input'];
  if (outgoingPerUid > 0) chainNames.push('flood_output');
  if (incomingPerSource > 0) chainNames.push('flood_input');
  return { sets, chains, chainNames, dynamicSets, ruleCount };
}
