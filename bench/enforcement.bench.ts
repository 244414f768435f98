/**
 * The whole engine on the packet path (needs root; runs in a throwaway namespace pair): TCP
 * connections per second and connect latency from the client namespace with no ruleset (baseline),
 * then with `wardend run` enforcing the shipped defaults there, so that every new outgoing
 * connection is queued, attributed to its program (sock_diag + /proc), decided, logged and
 * accepted. Prints both and the ratio. Run: npm run bench:enforcement
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createNetnsPair, kernelTestsUnavailable, SERVER_ADDR } from '../test/kernel/netns.js';
import { startWardend } from '../test/kernel/wardend.js';
import { connectLoop, quantile } from './connect-loop.js';

const SECONDS = 3;
const PORT = 9000;
const SELF = fileURLToPath(import.meta.url);

async function worker(lanes: number): Promise<void> {
  const f = await connectLoop(SERVER_ADDR, PORT, SECONDS, lanes);
  process.stdout.write(
    JSON.stringify({ rate: f.rate, p50: quantile(f.latencies, 0.5), p99: quantile(f.latencies, 0.99) }),
  );
}

async function main(): Promise<void> {
  const reason = kernelTestsUnavailable();
  if (reason !== undefined) {
    console.log(`bench:enforcement skipped: ${reason} (it runs real packets in network namespaces)`);
    return;
  }
  const pair = createNetnsPair('be');
  const dir = mkdtempSync(join(tmpdir(), 'warden-bench-'));
  try {
    pair.spawn(pair.server, process.execPath, [
      '-e',
      `require('node:net').createServer((c) => c.on('error', () => {})).listen(${PORT});`,
    ]);
    await new Promise((r) => setTimeout(r, 300));
    type Figures = { rate: number; p50: number; p99: number };
    const run = (lanes: number) =>
      JSON.parse(pair.run(pair.client, process.execPath, [SELF, 'worker', String(lanes)])) as Figures;
    const plain = { one: run(1), many: run(16) };
    const engine = await startWardend(pair, pair.client, dir, 44334);
    const enforced = { one: run(1), many: run(16) };
    process.kill(engine.pid!, 'SIGTERM');
    const f = (n: number) => Math.round(n).toLocaleString('en-US');
    const ms = (n: number) => n.toFixed(2);
    console.log('                                   conn/s (16 lanes)   connect p50 / p99 ms (1 lane)');
    console.log(
      `no ruleset (baseline)              ${f(plain.many.rate).padStart(9)}           ${ms(plain.one.p50)} / ${ms(plain.one.p99)}`,
    );
    console.log(
      `wardend: queued, attributed, logged ${f(enforced.many.rate).padStart(8)}           ${ms(enforced.one.p50)} / ${ms(enforced.one.p99)}`,
    );
    console.log(
      `ratio: ${(enforced.many.rate / plain.many.rate).toFixed(2)}x the baseline's connections/s; +${ms(enforced.one.p50 - plain.one.p50)} ms per new connection (p50)`,
    );
  } finally {
    pair.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

if (process.argv[2] === 'worker') await worker(Number(process.argv[3]));
else await main();
