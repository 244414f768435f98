/**
 * Engine-side cost of pushing live log items over the UDP channel: items/s
 * through append -> queue per session -> flush (setImmediate per burst) ->
 * pack -> AES-256-GCM seal -> socket.send, to a sink socket in a worker
 * thread that only counts datagrams. Items are appended 1,000 per
 * event-loop turn, as in protocol.bench.ts. The baseline, measured in the
 * same run against the same sink, is a copy of the previous algorithm (a ring,
 * spread and toISOString per append, JSON.stringify per item and per session).
 * Run: npm run bench:log-push
 */
import { createSocket, type Socket } from 'node:dgram';
import { once } from 'node:events';
import { cpus } from 'node:os';
import { performance } from 'node:perf_hooks';
import { Worker } from 'node:worker_threads';
import { UdpLogChannel } from '../src/admin/log-channel.js';
import { MemoryLogStore } from '../src/admin/log-store.js';
import { Session, SessionTable } from '../src/admin/session.js';
import {
  DatagramType,
  HEADER_BYTES,
  MAX_DATAGRAM_BYTES,
  sealDatagram,
  TAG_BYTES,
} from '../src/protocol/datagram.js';
import { EncodedLogItem } from '../src/protocol/log-bodies.js';
import type { LogItem, NewLogItem } from '../src/protocol/log-item.js';
import type { RpcPeer } from '../src/rpc/peer.js';
import { formatRatio, reportMeasure } from './report.js';

const ITEMS = process.env.BENCH_QUICK === '1' ? 60_000 : 300_000;
const ROUNDS = 3;
/** Stored items, as the protocol benchmark's store keeps them (every item stays in memory). */
const RING_CAPACITY = 2_000_000;
const CONNECTION_ITEM = {
  kind: 'connection',
  verdict: 'allow',
  application: '/usr/bin/curl',
  remote: '93.184.215.14:443',
  message: 'allowed by rule web',
} as const;

/** A sink in its own thread: one socket per console, counting datagrams. */
async function startSink(consoles: number) {
  const worker = new Worker(
    `const { parentPort, workerData } = require('node:worker_threads');
     const { createSocket } = require('node:dgram');
     let count = 0;
     const ports = [];
     let bound = 0;
     for (let i = 0; i < workerData; i++) {
       const s = createSocket({ type: 'udp4', recvBufferSize: 8 << 20 });
       s.on('message', () => count++);
       s.bind(0, '127.0.0.1', () => {
         ports[i] = s.address().port;
         if (++bound === workerData) parentPort.postMessage({ ports });
       });
     }
     parentPort.on('message', () => parentPort.postMessage({ count }));`,
    { eval: true, workerData: consoles },
  );
  const [{ ports }] = (await once(worker, 'message')) as [{ ports: number[] }];
  return {
    ports,
    count: async () => {
      worker.postMessage('count');
      const [{ count }] = (await once(worker, 'message')) as [{ count: number }];
      return count;
    },
    close: () => worker.terminate(),
  };
}

/** What both variants share: one socket, sessions registered at the sink's ports. */
function sessionsAt(ports: number[]): Session[] {
  return ports.map((port) => {
    const s = new Session('bench', 'auditor', '127.0.0.1', {} as RpcPeer);
    s.udpEndpoint = { address: '127.0.0.1', port };
    s.transport = 'udp';
    s.subscribed = true;
    return s;
  });
}

interface Pusher {
  append(item: NewLogItem): void;
  readonly datagrams: number;
}

/** The previous algorithm, kept here as the baseline. */
function baselinePusher(socket: Socket, sessions: Session[]): Pusher {
  const bodyLimit = MAX_DATAGRAM_BYTES - HEADER_BYTES - TAG_BYTES;
  const queues = sessions.map(() => [] as LogItem[]);
  const ring = new Array<LogItem>(RING_CAPACITY);
  let lastSeq = 0;
  let datagrams = 0;
  let scheduled = false;
  const send = (s: Session, body: Buffer) => {
    const to = s.udpEndpoint!;
    socket.send(sealDatagram(DatagramType.LOGS, s.id, s.nextSeq++, s.key, body), to.port, to.address);
    datagrams++;
  };
  const sendItems = (s: Session, items: readonly LogItem[]) => {
    let parts: string[] = [];
    let size = 11;
    const flush = () => {
      if (parts.length === 0) return;
      send(s, Buffer.from(`{"items":[${parts.join(',')}]}`));
      parts = [];
      size = 11;
    };
    for (const item of items) {
      const json = JSON.stringify(item);
      const bytes = Buffer.byteLength(json) + 1;
      if (11 + bytes > bodyLimit) continue;
      if (size + bytes > bodyLimit) flush();
      parts.push(json);
      size += bytes;
    }
    flush();
  };
  const flush = () => {
    scheduled = false;
    sessions.forEach((s, i) => {
      const items = queues[i]!;
      queues[i] = [];
      sendItems(s, items);
    });
  };
  return {
    append(item) {
      const seq = ++lastSeq;
      const stored: LogItem = { ...item, seq, time: item.time ?? new Date().toISOString() };
      ring[seq % ring.length] = stored;
      for (const q of queues) q.push(stored);
      if (!scheduled) {
        scheduled = true;
        setImmediate(flush);
      }
    },
    get datagrams() {
      return datagrams;
    },
  };
}

