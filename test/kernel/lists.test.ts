/**
 * An IP list in the kernel, with real packets between two throwaway namespaces: `wardend run`
 * compiles a rule whose remote is a list of thousands of networks into an interval set that the
 * kernel decides alone (no queue), the listed server is blocked on the rule's port and reachable
 * on others, and an edited list file taken by SIGHUP unblocks it. A rule naming the program too is
 * decided by the engine from the queue, through the list bits it remembers per remote address
 * (address-lists.ts, host-names.ts): the same blocking, and the edited list decides the next
 * connection to an address the engine has already seen (no stale membership).
 */
import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { type KernelEngine, startKernelEngine } from '../adversarial/kernel-engine.js';
import {
  createNetnsPair,
  kernelTestsUnavailable,
  listenOn,
  type NetnsPair,
  SERVER_ADDR,
  SERVER_ADDR6,
  tcpConnect,
} from './netns.js';
import { NODE, startWardend } from './wardend.js';

const PORT = 44336;
/** 4,000 /24 networks (every other one, so they stay 4,000 ranges) far from the test's own, and the server. */
function listText(withServer: boolean): string {
  const lines = ['# bad networks', 'not an address'];
  for (let i = 0; i < 4000; i++) lines.push(`10.${100 + (i >> 7)}.${(i & 127) * 2}.0/24`);
  if (withServer) lines.push(`${SERVER_ADDR}  # the test server`, `${SERVER_ADDR6}/128`);
  return `${lines.join('\n')}\n`;
}

describe('an IP list decided in the kernel', { skip: kernelTestsUnavailable() }, () => {
  let pair: NetnsPair;
  let dir: string;
  let engine: (ChildProcess & { output: () => string }) | undefined;
  const listFile = () => join(dir, 'bad-nets.txt');

  before(async () => {
    pair = createNetnsPair('l');
    dir = mkdtempSync(join(tmpdir(), 'warden-lists-kernel-'));
    mkdirSync(join(dir, 'etc'));
    writeFileSync(listFile(), listText(true));
    writeFileSync(
      join(dir, 'etc/policy.yaml'),
      `defaults:
  incoming: { action: deny, log: false }
  outgoing: { action: allow, log: false }
lists:
  bad: { file: ${listFile()}, format: ips }
rules:
  - { name: listed, direction: outgoing, protocol: tcp, remotePorts: "8001", remote: "list:bad", action: deny }
`,
    );
    await listenOn(pair, pair.server, [8000, 8001]);
    engine = await startWardend(pair, pair.client, dir, PORT);
  });
  after(() => {
    if (engine?.pid && engine.exitCode === null) process.kill(engine.pid, 'SIGTERM');
    pair.close();
    rmSync(dir, { recursive: true, force: true });
  });

  test('the listed server is blocked on the rule port, by an interval set, without the queue', () => {
    assert.equal(tcpConnect(pair, pair.client, SERVER_ADDR, 8000), 'connected');
    assert.equal(tcpConnect(pair, pair.client, SERVER_ADDR, 8001, 1000), 'timeout');
    assert.equal(tcpConnect(pair, pair.client, SERVER_ADDR6, 8001, 1000), 'timeout');
    assert.equal(tcpConnect(pair, pair.client, SERVER_ADDR6, 8000), 'connected');
    const table = pair.run(pair.client, 'nft', ['list', 'table', 'inet', 'warden']);
    // Decided by the kernel: the list is an interval set looked up by a rule with a verdict (the
    // rule's one protocol is tested in the rule, not in the key).
    const listed = (table.match(/\b10\.1\d\d\.\d+\.0\/24 \. 8001/g) ?? []).length;
    assert.equal(listed, 4000, 'every network of the list is an element');
    assert.ok(table.includes('10.131.62.0/24 . 8001'), 'the last network of the list is an element');
    const drops = table.split('\n').filter((l) => /@out_\w+ (log .*)?drop/.test(l));
    assert.ok(drops.length > 0, 'a kernel drop rule over a set');
    assert.match(engine!.output(), /"elements":40\d\d/, 'the list reached the kernel as set elements');
  });

  test('an edited list file taken by SIGHUP reaches the kernel', async () => {
    writeFileSync(listFile(), listText(false));
    process.kill(engine!.pid!, 'SIGHUP');
    let result = '';
    for (let until = Date.now() + 15_000; Date.now() < until; ) {
      result = tcpConnect(pair, pair.client, SERVER_ADDR, 8001, 1000);
      if (result === 'connected') break;
    }
    assert.equal(result, 'connected', engine!.output().slice(-2000));
  });
});

describe('an IP list decided by the engine from the queue, through its remembered bits', {
  skip: kernelTestsUnavailable(),
}, () => {
  let k: KernelEngine;
  let dir: string;
  const listFile = () => join(dir, 'bad-nets.txt');

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'warden-lists-queue-'));
    writeFileSync(listFile(), listText(true));
    // The applications make the rules ones the kernel cannot decide alone: the engine decides both,
    // so after the refresh it is the engine (not the kernel's new set) that must see the address unlisted.
    k = await startKernelEngine(
      'lq',
      PORT + 1,
      `defaults:
  incoming: { action: deny, log: false }
  outgoing: { action: allow, log: false }
lists:
  bad: { file: ${listFile()}, format: ips }
rules:
  - { name: listed for node, direction: outgoing, protocol: tcp, application: ${NODE}, remotePorts: "8001", remote: "list:bad", action: deny }
  - { name: node to 8001, direction: outgoing, protocol: tcp, application: ${NODE}, remotePorts: "8001", action: reject }
`,
      '',
    );
    await listenOn(k.pair, k.pair.server, [8000, 8001]);
  });
  after(() => {
    k?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  test('the listed server is blocked for the program; with the edited list the next rule decides', async () => {
    const { pair } = k;
    assert.equal(tcpConnect(pair, pair.client, SERVER_ADDR, 8000), 'connected');
    // Twice: the second connection finds the bits the first one's address left remembered.
    assert.equal(tcpConnect(pair, pair.client, SERVER_ADDR, 8001, 1000), 'timeout');
    assert.equal(tcpConnect(pair, pair.client, SERVER_ADDR, 8001, 1000), 'timeout');
    assert.equal(tcpConnect(pair, pair.client, SERVER_ADDR6, 8001, 1000), 'timeout');
    const denied = await k.logs({ kind: 'connection', verdict: 'deny', application: NODE });
    assert.ok(
      denied.filter((d) => d.message.includes('listed for node')).length >= 2,
      JSON.stringify(denied),
    );
    writeFileSync(listFile(), listText(false));
    process.kill(k.engine.pid!, 'SIGHUP');
    // Remembered bits of the old list would keep denying (a timeout); the new list lets the next rule reject.
    let result = '';
    for (let until = Date.now() + 15_000; Date.now() < until; ) {
      result = tcpConnect(pair, pair.client, SERVER_ADDR, 8001, 1000);
      if (result === 'ECONNREFUSED') break;
    }
    assert.equal(result, 'ECONNREFUSED', k.engine.output().slice(-2000));
    assert.equal(tcpConnect(pair, pair.client, SERVER_ADDR6, 8001, 1000), 'ECONNREFUSED');
  });
});
