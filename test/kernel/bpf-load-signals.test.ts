/**
 * Signals while the kernel verifies the engine's BPF programs (native/bpf_insn.h, bpf_prog_load).
 * The verifier gives up with EAGAIN when a signal is pending for the loading thread, and an engine
 * gets signals at any time (SIGCHLD from its nft and hash children, SIGHUP from a reload, a
 * profiler's SIGPROF): before the loads blocked them, an engine run under `node --cpu-prof` had
 * every load of its verdict cache's program refused and ran without the cache. Here V8's CPU
 * profiler sends the engine's main thread SIGPROF every 50 us from its first line on.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { type KernelEngine, startKernelEngine } from '../adversarial/kernel-engine.js';
import { cgroupTestsUnavailable, createTestCgroup } from './cgroup.js';
import { kernelTestsUnavailable } from './netns.js';
import type { VerdictCacheStatus } from './verdict-cache-client.js';
import { denyAllPolicy } from './wardend.js';

const PORT = 44373;

test('an engine whose main thread gets a signal every 50 us while it loads its BPF programs still loads them all', async (t) => {
  const why = kernelTestsUnavailable() ?? cgroupTestsUnavailable();
  if (why !== null && why !== undefined) {
    t.skip(why);
    return;
  }
  const cgroup = createTestCgroup('bpfsig');
  const profiles = mkdtempSync(join(tmpdir(), 'warden-bpfsig-'));
  let k: KernelEngine | undefined;
  try {
    k = await startKernelEngine('bpfsig', PORT, denyAllPolicy(PORT), '', cgroup, [
      '--cpu-prof',
      `--cpu-prof-dir=${profiles}`,
      '--cpu-prof-interval=50',
    ]);
    const s = (await k.call('engine.status', {})) as {
      attribution: string;
      verdictCache: VerdictCacheStatus;
    };
    assert.match(s.attribution, /^bpf/, JSON.stringify(s));
    assert.equal(s.verdictCache.inUse, true, JSON.stringify(s.verdictCache));
  } finally {
    k?.close();
    await cgroup.remove();
    rmSync(profiles, { recursive: true, force: true });
  }
});