/** The engine's code: MemoryLogStore, items encoded once per item, UdpLogChannel (as AdminServer wires them). */
function currentPusher(socket: Socket, sessions: Session[]): Pusher {
  const logs = new MemoryLogStore({ capacity: RING_CAPACITY });
  const table = new SessionTable();
  for (const s of sessions) table.add(s);
  const channel = new UdpLogChannel(socket, table, {
    allowSource: () => false,
    onRegistered: () => {},
    lastSeq: () => logs.lastSeq,
  });
  let scheduled = false;
  const flush = () => {
    scheduled = false;
    for (const s of table.all()) {
      const items = s.queue;
      s.queue = [];
      channel.sendItems(s, items);
    }
  };
  logs.subscribe((item) => {
    let encoded: EncodedLogItem | undefined;
    for (const s of table.all()) {
      encoded ??= new EncodedLogItem(item);
      s.queue.push(encoded);
    }
    if (!scheduled) {
      scheduled = true;
      setImmediate(flush);
    }
  });
  return {
    append: (item) => logs.append(item),
    get datagrams() {
      return channel.counters.sent;
    },
  };
}

async function run(make: (socket: Socket, sessions: Session[]) => Pusher, consoles: number) {
  const sink = await startSink(consoles);
  const socket = createSocket('udp4');
  await new Promise<void>((r) => socket.bind(0, '127.0.0.1', r));
  const pusher = make(socket, sessionsAt(sink.ports));
  const t0 = performance.now();
  for (let sent = 0; sent < ITEMS; ) {
    for (let k = 0; k < 1000 && sent < ITEMS; k++, sent++) pusher.append(CONNECTION_ITEM);
    await new Promise((r) => setImmediate(r));
  }
  await new Promise((r) => setImmediate(r));
  const seconds = (performance.now() - t0) / 1000;
  await new Promise((r) => setTimeout(r, 200));
  const received = await sink.count();
  await sink.close();
  socket.close();
  global.gc?.();
  return { perSecond: ITEMS / seconds, datagrams: pusher.datagrams, received };
}

const fmt = (n: number, d = 0) =>
  n.toLocaleString('en-US', { maximumFractionDigits: d, minimumFractionDigits: d });

console.log(
  `log push benchmark (node ${process.version}, ${cpus().length} CPUs): engine-side items/s, append -> flush -> seal -> send to a counting sink; ${fmt(ITEMS)} items, best of ${ROUNDS} rounds`,
);
for (const consoles of [1, 10]) {
  let base = { perSecond: 0, datagrams: 0, received: 0 };
  let next = { perSecond: 0, datagrams: 0, received: 0 };
  // Alternate the two, so a noisy neighbour hurts both alike.
  for (let round = 0; round < ROUNDS; round++) {
    const b = await run(baselinePusher, consoles);
    if (b.perSecond > base.perSecond) base = b;
    const n = await run(currentPusher, consoles);
    if (n.perSecond > next.perSecond) next = n;
  }
  const line = (name: string, f: typeof base) =>
    `${name} ${consoles} console(s): ${fmt(f.perSecond)} items/s (${fmt(f.datagrams)} datagrams, ${fmt(f.received)} at the sink)`;
  console.log(line('baseline', base));
  console.log(`${line('current ', next)}; ${fmt(next.perSecond / base.perSecond, 2)}x the baseline`);
  reportMeasure({
    measure: `log push: engine-side items/s to ${consoles} console(s)`,
    goal: '',
    measured: `${fmt(next.perSecond)} items/s`,
    baseline: `${fmt(base.perSecond)} items/s (previous algorithm)`,
    ratio: formatRatio(next.perSecond, base.perSecond),
    met: null,
  });
}
process.exit(0);
