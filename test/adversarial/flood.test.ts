/**
 * Attack (issue 11, item 9): one program's flood starves the others. A denied program (uid
 * nobody) opens about 3,000 connections a second; an allowed program of another uid (root's node,
 * allowed by a rule the engine must judge) keeps connecting. With fail-closed (where the old engine
 * dropped the allowed program's SYNs from a full queue) its connects must stay within a bound.
 * Prints the allowed program's connect p50/p99 without and with the flood, same run. The same
 * for incoming: one remote address floods, another keeps reaching a local server; an IPv6 peer
 * that spreads its flood over addresses of one /64 is limited as one.
 */
import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { after, before, describe, test } from 'node:test';
import { CLIENT_ADDR, CLIENT_ADDR6, kernelTestsUnavailable, listenOn, SERVER_ADDR } from '../kernel/netns.js';
import { denyAllPolicy, NODE } from '../kernel/wardend.js';
import { type KernelEngine, outputOf, startKernelEngine } from './kernel-engine.js';

const PORT = 44343;
const ALLOWED = 9200;
const DENIED = 9300;
/** Incoming: node serves SERVED in the client namespace (a rule the engine judges); CLOSED is denied. */
const SERVED = 7001;
const CLOSED = 7000;
const OTHER_PEER = '10.200.0.3';
const PEERS6 = ['fd00:200::2', 'fd00:200::5', 'fd00:200::6'];
const SAMPLES = 60;
/** Below one SYN retransmission (1 s): no connect of the allowed program may be dropped and sent again. */
const BOUND_MS = 900;

const POLICY = denyAllPolicy(
  PORT,
  `  - name: node to the allowed service
    direction: outgoing
    protocol: tcp
    application: ${NODE}
    remote: ${SERVER_ADDR}
    remotePorts: ${ALLOWED}
    action: allow
  - name: node serves ${SERVED}
    direction: incoming
    protocol: tcp
    application: ${NODE}
    localPorts: ${SERVED}
    action: allow
`,
);

/** SAMPLES sequential connects, 20 ms apart; prints each connect time in ms (5 s timeout each). */
const measure = (host: string, port: number, localAddress?: string) => `
  const net = require('node:net'); const times = [];
  const one = () => new Promise((resolve) => {
    const t0 = process.hrtime.bigint();
    const s = net.connect(${JSON.stringify({ host, port, ...(localAddress ? { localAddress } : {}) })});
    let over = false;
    const done = (value) => { if (over) return; over = true; s.destroy(); times.push(value); resolve(); };
    s.setTimeout(5000, () => done('timeout'));
    s.on('connect', () => done(Number(process.hrtime.bigint() - t0) / 1e6));
    s.on('error', (e) => done(e.code));
  });
  (async () => {
    for (let i = 0; i < ${SAMPLES}; i++) { await one(); await new Promise((r) => setTimeout(r, 20)); }
    console.log(JSON.stringify(times));
  })();`;

/** About 3,000 non-blocking connects a second (from the given local addresses in turn) until SIGTERM. */
const flood = (host: string, port: number, from: readonly string[] = []) => `
  const net = require('node:net'); const t0 = Date.now(); let n = 0; const from = ${JSON.stringify(from)};
  process.on('SIGTERM', () => { console.log(JSON.stringify({ rate: Math.round(n / ((Date.now() - t0) / 1000)) })); process.exit(0); });
  setInterval(() => {
    for (let i = 0; i < 30; i++, n++) {
      const options = { host: '${host}', port: ${port} };
      if (from.length > 0) options.localAddress = from[n % from.length];
      const s = net.connect(options);
      s.on('error', () => {});
      setTimeout(() => s.destroy(), 300);
    }
  }, 10);`;

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}
const figures = (t: number[]) =>
  `p50 ${percentile(t, 50).toFixed(1)} ms, p99 ${percentile(t, 99).toFixed(1)} ms`;
/** The connect times in order; a connect that failed (error code or 'timeout') fails the test. */
const sorted = (out: string) => {
  const results = JSON.parse(out) as (number | string)[];
  const failed = results.filter((r) => typeof r === 'string');
  assert.deepEqual(failed, [], `connects that failed: ${failed.join(', ')}`);
  return (results as number[]).sort((a, b) => a - b);
};

