/**
 * The consoles of the protocol benchmark, run in a child process (forked by
 * protocol.bench.ts) so they have their own event loop and the engine's UDP
 * datagrams are read as fast as a real remote console would read them.
 * Commands come over IPC: `follow` connects N consoles, follows logs and
 * reports when every console has `expect` items (with counters and
 * latencies), `close` ends them.
 */
import { performance } from 'node:perf_hooks';
import { EngineClient, type LogFollower } from '../src/client/engine-client.js';

export interface FollowCommand {
  readonly cmd: 'follow';
  readonly port: number;
  readonly token: string;
  readonly consoles: number;
  readonly expect: number;
  /**
   * Items carry their send time (epoch ms) as the message: measure latency. A message of `w` and
   * the time is an item of the warm-up before the measured run: its latency is kept apart.
   */
  readonly latency: boolean;
}

export interface FollowReport {
  readonly ready?: true;
  readonly done?: true;
  readonly at?: number;
  readonly delivered?: number;
  readonly backfilled?: number;
  readonly lost?: number;
  readonly udpBufferBytes?: number;
  readonly latencies?: number[];
  /** The latencies of the warm-up items. */
  readonly warmUp?: number[];
}

const now = () => performance.timeOrigin + performance.now();
const send = (r: FollowReport) => process.send?.(r);
let clients: EngineClient[] = [];
let followers: LogFollower[] = [];

async function follow(c: FollowCommand): Promise<void> {
  clients = await Promise.all(
    Array.from({ length: c.consoles }, async () => {
      const client = await EngineClient.connect({
        host: '127.0.0.1',
        port: c.port,
        verifyFingerprint: async () => {},
        timeoutMs: 60_000,
      });
      await client.login({ localToken: c.token });
      return client;
    }),
  );
  const got = new Array<number>(c.consoles).fill(0);
  const latencies: number[] = [];
  const warmUp: number[] = [];
  let finished = 0;
  followers = await Promise.all(
    clients.map((client, i) =>
      client.follow((items) => {
        if (c.latency) {
          const t = now();
          for (const x of items) {
            if (x.kind !== 'system') continue;
            if (x.message.startsWith('w')) warmUp.push(t - Number(x.message.slice(1)));
            else latencies.push(t - Number(x.message));
          }
        }
        got[i]! += items.length;
        if (got[i]! >= c.expect && got[i]! - items.length < c.expect && ++finished === c.consoles) {
          send({
            done: true,
            at: now(),
            delivered: got.reduce((a, b) => a + b, 0),
            backfilled: followers.reduce((s, f) => s + f.counters.backfilled, 0),
            lost: followers.reduce((s, f) => s + f.counters.lost, 0),
            ...(c.latency ? { latencies, warmUp } : {}),
          });
        }
      }),
    ),
  );
  while (followers.some((f) => f.transport !== 'udp')) await new Promise((r) => setTimeout(r, 5));
  send({ ready: true, udpBufferBytes: followers[0]?.udpReceiveBufferBytes ?? 0 });
}

process.on('message', (m: FollowCommand | { cmd: 'close' }) => {
  if (m.cmd === 'follow') void follow(m);
  else {
    for (const f of followers) f.stop();
    for (const c of clients) c.close();
    process.exit(0);
  }
});
