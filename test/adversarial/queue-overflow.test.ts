/**
 * Attack (issue 11, item 1): a denied program (uid nobody) opens 1,500 non-blocking connects at
 * once to overflow the engine's queue. With the shipped defaults (onEngineFailure: open) the old
 * queue accepted what did not fit (475 of 1,500 got through, none logged). Now a full queue drops,
 * the flood limit drops the excess before the queue, the SYNs come again and are judged: none may
 * connect, and every connect is accounted for in the log (deny items or the flood count).
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { kernelTestsUnavailable, listenOn, SERVER_ADDR } from '../kernel/netns.js';
import { denyAllPolicy, NODE } from '../kernel/wardend.js';
import { type KernelEngine, outputOf, startKernelEngine } from './kernel-engine.js';

const PORT = 44341;
const TARGET = 9100;
const CONNECTS = 1500;

const POLICY = denyAllPolicy(PORT);

describe('queue overflow by a denied flood', { skip: kernelTestsUnavailable() }, () => {
  let k: KernelEngine;
  before(async () => {
    k = await startKernelEngine('qo', PORT, POLICY, ''); // shipped settings: onEngineFailure open
    await listenOn(k.pair, k.pair.server, [TARGET]);
  });
  after(() => k?.close());

  test(`${CONNECTS} non-blocking connects at once from a denied program: 0 connect, all are logged`, async () => {
    // Every socket waits 8 s: the first SYN and its retransmissions at +1 s and +3 s and +7 s.
    const flood = k.spawnAs('nobody', NODE, [
      '-e',
      `const net = require('node:net'); let connected = 0, ended = 0; const ports = [];
       for (let i = 0; i < ${CONNECTS}; i++) {
         const s = net.connect({ port: ${TARGET}, host: '${SERVER_ADDR}' });
         s.on('connect', () => { connected++; });
         s.on('error', () => {});
         s.on('lookup', () => {});
         setImmediate(() => { if (s.localPort) ports.push(s.localPort); });
         setTimeout(() => { s.destroy(); if (++ended === ${CONNECTS}) { console.log(JSON.stringify({ connected, ports })); process.exit(0); } }, 8000);
       }`,
    ]);
    const report = JSON.parse(await outputOf(flood)) as { connected: number; ports: number[] };
    assert.equal(report.connected, 0, `${report.connected} of ${CONNECTS} denied connections got through`);
    assert.ok(report.ports.length > CONNECTS * 0.9, `source ports known for ${report.ports.length}`);

    // Logged: each source port has a deny item, or its SYNs were dropped over the flood limit and
    // counted in a security item for uid 65534 (packets, so at least one per connection left).
    let denied = new Set<number>();
    let flooded = 0;
    const end = Date.now() + 20_000;
    for (;;) {
      const items = await k.logs({ address: SERVER_ADDR });
      denied = new Set(
        items
          .filter(
            (i) => i.kind === 'connection' && i.verdict === 'deny' && i.remote === `${SERVER_ADDR}:${TARGET}`,
          )
          .map((i) => Number(i.local?.split(':').pop())),
      );
      const security = await k.logs({ kind: 'security' });
      flooded = security
        .filter((i) => i.user === '65534' && /^flood: /.test(i.message))
        .reduce((sum, i) => sum + Number(/^flood: (\d+)/.exec(i.message)![1]), 0);
      const unaccounted = report.ports.filter((p) => !denied.has(p)).length;
      if (unaccounted <= flooded || Date.now() > end) {
        assert.ok(
          unaccounted <= flooded,
          `${unaccounted} connections neither denied in the log nor counted as flood (${flooded} packets)`,
        );
        break;
      }
      await new Promise((r) => setTimeout(r, 1000));
    }
    console.log(
      `queue overflow: ${CONNECTS} connects, 0 connected, ${denied.size} deny items, ${flooded} packets dropped over the flood limit and logged`,
    );
  });
});
