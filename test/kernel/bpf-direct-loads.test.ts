/**
 * The executable's identity read by direct loads (native/bpf_attr.c direct_identity; docs/attribution.md,
 * "BPF path"): where the kernel allows bpf_get_current_task_btf in the cgroup programs, they load the
 * executable's identity and the effective uid through the task's BTF pointer instead of ~18 probe
 * reads, and record exactly what the probe reads record. Two handles on one cgroup of the test's own
 * (one with direct loads, one loaded as on a kernel that refuses them), each with its own map: the
 * same real connections (copies of bash at a deep path, as root and as nobody) are recorded by both,
 * through the verdict cache's connect program and the plain one. Loopback only.
 */
import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { chmodSync, copyFileSync, mkdirSync, mkdtempSync, realpathSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { RecordedProcess } from '../../src/kernel/attribution.js';
import { ADDON_PATH, type BpfAttribution, openBpfAttribution } from '../../src/kernel/native.js';
import { cgroupTestsUnavailable, createTestCgroup, type TestCgroup } from './cgroup.js';

const unavailable = cgroupTestsUnavailable();

/** The addon's calls this test makes directly (src/kernel/native.ts declares the others). */
interface NativeAddon {
  bpfAttributionOpen(cgroup: string, maxEntries: number, cacheEntries: number, probeReads: boolean): unknown;
  bpfAttributionDirect(handle: unknown): boolean;
  bpfAttributionClose(handle: unknown): void;
}
const NOBODY = 65534;

let cgroup: TestCgroup;
let dir: string;
let server: net.Server;
let port: number;
const handles: BpfAttribution[] = [];
const children: ChildProcess[] = [];

/** Runs `program` (bash) in the cgroup as `uid`; resolves with each handle's record of its connection. */
function recordsOf(program: string, uid: number): Promise<(RecordedProcess | undefined)[]> {
  const script = `exec 3<>/dev/tcp/127.0.0.1/${port}; echo $$ >&3; read -t 5 <&3`;
  const command =
    uid === 0
      ? [program]
      : ['/usr/bin/setpriv', `--reuid=${uid}`, `--regid=${uid}`, '--clear-groups', program];
  return new Promise((resolve, reject) => {
    const onConnection = (socket: net.Socket) => {
      server.off('connection', onConnection);
      socket.on('error', () => {});
      const local = socket.remotePort!;
      const records = handles.map(
        (h) => h.lookupSocketByDiag('tcp', 4, '127.0.0.1', local, '127.0.0.1', port)?.process,
      );
      socket.once('data', () => {
        socket.end('ok\n');
        resolve(records);
      });
    };
    server.on('connection', onConnection);
    const child = cgroup.spawn(command[0]!, [...command.slice(1), '-c', script], { stdio: 'ignore' });
    children.push(child);
    child.once('error', reject);
  });
}

/** What the identity reads give (the rest of a record differs between two maps only by nothing). */
function identity(r: RecordedProcess | undefined) {
  assert.ok(r !== undefined, 'the connection is recorded');
  return { executable: r.executable, euid: r.euid, parentPid: r.parentPid, pid: r.pid, uid: r.uid };
}

for (const cacheEntries of [1024, 0]) {
  const which = cacheEntries > 0 ? "the verdict cache's connect program" : 'the plain connect program';
  describe(`direct loads (${which})`, { skip: unavailable ?? false }, () => {
    before(async () => {
      cgroup = createTestCgroup(`bpf-direct-${cacheEntries}`);
      handles.length = 0;
      for (const probeReads of [false, true])
        handles.push(
          openBpfAttribution(cgroup.path, {
            maxEntries: 1024,
            cacheEntries,
            connectSlots: false,
            probeReads,
          }),
        );
      dir = realpathSync(mkdtempSync(join(tmpdir(), 'warden-bpf-direct-')));
      chmodSync(dir, 0o755);
      server = net.createServer();
      await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
      port = (server.address() as net.AddressInfo).port;
    });
    after(async () => {
      for (const c of children) c.kill('SIGKILL');
      children.length = 0;
      for (const h of handles) h.close();
      await new Promise<void>((r) => server.close(() => r()));
      rmSync(dir, { recursive: true, force: true });
      await cgroup.remove();
    });

    test('this kernel takes the direct loads, and they record what the probe reads record', async () => {
      // Which way the programs read: asked of two more handles opened the same two ways.
      const native = createRequire(import.meta.url)(ADDON_PATH) as NativeAddon;
      for (const probeReads of [false, true]) {
        const handle = native.bpfAttributionOpen(cgroup.path, 16, cacheEntries, probeReads);
        try {
          assert.equal(
            native.bpfAttributionDirect(handle),
            !probeReads,
            `direct loads unless probeReads (${probeReads})`,
          );
        } finally {
          native.bpfAttributionClose(handle);
        }
      }
      if (cacheEntries > 0)
        assert.equal(typeof handles[0]!.cache, 'object', 'the cache came with the direct loads');
      // A path deeper than most (each level one more direct load of the fingerprint), and one more
      // than the fingerprint folds (its record says the path was not read whole: no executable).
      const deep = join(dir, ...'abcdefgh'.split(''));
      const deeper = join(dir, ...'abcdefghijklmnopqrstu'.split(''));
      for (const d of [deep, deeper]) mkdirSync(d, { recursive: true, mode: 0o755 });
      const programs = [join(deep, 'bash'), join(deeper, 'bash')];
      for (const p of programs) {
        copyFileSync('/usr/bin/bash', p);
        chmodSync(p, 0o755);
      }
      for (const [i, program] of programs.entries()) {
        for (const uid of [0, NOBODY]) {
          const [direct, probed] = await recordsOf(program, uid);
          assert.deepEqual(identity(direct), identity(probed), `${program} as uid ${uid}`);
          assert.equal(direct!.euid, uid);
          assert.equal(
            direct!.executable !== undefined,
            i === 0,
            'a path within the levels read names its executable',
          );
        }
      }
    });
  });
}
