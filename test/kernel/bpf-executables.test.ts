/**
 * Executables seen before (docs/attribution.md; src/kernel/attribution-exe.ts): a new process of an
 * executable already read is named from its BPF record alone, with no /proc read, and exactly: an
 * executable renamed, moved with its directory, linked, or replaced by another file is named by its
 * path now, never by a path it had before. Real processes (copies of bash, as root and as nobody)
 * in a cgroup of the test's own; loopback only.
 */
import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import {
  chmodSync,
  copyFileSync,
  linkSync,
  mkdirSync,
  mkdtempSync,
  realpathSync,
  renameSync,
  rmSync,
} from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import {
  nativeSocketLookup,
  ProcessAttributor,
  type ProcessIdentity,
  type RecordedProcess,
} from '../../src/kernel/attribution.js';
import { type BpfAttribution, openBpfAttribution, readProcess } from '../../src/kernel/native.js';
import { applicationIdOf } from '../../src/policy/application-ids.js';
import { cgroupTestsUnavailable, createTestCgroup, type TestCgroup } from './cgroup.js';

const unavailable = cgroupTestsUnavailable();
const NOBODY = 65534;

let cgroup: TestCgroup;
let bpf: BpfAttribution;
let dir: string;
let server: net.Server;
let port: number;
const children: ChildProcess[] = [];

/** What one run of a program gave: the pid it printed and the identity attributed to its connection. */
interface Run {
  readonly pid: number;
  readonly id: ProcessIdentity | null;
  /** What the programs recorded for the connection. */
  readonly record: RecordedProcess | undefined;
}

/**
 * Runs `program` (a copy of bash) in the test cgroup as `uid`: it connects to the server, sends its
 * pid, waits for the answer that comes once its connection was attributed, and exits.
 */
function run(attributor: ProcessAttributor, program: string, uid = 0): Promise<Run> {
  const script = `exec 3<>/dev/tcp/127.0.0.1/${port}; echo $$ >&3; read -t 5 <&3`;
  const command =
    uid === 0
      ? [program]
      : ['/usr/bin/setpriv', `--reuid=${uid}`, `--regid=${uid}`, '--clear-groups', program];
  return new Promise<Run>((resolve, reject) => {
    const onConnection = (socket: net.Socket) => {
      server.off('connection', onConnection);
      socket.on('error', () => {});
      let text = '';
      const tuple = {
        protocol: 'tcp' as const,
        family: 4 as const,
        direction: 'outgoing' as const,
        localAddress: '127.0.0.1',
        localPort: socket.remotePort!,
        remoteAddress: '127.0.0.1',
        remotePort: port,
      };
      const record = bpf.lookupSocket('tcp', 4, '127.0.0.1', tuple.localPort, '127.0.0.1', port)?.process;
      const identity = attributor.attribute(tuple);
      socket.on('data', (d) => {
        text += d;
        if (!text.includes('\n')) return;
        void identity.then((id) => {
          socket.end('ok\n');
          resolve({ pid: Number.parseInt(text, 10), id, record });
        }, reject);
      });
    };
    server.on('connection', onConnection);
    const child = cgroup.spawn(command[0]!, [...command.slice(1), '-c', script], { stdio: 'ignore' });
    children.push(child);
    child.once('error', reject);
  });
}

/** A copy of bash at `path` that nobody may run. */
function copyBash(path: string): string {
  copyFileSync('/usr/bin/bash', path);
  chmodSync(path, 0o755);
  return path;
}

