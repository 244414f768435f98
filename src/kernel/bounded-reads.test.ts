import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { closeSync, mkdtempSync, openSync, rmSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { BoundedReads } from './bounded-reads.js';

// Reading a FIFO nobody writes to blocks a thread-pool thread, like a read from a hung mount or a
// process holding its memory lock; opening it read-write (a writer, below) releases the blocked reads.
const dir = mkdtempSync(join(tmpdir(), 'warden-bounded-'));
const fifos = [0, 1, 2].map((i) => join(dir, `fifo${i}`));
execFileSync('mkfifo', fifos);
after(() => {
  for (const fifo of fifos) closeSync(openSync(fifo, 'r+')); // hung readers see end of file
  rmSync(dir, { recursive: true, force: true });
});

test('hung reads come back late at the deadline, hold at most their slots, and free them when they end', async () => {
  const reads = new BoundedReads(2, 100);
  const started = performance.now();
  const [a, b] = await Promise.all([
    reads.run(() => readFile(fifos[0]!)),
    reads.run(() => readFile(fifos[1]!)),
  ]);
  assert.deepEqual(
    [a, b],
    [
      { ok: false, late: true },
      { ok: false, late: true },
    ],
  );
  assert.ok(performance.now() - started < 1000);
  // Both slots are held by reads that never came back: the next gives up at once, without a thread.
  const t0 = performance.now();
  assert.deepEqual(await reads.run(() => readFile(fifos[2]!)), { ok: false, late: true });
  assert.ok(performance.now() - t0 < 50, 'no wait for a slot that is stuck');
  // Other thread-pool work goes on (2 of 4 threads are stuck).
  assert.ok((await readFile('/proc/self/status', 'utf8')).includes('Pid:'));
  // The hung reads end: their slots are free again.
  closeSync(openSync(fifos[0]!, 'r+'));
  closeSync(openSync(fifos[1]!, 'r+'));
  await new Promise((r) => setTimeout(r, 50));
  const ok = await reads.run(() => readFile('/proc/self/cmdline'));
  assert.equal(ok.ok, true);
});

test('a failed read is not late; reads queue for a free slot within the deadline', async () => {
  const reads = new BoundedReads(1, 500);
  assert.deepEqual(await reads.run(() => readFile(join(dir, 'missing'))), { ok: false, late: false });
  const results = await Promise.all([1, 2, 3].map(() => reads.run(() => readFile('/proc/self/stat'))));
  assert.deepEqual(
    results.map((r) => r.ok),
    [true, true, true],
  );
});
