/**
 * Attack: a program runs a script whose path never resolves (a hung FUSE or NFS mount), so that
 * attributing its connections blocks the engine's event loop, and with it every verdict (issue 11
 * item 16). The test mounts a FUSE file system that never answers (nobody serves /dev/fuse: even
 * its INIT stays pending, so every lookup waits), runs node processes whose script is inside it
 * and attributes their sockets with the engine's attributor: each attribution must come back
 * within the deadline with the unresolved path, the event loop must keep running, and other
 * attributions and file reads must go on. A watchdog thread aborts the mount after 4 s, so a
 * blocking attributor fails the test instead of hanging it.
 */
import assert from 'node:assert/strict';
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, mkdtempSync, openSync, rmSync, writeFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { after, before, describe, test } from 'node:test';
import { Worker } from 'node:worker_threads';
import { type ConnectionTuple, ProcessAttributor } from '../../src/kernel/attribution.js';
import { NODE, WARDEND } from '../kernel/wardend.js';

const skip =
  process.getuid?.() !== 0
    ? 'mounting a FUSE file system needs root'
    : existsSync('/dev/fuse')
      ? undefined
      : 'needs /dev/fuse';

/** Listens on a port before node looks for its script (it never finds it) and prints the port. */
const LISTEN = `const s = require('node:net').createServer().listen(0);
require('node:fs').writeSync(1, s.address().port + '\\n');`;

const incoming = (port: number): ConnectionTuple => ({
  protocol: 'tcp',
  family: 4,
  direction: 'incoming',
  localAddress: '127.0.0.1',
  localPort: port,
  remoteAddress: '127.0.0.1',
  remotePort: 40_000,
});

describe('a script on a hung mount does not stall attribution', { skip }, () => {
  let dir: string;
  let mount: string;
  let fuse: number | undefined;
  let watchdog: Worker | undefined;
  const victims: ChildProcess[] = [];

  /** Starts node with its script at `script` (on the hung mount); resolves with the port it listens on. */
  const victim = async (script: string): Promise<number> => {
    const child = spawn(NODE, ['-r', join(dir, 'listen.cjs'), script], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    victims.push(child);
    const [line] = await Promise.race([
      new Promise<string[]>((resolve) =>
        createInterface({ input: child.stdout! }).once('line', (l) => resolve([l])),
      ),
      new Promise<never>((_, reject) => child.once('exit', (c) => reject(new Error(`victim exited (${c})`)))),
    ]);
    return Number(line);
  };

  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'warden-hung-'));
    writeFileSync(join(dir, 'listen.cjs'), LISTEN);
    mount = join(dir, 'hung');
    mkdirSync(mount);
    fuse = openSync('/dev/fuse', 'r+');
    execFileSync(
      'mount',
      ['-i', '-t', 'fuse', '-o', 'fd=3,rootmode=40000,user_id=0,group_id=0', 'warden-hung', mount],
      { stdio: ['ignore', 'pipe', 'pipe', fuse] },
    );
    // If the attributor blocks this thread, the watchdog's thread still runs: closing the device
    // aborts the mount, the blocked call fails, and the test reports how long it was stuck.
    watchdog = new Worker(
      `const { workerData } = require('node:worker_threads');
       setTimeout(() => { try { require('node:fs').closeSync(workerData); } catch {} }, 4000);`,
      { eval: true, workerData: fuse },
    );
  });
  after(async () => {
    for (const v of victims) if (v.exitCode === null && v.signalCode === null) v.kill('SIGKILL');
    await watchdog?.terminate();
    try {
      if (fuse !== undefined) closeSync(fuse); // aborts the connection: every waiting lookup fails
    } catch {
      // the watchdog closed it
    }
    try {
      execFileSync('umount', ['-l', mount], { stdio: 'ignore' });
    } catch {
      // not mounted
    }
    rmSync(dir, { recursive: true, force: true });
  });

  test('attribution gives up on the real path at the deadline; the event loop and other lookups go on', async (t) => {
    const attributor = new ProcessAttributor({
      ownScripts: { paths: [WARDEND], names: ['wardend'] },
      realPathDeadlineMs: 200,
    });
    const ports = [await victim(join(mount, 'bin.js')), await victim(join(mount, 'x', 'bin.js'))];
    const third = await victim(join(mount, 'y', 'wardend'));
    let gap = 0;
    let last = performance.now();
    const ticker = setInterval(() => {
      const now = performance.now();
      gap = Math.max(gap, now - last);
      last = now;
    }, 5);
    try {
      const started = performance.now();
      const [a, b] = await Promise.all(ports.map((p) => attributor.attribute(incoming(p))));
      const took = performance.now() - started;
      assert.equal(a?.script, join(mount, 'bin.js'), 'the path as given, unresolved');
      assert.equal(b?.script, join(mount, 'x', 'bin.js'));
      t.diagnostic(
        `two hung scripts attributed in ${took.toFixed(0)} ms; longest event-loop gap ${gap.toFixed(0)} ms`,
      );
      assert.ok(took < 1500, `attribution waited ${took.toFixed(0)} ms (deadline 200 ms)`);
      assert.ok(gap < 400, `the event loop stood still for ${gap.toFixed(0)} ms`);

      // Two lookups hang in the thread pool now; a third hung path is not looked up at all.
      const t0 = performance.now();
      assert.equal((await attributor.attribute(incoming(third)))?.script, join(mount, 'y', 'wardend'));
      assert.ok(performance.now() - t0 < 150, 'no wait once two lookups are outstanding');
      // Other file reads still get threads, and a program whose script is elsewhere is attributed in full.
      const t1 = performance.now();
      await readFile('/proc/self/status');
      const other = spawn(NODE, ['-r', join(dir, 'listen.cjs'), join(dir, 'listen.cjs')], {
        stdio: ['ignore', 'pipe', 'inherit'],
      });
      victims.push(other);
      const port = Number(
        await new Promise<string>((r) => createInterface({ input: other.stdout! }).once('line', r)),
      );
      const normal = await attributor.attribute(incoming(port));
      assert.equal(normal?.pid, other.pid);
      assert.equal(normal?.script, join(dir, 'listen.cjs'));
      assert.ok(performance.now() - t1 < 1500, 'reads and attributions go on beside the hung lookups');
      assert.ok(gap < 400, `the event loop stood still for ${gap.toFixed(0)} ms`);
    } finally {
      clearInterval(ticker);
    }
  });
});