describe('executables seen before, named from the BPF record', { skip: unavailable ?? false }, () => {
  before(async () => {
    cgroup = createTestCgroup('bpf-exe');
    bpf = openBpfAttribution(cgroup.path, { maxEntries: 1024 });
    dir = realpathSync(mkdtempSync(join(tmpdir(), 'warden-bpf-exe-')));
    chmodSync(dir, 0o755);
    server = net.createServer();
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    port = (server.address() as net.AddressInfo).port;
  });

  after(async () => {
    for (const child of children)
      if (child.exitCode === null && child.signalCode === null && child.pid)
        process.kill(child.pid, 'SIGKILL');
    server?.close();
    bpf?.close();
    await cgroup?.remove();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  test('a new process of a known executable: no /proc read, and the same identity /proc gives (root and nobody)', async () => {
    mkdirSync(join(dir, 'known'), { mode: 0o755 });
    const program = copyBash(join(dir, 'known', 'bash'));
    const attributor = new ProcessAttributor({
      socketLookup: nativeSocketLookup(bpf.lookupSocket),
      readProcess,
    });
    const uids = [NOBODY, 0, NOBODY, 0, NOBODY, 0]; // the first, read from /proc, as nobody
    for (const [i, uid] of uids.entries()) {
      const { pid, id, record } = await run(attributor, program, uid);
      assert.ok(id, `run ${i}: attributed`);
      assert.equal(id.pid, pid, `run ${i}: pid`);
      assert.equal(id.executable, program, `run ${i}: executable`);
      // Numbered once for the engine's life, from the record or /proc alike (application-ids.ts).
      assert.equal(id.applicationId, applicationIdOf(program), `run ${i}: application number`);
      assert.equal(id.uid, uid, `run ${i}: effective uid`);
      assert.equal(id.user, uid === 0 ? 'root' : 'nobody', `run ${i}: user`);
      assert.equal(id.commandLine[0], program, `run ${i}: command line`);
      assert.equal(id.commandLine[1], '-c');
      assert.equal(id.complete, true);
      // The record names the parent (cgroup.spawn's shell execs: this process) and the effective uid.
      assert.equal(record?.parentPid, process.pid, `run ${i}: parent`);
      assert.equal(record?.euid, uid, `run ${i}: recorded effective uid`);
      assert.equal(record?.hook, 'connect');
    }
    assert.equal(attributor.stats.recordedReads, 1, 'only the first process was read from /proc');
    assert.equal(attributor.stats.recordedExecutables, uids.length - 1, 'the others from their record alone');
  });

  test('renamed, moved with its directory, linked or replaced: named by its path now, never a stale one', async () => {
    const attributor = new ProcessAttributor({
      socketLookup: nativeSocketLookup(bpf.lookupSocket),
      readProcess,
    });
    mkdirSync(join(dir, 'a'), { mode: 0o755 });
    const expectRun = async (program: string, fromRecord: boolean) => {
      const before = attributor.stats.recordedExecutables;
      const { pid, id } = await run(attributor, program);
      assert.equal(id?.pid, pid);
      assert.equal(id?.executable, program, `${program}: its path now`);
      assert.equal(
        attributor.stats.recordedExecutables - before,
        fromRecord ? 1 : 0,
        `${program}: ${fromRecord ? 'from the record' : 'read from /proc'}`,
      );
    };
    const first = copyBash(join(dir, 'a', 'tool'));
    await expectRun(first, false);
    await expectRun(first, true);
    // The file renamed (its change time moves).
    const renamed = join(dir, 'a', 'tool2');
    renameSync(first, renamed);
    await expectRun(renamed, false);
    await expectRun(renamed, true);
    // Its directory renamed: the file itself does not change at all.
    renameSync(join(dir, 'a'), join(dir, 'b'));
    const moved = join(dir, 'b', 'tool2');
    await expectRun(moved, false);
    await expectRun(moved, true);
    // A second link to the same file: each path is its own.
    const link = join(dir, 'b', 'link');
    linkSync(moved, link);
    await expectRun(link, false);
    await expectRun(moved, false);
    await expectRun(link, true);
    await expectRun(moved, true);
    // Another file put in its place (a package update): read again.
    const replacement = copyBash(join(dir, 'b', 'new'));
    renameSync(replacement, moved);
    await expectRun(moved, false);
    await expectRun(moved, true);
    await expectRun(link, false); // the old file, which lost a link (its change time moved)
  });
});
