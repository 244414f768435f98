/**
 * Attack (issue 11, item 9): one program's flood starves the others. A denied program (uid
 * nobody) opens about 3,000 connections a second; an allowed program of another uid (root's node,
 * allowed by a rule the engine must judge) keeps connecting. With fail-closed (where the old engine
 * dropped the allowed program's SYNs from a full queue) its connects must stay within a bound.
 * Prints the allowed program's connect p50/p99 without and with the flood, same run.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { kernelTestsUnavailable, listenOn, SERVER_ADDR } from '../kernel/netns.js';
import { NODE } from '../kernel/wardend.js';
import { consoleRule, type KernelEngine, outputOf, startKernelEngine } from './kernel-engine.js';

const PORT = 44343;
const ALLOWED = 9200;
const DENIED = 9300;
const SAMPLES = 60;
/** Below one SYN retransmission (1 s): no connect of the allowed program may be dropped and sent again. */
const BOUND_MS = 900;

const POLICY = `
version: 1
mode: enforce
defaults:
  incoming: { action: deny, log: true }
  outgoing: { action: deny, log: true }
rules:
${consoleRule(PORT)}  - name: node to the allowed service
    direction: outgoing
    protocol: tcp
    application: ${NODE}
    remote: ${SERVER_ADDR}
    remotePorts: ${ALLOWED}
    action: allow
`;

/** SAMPLES sequential connects, 20 ms apart; prints each connect time in ms (5 s timeout each). */
const MEASURE = `
  const net = require('node:net'); const times = [];
  const one = () => new Promise((resolve) => {
    const t0 = process.hrtime.bigint();
    const s = net.connect(${ALLOWED}, '${SERVER_ADDR}');
    const done = (ms) => { s.destroy(); times.push(ms); resolve(); };
    s.setTimeout(5000, () => done(5000));
    s.on('connect', () => done(Number(process.hrtime.bigint() - t0) / 1e6));
    s.on('error', () => done(5000));
  });
  (async () => {
    for (let i = 0; i < ${SAMPLES}; i++) { await one(); await new Promise((r) => setTimeout(r, 20)); }
    console.log(JSON.stringify(times));
  })();`;

/** About 3,000 non-blocking connects a second to a denied port until killed; each socket lives 300 ms. */
const FLOOD = `
  const net = require('node:net'); const t0 = Date.now(); let n = 0;
  process.on('SIGTERM', () => { console.log(JSON.stringify({ rate: Math.round(n / ((Date.now() - t0) / 1000)) })); process.exit(0); });
  setInterval(() => {
    for (let i = 0; i < 30; i++, n++) {
      const s = net.connect(${DENIED}, '${SERVER_ADDR}');
      s.on('error', () => {});
      setTimeout(() => s.destroy(), 300);
    }
  }, 10);`;

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

describe('flood starvation', { skip: kernelTestsUnavailable() }, () => {
  let k: KernelEngine;
  before(async () => {
    k = await startKernelEngine('fl', PORT, POLICY, 'enforcement:\n  onEngineFailure: closed\n');
    await listenOn(k.pair, k.pair.server, [ALLOWED, DENIED]);
  });
  after(() => k?.close());

  test("an allowed program's connects stay within a bound while another uid floods", async () => {
    const measure = async () =>
      (JSON.parse(await outputOf(k.spawnAs('root', NODE, ['-e', MEASURE]))) as number[]).sort(
        (a, b) => a - b,
      );
    const quiet = await measure();
    const flood = k.spawnAs('nobody', NODE, ['-e', FLOOD]);
    const flooded = outputOf(flood);
    let loaded: number[];
    try {
      await new Promise((r) => setTimeout(r, 1500)); // the flood at full rate, the queue under load
      loaded = await measure();
    } finally {
      if (flood.exitCode === null && flood.pid) process.kill(flood.pid, 'SIGTERM');
    }
    const { rate } = JSON.parse(await flooded) as { rate: number };
    const figures = (t: number[]) =>
      `p50 ${percentile(t, 50).toFixed(1)} ms, p99 ${percentile(t, 99).toFixed(1)} ms`;
    console.log(
      `allowed connect, no flood: ${figures(quiet)}; during a flood of ${rate} connects/s by uid 65534: ${figures(loaded)}`,
    );
    assert.ok(percentile(quiet, 99) < BOUND_MS, `without flood: ${figures(quiet)}`);
    assert.ok(percentile(loaded, 99) < BOUND_MS, `during the flood: ${figures(loaded)}`);
    assert.ok(engineAlive(k), k.engine.output());

    const end = Date.now() + 15_000;
    for (;;) {
      const flooded = (await k.logs({ kind: 'security' })).filter(
        (i) => i.user === '65534' && /^flood: \d+ /.test(i.message),
      );
      if (flooded.length > 0) break;
      assert.ok(Date.now() < end, 'the flood is logged as a security item naming uid 65534');
      await new Promise((r) => setTimeout(r, 500));
    }
  });
});

function engineAlive(k: KernelEngine): boolean {
  return k.engine.exitCode === null;
}
