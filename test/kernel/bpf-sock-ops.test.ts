/**
 * One sock_ops program per callback (native/bpf_tuple.c, bpf_guard.c; docs/attribution.md,
 * "Connect-time slots"): with the verdict cache, the connect-time slots' program includes the
 * cache's sock_ops guard and takes its place on the guard's link, so each TCP callback of a socket
 * in the cgroup runs one program, not two. The guard is never absent: the swap is atomic, and when
 * the slots close first the guard alone is put back on its link. Counted with BPF_PROG_QUERY on a
 * cgroup of the test's own; what the merged program does is tested where the two parts are
 * (bpf-connect-slots.test.ts with the cache, test/adversarial/decided-mark.test.ts).
 */
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import { after, before, describe, test } from 'node:test';
import { ADDON_PATH, openBpfAttribution } from '../../src/kernel/native.js';
import { cgroupTestsUnavailable, createTestCgroup, type TestCgroup } from './cgroup.js';

const unavailable = cgroupTestsUnavailable();

/** The addon's calls this test makes directly (src/kernel/native.ts declares them all). */
interface NativeAddon {
  bpfCgroupPrograms(cgroup: string, hook: 'sock_ops' | 'setsockopt'): number;
  bpfAttributionOpen(cgroup: string, maxEntries: number, cacheEntries: number): unknown;
  bpfAttributionClose(handle: unknown): void;
  bpfTupleOpen(cgroup: string, attribution: unknown): unknown;
  bpfTupleClose(handle: unknown): void;
}

describe('sock_ops programs of the verdict cache and the connect-time slots', {
  skip: unavailable ?? false,
}, () => {
  let cgroup: TestCgroup;
  let native: NativeAddon;
  before(() => {
    cgroup = createTestCgroup('bpf-sock-ops');
    native = createRequire(import.meta.url)(ADDON_PATH) as NativeAddon;
  });
  after(async () => {
    await cgroup.remove();
  });
  const sockOps = () => native.bpfCgroupPrograms(cgroup.path, 'sock_ops');

  test('with the cache and the slots one program runs per callback; the guard alone comes back when the slots close', () => {
    assert.equal(sockOps(), 0);
    const bpf = openBpfAttribution(cgroup.path, { maxEntries: 1024, cacheEntries: 1024 });
    try {
      assert.equal(typeof bpf.cache, 'object', 'the cache is on');
      assert.equal(bpf.lookups().slots, 'on');
      assert.equal(sockOps(), 1, 'the guard and the slots: one program');
      assert.equal(native.bpfCgroupPrograms(cgroup.path, 'setsockopt'), 1, 'the setsockopt guard');
    } finally {
      bpf.close();
    }
    assert.equal(sockOps(), 0, 'nothing left attached');

    // The slots closed first: the guard alone is back on its link while the cache lives.
    const handle = native.bpfAttributionOpen(cgroup.path, 1024, 1024);
    const slots = native.bpfTupleOpen(cgroup.path, handle);
    assert.equal(sockOps(), 1);
    native.bpfTupleClose(slots);
    assert.equal(sockOps(), 1, 'the guard stays');
    native.bpfAttributionClose(handle);
    assert.equal(sockOps(), 0);

    // The cache closed first: its guard stays in the slots' program until they close too.
    const again = native.bpfAttributionOpen(cgroup.path, 1024, 1024);
    const slotsAgain = native.bpfTupleOpen(cgroup.path, again);
    native.bpfAttributionClose(again);
    assert.equal(sockOps(), 1);
    native.bpfTupleClose(slotsAgain);
    assert.equal(sockOps(), 0);
  });

  test("slots opened for another cgroup than the cache's get a program of their own there, not the guard's link", async () => {
    const other = createTestCgroup('bpf-sock-ops-other');
    try {
      const handle = native.bpfAttributionOpen(cgroup.path, 1024, 1024);
      const slots = native.bpfTupleOpen(other.path, handle);
      try {
        assert.equal(sockOps(), 1, "the cache's cgroup: its guard alone");
        assert.equal(native.bpfCgroupPrograms(other.path, 'sock_ops'), 1, "the slots' cgroup: their program");
      } finally {
        native.bpfTupleClose(slots);
        native.bpfAttributionClose(handle);
      }
      assert.equal(sockOps(), 0);
      assert.equal(native.bpfCgroupPrograms(other.path, 'sock_ops'), 0);
    } finally {
      await other.remove();
    }
  });

  test('without the cache the slots have their own program, as before', () => {
    const bpf = openBpfAttribution(cgroup.path, { maxEntries: 1024 });
    try {
      assert.equal(bpf.lookups().slots, 'on');
      assert.equal(sockOps(), 1);
    } finally {
      bpf.close();
    }
    assert.equal(sockOps(), 0);
  });
});
