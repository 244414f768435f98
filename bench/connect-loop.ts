/** Load for kernel benchmarks: TCP connections opened and reset in lanes, as fast as they are accepted. */
import { connect } from 'node:net';

export interface ConnectFigures {
  /** Connections per second over the run. */
  readonly rate: number;
  /** Connect latencies in milliseconds, sorted. */
  readonly latencies: number[];
}

/** Opens and resets connections to host:port, `lanes` at a time, for `seconds`. */
export async function connectLoop(
  host: string,
  port: number,
  seconds: number,
  lanes: number,
): Promise<ConnectFigures> {
  const latencies: number[] = [];
  const end = Date.now() + seconds * 1000;
  const lane = async () => {
    while (Date.now() < end) await connectOnce(host, port, latencies);
  };
  const started = Date.now();
  await Promise.all(Array.from({ length: lanes }, lane));
  return {
    rate: latencies.length / ((Date.now() - started) / 1000),
    latencies: latencies.sort((a, b) => a - b),
  };
}

/** One connection to each of `count` ports of `host` from `firstPort` up, one at a time: their connect latencies in ms (in order). */
export async function connectEach(host: string, firstPort: number, count: number): Promise<number[]> {
  const latencies: number[] = [];
  for (let port = firstPort; port < firstPort + count; port++) await connectOnce(host, port, latencies);
  return latencies;
}

/** Opens one connection and resets it once connected; its connect latency (ms) goes to `latencies` (none when it failed). */
function connectOnce(host: string, port: number, latencies: number[]): Promise<void> {
  return new Promise((resolve) => {
    const started = process.hrtime.bigint();
    const s = connect(port, host);
    s.once('connect', () => {
      latencies.push(Number(process.hrtime.bigint() - started) / 1e6);
      s.resetAndDestroy();
      resolve();
    });
    s.once('error', () => resolve());
  });
}

/** The q-quantile of sorted values. */
export function quantile(sorted: readonly number[], q: number): number {
  return sorted.length === 0
    ? Number.NaN
    : sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!;
}