/** Runs `measured` while `floodChild` floods; returns the measured times and the flood's rate. */
async function during(floodChild: ChildProcess, measured: () => Promise<number[]>) {
  const report = outputOf(floodChild);
  let times: number[];
  try {
    await new Promise((r) => setTimeout(r, 1500)); // the flood at full rate, the queue under load
    times = await measured();
  } finally {
    if (floodChild.exitCode === null && floodChild.pid) process.kill(floodChild.pid, 'SIGTERM');
  }
  return { times, rate: (JSON.parse(await report) as { rate: number }).rate };
}

describe('flood starvation', { skip: kernelTestsUnavailable() }, () => {
  let k: KernelEngine;
  before(async () => {
    k = await startKernelEngine('fl', PORT, POLICY, 'enforcement:\n  onEngineFailure: closed\n');
    await listenOn(k.pair, k.pair.server, [ALLOWED, DENIED]);
    const { server } = k.pair;
    k.pair.run(server, 'ip', ['addr', 'add', `${OTHER_PEER}/24`, 'dev', 'wd1']);
    for (const a of PEERS6.slice(1))
      k.pair.run(server, 'ip', ['addr', 'add', `${a}/64`, 'dev', 'wd1', 'nodad']);
  });
  after(() => k?.close());

  /** Waits for a security item about a flood naming `who` (user for uids, remote for sources). */
  const floodLogged = async (field: 'user' | 'remote', who: string) => {
    const end = Date.now() + 15_000;
    for (;;) {
      const items = await k.logs({ kind: 'security' });
      if (items.some((i) => i[field] === who && /^flood: \d+ /.test(i.message))) return;
      assert.ok(Date.now() < end, `the flood is logged as a security item naming ${who}`);
      await new Promise((r) => setTimeout(r, 500));
    }
  };

  test("an allowed program's connects stay within a bound while another uid floods", async () => {
    const run = async () =>
      sorted(await outputOf(k.spawnAs('root', NODE, ['-e', measure(SERVER_ADDR, ALLOWED)])));
    const quiet = await run();
    const { times, rate } = await during(k.spawnAs('nobody', NODE, ['-e', flood(SERVER_ADDR, DENIED)]), run);
    console.log(
      `outgoing: allowed connect, no flood: ${figures(quiet)}; during a flood of ${rate} connects/s by uid 65534: ${figures(times)}`,
    );
    assert.ok(percentile(quiet, 99) < BOUND_MS, `without flood: ${figures(quiet)}`);
    assert.ok(percentile(times, 99) < BOUND_MS, `during the flood: ${figures(times)}`);
    assert.equal(k.engine.exitCode, null, k.engine.output());
    await floodLogged('user', '65534');
  });

  test('incoming: one source floods, another still reaches a served port; a /64 is one source', async () => {
    const server = k.spawnAs('root', NODE, [
      '-e',
      `require('node:net').createServer((c) => c.end()).listen(${SERVED}, '::', () => console.log('ready'));`,
    ]);
    try {
      await once(server.stdout!, 'data');
      const run = async () =>
        sorted(k.pair.run(k.pair.server, NODE, ['-e', measure(CLIENT_ADDR, SERVED, OTHER_PEER)]));
      const quiet = await run();
      const remoteFlood = k.pair.spawn(k.pair.server, NODE, ['-e', flood(CLIENT_ADDR, CLOSED)], {
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      const { times, rate } = await during(remoteFlood, run);
      console.log(
        `incoming: connect from ${OTHER_PEER}, no flood: ${figures(quiet)}; during a flood of ${rate} connects/s from ${SERVER_ADDR}: ${figures(times)}`,
      );
      assert.ok(percentile(times, 99) < BOUND_MS, `during the flood: ${figures(times)}`);
      await floodLogged('remote', SERVER_ADDR);

      // IPv6: three addresses of one /64 share one bucket, and it is named by its /64.
      const v6 = k.pair.spawn(k.pair.server, NODE, ['-e', flood(CLIENT_ADDR6, CLOSED, PEERS6)], {
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      const done = outputOf(v6);
      await new Promise((r) => setTimeout(r, 1000));
      if (v6.pid && v6.exitCode === null) process.kill(v6.pid, 'SIGTERM');
      await done;
      await floodLogged('remote', 'fd00:200::');
    } finally {
      if (server.pid && server.exitCode === null) process.kill(server.pid, 'SIGKILL');
    }
  });
});
