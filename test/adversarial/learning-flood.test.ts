/**
 * Attack (issue 13, learning mode's proposals): in learning mode every connection no rule decides
 * becomes a proposed rule the engine keeps. A program of another uid (nobody) connects to a new
 * destination port thousands of times a second, so that every connection is a new proposal. The
 * engine must keep at most its cap (1,000) and only count the rest, its memory must not grow with
 * the flood, and a legitimate program's new connection must still be allowed and proposed.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { after, before, describe, test } from 'node:test';
import { kernelTestsUnavailable, listenOn, SERVER_ADDR } from '../kernel/netns.js';
import { NODE } from '../kernel/wardend.js';
import { consoleRule, type KernelEngine, outputOf, startKernelEngine } from './kernel-engine.js';

const PORT = 44347;
const LEGIT = 9400;
const CAP = 1000;

const POLICY = `
version: 1
mode: learning
defaults:
  incoming: { action: deny, log: true }
  outgoing: { action: deny, log: false }
rules:
${consoleRule(PORT)}`;

/** About 3,000 connects a second, each to the next destination port (a new proposal each), until SIGTERM. */
const flood = `
  const net = require('node:net'); let n = 0;
  process.on('SIGTERM', () => { console.log(JSON.stringify({ sent: n })); process.exit(0); });
  setInterval(() => {
    for (let i = 0; i < 30; i++, n++) {
      const port = 10000 + (n % 50000);
      const s = net.connect({ host: '${SERVER_ADDR}', port });
      s.on('error', () => {});
      setTimeout(() => s.destroy(), 300);
    }
  }, 10);`;

interface ListResult {
  proposals: { application: string; port?: number; count: number }[];
  cap: number;
  notStored: number;
}

/** Resident memory of a process in KiB. */
const rssOf = (pid: number) => Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))![1]);

describe('learning mode under a flood of new destinations', { skip: kernelTestsUnavailable() }, () => {
  let k: KernelEngine;
  before(async () => {
    k = await startKernelEngine('lf', PORT, POLICY, 'enforcement:\n  onEngineFailure: closed\n');
    await listenOn(k.pair, k.pair.server, [LEGIT]);
  });
  after(() => k?.close());

  test('proposals stay within the cap, the rest is only counted, memory stays flat', async () => {
    const list = () => k.call('proposals.list', {}) as Promise<ListResult>;
    const empty = await list();
    assert.equal(empty.cap, CAP);
    const rssBefore = rssOf(k.engine.pid!);
    const child = k.spawnAs('nobody', NODE, ['-e', flood]);
    const report = outputOf(child);
    let r: ListResult = empty;
    try {
      // Until the book is full and a good many more were turned away (bounded: 60 s).
      const end = Date.now() + 60_000;
      while (r.notStored < 2 * CAP && Date.now() < end) {
        await new Promise((resolve) => setTimeout(resolve, 1000));
        r = await list();
        assert.ok(r.proposals.length <= CAP, `${r.proposals.length} proposals kept`);
      }
    } finally {
      if (child.exitCode === null && child.pid) process.kill(child.pid, 'SIGTERM');
    }
    const { sent } = JSON.parse(await report) as { sent: number };
    const rssAfter = rssOf(k.engine.pid!);
    console.log(
      `flood: ${sent} connects sent, ${r.proposals.length} proposals kept, ${r.notStored} counted only; ` +
        `engine RSS ${Math.round(rssBefore / 1024)} MiB -> ${Math.round(rssAfter / 1024)} MiB`,
    );
    assert.equal(r.proposals.length, CAP);
    assert.ok(r.notStored >= 2 * CAP, `${r.notStored} counted beyond the cap`);
    // Generous: the engine's heap moves with the flood's log and queue work; a proposal per connect
    // kept (tens of thousands of rules and keys) would add far more.
    assert.ok(rssAfter - rssBefore < 96 * 1024, `RSS grew by ${rssAfter - rssBefore} KiB`);
    // Learning mode still lets a new connection through while the book is full.
    const legit = k.spawnAs('root', NODE, [
      '-e',
      `const s = require('node:net').connect({ host: '${SERVER_ADDR}', port: ${LEGIT} });
         s.on('connect', () => { console.log('connected'); s.destroy(); });
         s.on('error', (e) => { console.log(e.code); process.exit(1); });
         s.setTimeout(5000, () => { console.log('timeout'); process.exit(1); });`,
    ]);
    assert.equal((await outputOf(legit)).trim(), 'connected');
  });
});
