/**
 * A small authoritative DNS stand-in on loopback UDP for tests: answers A, AAAA and PTR
 * questions from a table the test controls (and changes), with the TTL it says; NXDOMAIN
 * otherwise. Counts the questions so tests can see re-resolution.
 */
import { createSocket } from 'node:dgram';
import { isIPv4 } from 'node:net';

export interface DnsRecord {
  readonly type: 'A' | 'AAAA' | 'PTR';
  readonly value: string;
  readonly ttl: number;
}

const TYPES = { A: 1, PTR: 12, AAAA: 28 } as const;

export interface DnsStandIn {
  readonly address: string;
  readonly records: Map<string, DnsRecord[]>;
  readonly questions: string[];
  /** Names the stand-in never answers (a lookup then waits until the resolver gives up). */
  readonly unanswered: Set<string>;
  close(): Promise<void>;
}

function encodeName(name: string): Buffer {
  const parts = name.replace(/\.$/, '').split('.');
  return Buffer.concat([
    ...parts.map((p) => Buffer.concat([Buffer.from([p.length]), Buffer.from(p)])),
    Buffer.from([0]),
  ]);
}

function rdata(r: DnsRecord): Buffer {
  if (r.type === 'A') return Buffer.from(r.value.split('.').map(Number));
  if (r.type === 'PTR') return encodeName(r.value);
  const groups = r.value.includes('::')
    ? (() => {
        const [a, b] = r.value.split('::') as [string, string];
        const head = a === '' ? [] : a.split(':');
        const tail = b === '' ? [] : b.split(':');
        return [...head, ...Array(8 - head.length - tail.length).fill('0'), ...tail];
      })()
    : r.value.split(':');
  const out = Buffer.alloc(16);
  for (const [i, g] of groups.entries()) out.writeUInt16BE(Number.parseInt(g, 16), i * 2);
  return out;
}

/** Starts the stand-in on `host`:`port` (default 127.0.0.1, an ephemeral port). */
export async function startDnsStandIn(host = '127.0.0.1', port = 0): Promise<DnsStandIn> {
  const socket = createSocket('udp4');
  const records = new Map<string, DnsRecord[]>();
  const questions: string[] = [];
  const unanswered = new Set<string>();
  socket.on('message', (msg, rinfo) => {
    let off = 12;
    const labels: string[] = [];
    while (msg[off]! > 0) {
      labels.push(msg.subarray(off + 1, off + 1 + msg[off]!).toString());
      off += msg[off]! + 1;
    }
    off += 1;
    const qtype = msg.readUInt16BE(off);
    const question = msg.subarray(12, off + 4);
    const name = labels.join('.').toLowerCase();
    const type = (Object.keys(TYPES) as (keyof typeof TYPES)[]).find((k) => TYPES[k] === qtype);
    questions.push(`${type ?? qtype} ${name}`);
    if (unanswered.has(name)) return;
    const answers = (records.get(name) ?? []).filter((r) => r.type === type);
    const known = records.has(name);
    const header = Buffer.alloc(12);
    header.writeUInt16BE(msg.readUInt16BE(0), 0);
    header.writeUInt16BE(known ? 0x8580 : 0x8583, 2); // response, authoritative, RD+RA; NXDOMAIN when unknown
    header.writeUInt16BE(1, 4);
    header.writeUInt16BE(answers.length, 6);
    const body = answers.map((r) => {
      const data = rdata(r);
      const rr = Buffer.alloc(12);
      rr.writeUInt16BE(0xc00c, 0);
      rr.writeUInt16BE(TYPES[r.type], 2);
      rr.writeUInt16BE(1, 4);
      rr.writeUInt32BE(r.ttl, 6);
      rr.writeUInt16BE(data.length, 10);
      return Buffer.concat([rr, data]);
    });
    socket.send(Buffer.concat([header, question, ...body]), rinfo.port, rinfo.address);
  });
  await new Promise<void>((r) => socket.bind(port, host, () => r()));
  return {
    address: `${host}:${socket.address().port}`,
    records,
    questions,
    unanswered,
    close: () => new Promise((r) => socket.close(() => r())),
  };
}

/** The in-addr.arpa / ip6.arpa name of an address, for PTR records. */
export function reverseName(address: string): string {
  if (isIPv4(address)) return `${address.split('.').reverse().join('.')}.in-addr.arpa`;
  throw new Error('IPv6 PTR names are not needed by the tests');
}
