/**
 * A cgroup2 directory of a test's own, for BPF programs that must never be attached anywhere else
 * (the engine attaches at the cgroup2 root on a user's machine; tests and benches only here). The
 * test's child processes are started inside it; remove() kills what is left in it, by pid, and
 * deletes it.
 */
import { type ChildProcess, type SpawnOptions, spawn } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmdirSync } from 'node:fs';
import { join } from 'node:path';

/** Where cgroup2 is mounted here: the hybrid layout's /sys/fs/cgroup/unified, else /sys/fs/cgroup. */
export function cgroup2Mount(): string | null {
  const mounts = readFileSync('/proc/self/mounts', 'utf8').split('\n');
  const line = mounts.find((l) => l.split(' ')[2] === 'cgroup2');
  return line?.split(' ')[1] ?? null;
}

export interface TestCgroup {
  readonly path: string;
  /** Spawns `command` inside the cgroup (it moves itself in before exec'ing, so it runs there from its first instruction). */
  spawn(command: string, args: readonly string[], options?: SpawnOptions): ChildProcess;
  /** Pids in the cgroup now. */
  pids(): number[];
  /** Kills the processes still in the cgroup (by pid) and removes it. */
  remove(): Promise<void>;
}

/** Why the cgroup tests cannot run here (not root, no cgroup2), or null. */
export function cgroupTestsUnavailable(): string | null {
  if (process.getuid?.() !== 0) return 'needs root';
  if (cgroup2Mount() === null) return 'no cgroup2 mount';
  return null;
}

/**
 * Cgroups not removed yet, by path: removed when the process exits however it exits (a crashed test
 * or benchmark), their processes killed first; synchronously, so a few tries a short wait apart.
 */
const left = new Map<string, () => number[]>();
process.once('exit', () => {
  const pause = new Int32Array(new SharedArrayBuffer(4));
  for (const [path, pids] of left) {
    for (let attempt = 0; attempt < 100; attempt++) {
      killEach(pids());
      try {
        rmdirSync(path);
        break;
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'EBUSY') break; // gone already, or not ours to wait for
        Atomics.wait(pause, 0, 0, 10); // busy until its killed processes are reaped
      }
    }
  }
});

function killEach(pids: readonly number[]): void {
  for (const pid of pids) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // gone meanwhile
    }
  }
}

export function createTestCgroup(name: string): TestCgroup {
  const mount = cgroup2Mount();
  if (mount === null) throw new Error('no cgroup2 mount in /proc/self/mounts');
  const path = join(mount, `warden-test-${name}-${process.pid}`);
  mkdirSync(path);
  const pids = () =>
    existsSync(path)
      ? readFileSync(join(path, 'cgroup.procs'), 'utf8')
          .split('\n')
          .filter((l) => l !== '')
          .map(Number)
      : [];
  left.set(path, pids);
  return {
    path,
    pids,
    spawn(command, args, options = {}) {
      // `exec "$0" "$@"` keeps the arguments exactly as given.
      return spawn(
        '/bin/sh',
        ['-c', `echo $$ > '${join(path, 'cgroup.procs')}' && exec "$0" "$@"`, command, ...args],
        options,
      );
    },
    async remove() {
      for (let attempt = 0; attempt < 100; attempt++) {
        const inside = pids();
        if (inside.length === 0) break;
        killEach(inside);
        await new Promise((r) => setTimeout(r, 20));
      }
      // A killed process leaves the cgroup busy until it is fully gone (reaped): try again for a while.
      for (let attempt = 0; ; attempt++) {
        try {
          rmdirSync(path);
          left.delete(path);
          return;
        } catch (e) {
          if ((e as NodeJS.ErrnoException).code !== 'EBUSY' || attempt >= 150) throw e;
          await new Promise((r) => setTimeout(r, 20));
        }
      }
    },
  };
}
