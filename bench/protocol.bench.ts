/**
 * Administration protocol benchmark, on loopback, server and consoles in one
 * process (so the figures include both ends' CPU on the same cores):
 * log items per second to 1 and to 10 consoles over UDP (share lost before
 * backfill, and after: must be 0), end-to-end latency at 10,000 items/s, RPC
 * round trips, and the memory of 1,000 logged-in consoles.
 * Run: npm run bench:protocol
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { FileConfigStore } from '../src/admin/config-store.js';
import { MemoryLogStore } from '../src/admin/log-store.js';
import { AdminServer } from '../src/admin/server.js';
import { loadOrCreateIdentity } from '../src/admin/tls-identity.js';
import { EngineClient } from '../src/client/engine-client.js';
import { Methods } from '../src/protocol/methods.js';

const dir = mkdtempSync(join(tmpdir(), 'warden-bench-'));
const identity = await loadOrCreateIdentity(join(dir, 'tls'));
const logs = new MemoryLogStore({ capacity: 2_000_000 });
const TOKEN = 'bench-token';
const server = await AdminServer.start({
  identity,
  users: { verify: async () => null },
  throttle: { check: () => ({ allowed: true }), failure: () => {}, success: () => {} },
  localToken: TOKEN,
  config: await FileConfigStore.open(join(dir, 'config')),
  logs,
  host: {
    executables: { engine: '/e', console: '/c', assistant: '/a' },
    environment: {},
    etcEnvironment: '',
  },
  now: Date.now,
  status: () => ({
    version: 'bench',
    hostname: 'bench',
    startedAt: '',
    fingerprint: identity.fingerprint,
    consoles: 0,
    kernel: 'none',
  }),
  hints: () => ({}),
  bindAddress: '127.0.0.1',
  port: 0,
  idleTimeoutMs: 600_000,
});

async function console_(): Promise<EngineClient> {
  const c = await EngineClient.connect({
    host: '127.0.0.1',
    port: server.port,
    verifyFingerprint: async () => {},
    timeoutMs: 30_000,
  });
  await c.login({ localToken: TOKEN });
  return c;
}

const wait = (ms: number) => new Promise((r) => setTimeout(r, ms));
const pct = (xs: number[], p: number) =>
  xs.sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor((xs.length * p) / 100))] ?? 0;
const fmt = (n: number, d = 0) =>
  n.toLocaleString('en-US', { maximumFractionDigits: d, minimumFractionDigits: d });

async function throughput(consoles: number, items: number): Promise<string> {
  const clients = await Promise.all(Array.from({ length: consoles }, console_));
  const got = new Array<number>(consoles).fill(0);
  const followers = await Promise.all(clients.map((c, i) => c.follow((xs) => (got[i]! += xs.length))));
  while (followers.some((f) => f.transport !== 'udp')) await wait(5);
  const t0 = performance.now();
  for (let sent = 0; sent < items; ) {
    for (let k = 0; k < 1000 && sent < items; k++, sent++)
      logs.append({
        kind: 'connection',
        verdict: 'allow',
        application: '/usr/bin/curl',
        remote: '93.184.215.14:443',
        message: 'allowed by rule web',
      });
    await new Promise((r) => setImmediate(r));
  }
  while (got.some((g) => g < items)) await wait(1);
  const seconds = (performance.now() - t0) / 1000;
  const backfilled = followers.reduce((s, f) => s + f.counters.backfilled, 0);
  const lost = followers.reduce((s, f) => s + f.counters.lost, 0);
  for (const f of followers) f.stop();
  for (const c of clients) c.close();
  return `${consoles} console(s): ${fmt((items * consoles) / seconds)} items/s delivered (${fmt(items / seconds)} items/s produced), lost before backfill ${fmt((backfilled / (items * consoles)) * 100, 3)}%, after backfill ${fmt((lost / (items * consoles)) * 100, 3)}%`;
}

async function latency(ratePerSecond: number, seconds: number): Promise<string> {
  const c = await console_();
  const lat: number[] = [];
  const f = await c.follow((xs) => {
    const now = performance.now();
    for (const x of xs) lat.push(now - Number(x.message));
  });
  while (f.transport !== 'udp') await wait(5);
  const perTick = ratePerSecond / 1000;
  const end = performance.now() + seconds * 1000;
  let sent = 0;
  while (performance.now() < end) {
    const due = Math.floor(((seconds * 1000 - (end - performance.now())) / 1000) * ratePerSecond);
    for (; sent < due; sent++) logs.append({ kind: 'system', message: String(performance.now()) });
    await wait(Math.max(1, 1 / perTick));
  }
  while (lat.length < sent) await wait(5);
  f.stop();
  c.close();
  return `latency at ${fmt(ratePerSecond)} items/s for ${seconds} s: p50 ${fmt(pct(lat, 50), 2)} ms, p99 ${fmt(pct(lat, 99), 2)} ms (${fmt(sent)} items)`;
}

async function rpc(count: number): Promise<string> {
  const c = await console_();
  const times: number[] = [];
  const t0 = performance.now();
  for (let i = 0; i < count; i++) {
    const s = performance.now();
    await c.call(Methods.whoami, {});
    times.push(performance.now() - s);
  }
  const seconds = (performance.now() - t0) / 1000;
  c.close();
  return `RPC over one TLS connection: ${fmt(count / seconds)} round trips/s, p50 ${fmt(pct(times, 50), 3)} ms, p99 ${fmt(pct(times, 99), 3)} ms`;
}

async function manyConsoles(n: number): Promise<string> {
  global.gc?.();
  await wait(100);
  const before = process.memoryUsage().rss;
  const clients: EngineClient[] = [];
  for (let i = 0; i < n; i += 50)
    clients.push(...(await Promise.all(Array.from({ length: Math.min(50, n - i) }, console_))));
  global.gc?.();
  await wait(200);
  const after = process.memoryUsage().rss;
  const ok = server.consoles;
  for (const c of clients) c.close();
  return `${fmt(ok)} logged-in consoles: RSS +${fmt((after - before) / 1024 / 1024, 1)} MB, ${fmt((after - before) / n / 1024, 1)} KiB per connection (both ends, one process)`;
}

console.log(
  `administration protocol benchmark (node ${process.version}, loopback, server and consoles in one process)`,
);
console.log(await throughput(1, 200_000));
console.log(await throughput(10, 50_000));
console.log(await latency(10_000, 3));
console.log(await rpc(5000));
console.log(await manyConsoles(1000));
await server.close();
rmSync(dir, { recursive: true, force: true });
process.exit(0);
