/**
 * ExeHasher with real files and real processes: once per file version (device, inode, size, mtime,
 * ctime), bounded, shared by concurrent callers, through /proc/PID/exe; and the enforcer's pinned
 * rules on it: a replaced binary no longer matches and the log item names the change.
 */
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import {
  copyFileSync,
  mkdtempSync,
  readFileSync,
  renameSync,
  rmSync,
  truncateSync,
  utimesSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { compilePolicy, parsePolicyText } from '../policy/index.js';
import type { AskPrompt } from '../protocol/asks.js';
import type { NewLogItem } from '../protocol/log-item.js';
import { AskDesk } from './asks.js';
import { Enforcer, type ProcessInfo } from './enforcer.js';
import { ExeHasher } from './exe-hash.js';
import type { PinChange } from './pins.js';

const dir = mkdtempSync(join(tmpdir(), 'warden-exe-hash-'));
const children: ChildProcess[] = [];
const hasher = new ExeHasher({ cacheSize: 3, maxBytes: 8 * 1024 * 1024 });
after(async () => {
  for (const c of children) c.kill('SIGKILL');
  await hasher.close();
  rmSync(dir, { recursive: true, force: true });
});

const sha256 = (data: Buffer | string) => createHash('sha256').update(data).digest('hex');

/** Starts a copy of sleep from `path`; resolves once it runs (its exe link is the copy). */
async function run(path: string): Promise<ChildProcess> {
  const c = spawn(path, ['30'], { stdio: 'ignore' });
  children.push(c);
  await new Promise<void>((resolve, reject) => {
    c.once('spawn', () => resolve());
    c.once('error', reject);
  });
  return c;
}

describe('ExeHasher', () => {
  test('a file version is hashed once; a touched or rewritten file is a new version', async () => {
    const f = join(dir, 'a');
    writeFileSync(f, 'version one');
    const start = hasher.hashed;
    const [h1, h2] = await Promise.all([hasher.ofPath(f), hasher.ofPath(f)]);
    assert.equal(h1.sha256, sha256('version one'));
    assert.equal(h1.md5, undefined, 'MD5 only when asked for');
    assert.deepEqual(h1, h2);
    assert.equal(hasher.hashed - start, 1, 'two concurrent callers share one hashing');
    await hasher.ofPath(f);
    assert.equal(hasher.hashed - start, 1, 'cached');
    assert.equal(
      (await hasher.ofPath(f, { md5: true })).md5,
      createHash('md5').update('version one').digest('hex'),
    );
    await hasher.ofPath(f, { md5: true });
    await hasher.ofPath(f);
    assert.equal(hasher.hashed - start, 2, 'read again once for the MD5, then cached with it');
    utimesSync(f, new Date(), new Date(Date.now() + 5000));
    assert.equal((await hasher.ofPath(f)).sha256, h1.sha256);
    assert.equal(hasher.hashed - start, 3, 'same content, new mtime: hashed again');
    writeFileSync(f, 'version two');
    assert.equal((await hasher.ofPath(f)).sha256, sha256('version two'));
    assert.equal(hasher.hashed - start, 4);
  });

  test('the cache is bounded: the least recently used version is hashed again', async () => {
    const files = ['b1', 'b2', 'b3', 'b4'].map((n) => join(dir, n));
    for (const f of files) writeFileSync(f, f);
    for (const f of files) await hasher.ofPath(f); // cacheSize 3: b1 is dropped
    const start = hasher.hashed;
    await hasher.ofPath(files[3]!);
    assert.equal(hasher.hashed, start);
    await hasher.ofPath(files[0]!);
    assert.equal(hasher.hashed, start + 1);
  });

  test('a file beyond the size bound is refused, not hashed', async () => {
    const f = join(dir, 'big');
    writeFileSync(f, Buffer.alloc(9 * 1024 * 1024));
    await assert.rejects(hasher.ofPath(f), /more than the 8388608 bytes Warden hashes/);
  });

  test('a process is hashed through /proc/PID/exe: the file it runs, even after its path was replaced', async () => {
    const exe = join(dir, 'sleep-copy');
    copyFileSync('/bin/sleep', exe);
    const original = sha256(readFileSync(exe));
    const first = await run(exe);
    assert.equal((await hasher.ofProcess(first.pid!, exe)).sha256, original);
    // Replaced on disk (as a package manager or an attacker does): the running process still runs the old file.
    const other = join(dir, 'other');
    writeFileSync(other, Buffer.concat([readFileSync('/bin/sleep'), Buffer.from('tampered')]), {
      mode: 0o755,
    });
    renameSync(other, exe);
    assert.equal((await hasher.ofProcess(first.pid!, exe)).sha256, original);
    const second = await run(exe);
    assert.notEqual((await hasher.ofProcess(second.pid!, exe)).sha256, original);
    // A process that runs another program than the one attribution saw is refused.
    await assert.rejects(hasher.ofProcess(second.pid!, '/usr/bin/curl'), /runs .* now, not \/usr\/bin\/curl/);
  });
});

describe('Enforcer with pinned rules', () => {
  test('the pinned rule matches its file; a replaced file falls to the next rule, logged with the change', async () => {
    const exe = join(dir, 'pinned-sleep');
    copyFileSync('/bin/sleep', exe);
    const good = sha256(readFileSync(exe));
    const policy = compilePolicy(
      parsePolicyText(`
defaults: { incoming: { action: deny }, outgoing: { action: deny } }
rules:
  - { name: pinned, direction: outgoing, application: ${exe}, sha256: ${good}, action: allow }
  - { name: anything to 80, direction: outgoing, protocol: tcp, remotePorts: 80, action: allow }
`),
    );
    const processes: Record<number, ProcessInfo> = {};
    const logged: NewLogItem[] = [];
    const changes: PinChange[] = [];
    let hashedFor: number[] = [];
    const enforcer = new Enforcer({
      policy: () => policy,
      identify: async (t) => processes[t.sourcePort ?? 0] ?? null,
      hostsOf: () => [],
      asks: new AskDesk({ timeoutMs: () => 50, consoles: () => 0, notify: () => {} }),
      log: (i) => logged.push(i),
      executables: { engine: '/x/engine', console: '/x/console', assistant: '/x/assist' },
      pins: {
        ofProcess: (pid, path) => {
          hashedFor.push(pid);
          return hasher.ofProcess(pid, path);
        },
      },
      onPinChange: (c) => {
        changes.push(c);
      },
    });
    const tcp = (sourcePort: number, destinationPort: number) =>
      ({
        protocol: 'tcp',
        source: '10.200.0.1',
        destination: '10.200.0.2',
        sourcePort,
        destinationPort,
      }) as const;
    const before = await run(exe);
    processes[1000] = { pid: before.pid!, executable: exe, uid: 0 };
    processes[1001] = { pid: process.pid, executable: process.execPath, uid: 0 };
    assert.equal((await enforcer.judge(tcp(1000, 443), 'outgoing')).decision.ruleName, 'pinned');
    // Another program: no pinned rule names it, so it is never hashed.
    hashedFor = [];
    assert.equal((await enforcer.judge(tcp(1001, 80), 'outgoing')).decision.ruleName, 'anything to 80');
    assert.deepEqual(hashedFor, []);
    assert.equal(logged.length, 0);

    const replacement = join(dir, 'replacement');
    writeFileSync(replacement, Buffer.concat([readFileSync('/bin/sleep'), Buffer.from('x')]), {
      mode: 0o755,
    });
    const bad = sha256(readFileSync(replacement));
    renameSync(replacement, exe);
    const after = await run(exe);
    processes[1002] = { pid: after.pid!, executable: exe, uid: 0 };
    const to443 = await enforcer.judge(tcp(1002, 443), 'outgoing');
    assert.equal(to443.decision.ruleName, 'default outgoing');
    assert.equal(to443.verdict, 'drop');
    const to80 = await enforcer.judge(tcp(1002, 80), 'outgoing');
    assert.equal(to80.decision.ruleName, 'anything to 80', 'falls to what follows');
    assert.equal(logged.length, 2, 'an allow after a broken pin is logged too');
    const expected = `rule "pinned" not applied: pinned sha256 ${good.slice(0, 12)}… but ${exe} is now ${bad.slice(0, 12)}…`;
    for (const item of logged) assert.ok(item.message?.includes(expected), item.message);
    assert.equal(changes.length, 2);
    assert.deepEqual(changes[0]!.rules, ['pinned']);
    assert.equal(changes[0]!.hash.sha256, bad);
    // The process started before the replacement still runs the pinned file.
    assert.equal((await enforcer.judge(tcp(1000, 443), 'outgoing')).decision.ruleName, 'pinned');
  });
});

test('a hashing that stalls gives its thread up: it fails, and the next file is hashed by a new thread', async () => {
  // A 4 GiB sparse file takes seconds to read: longer than the stall bound, as a read that never
  // returns would (a FUSE file a local user serves). The small file after it must not wait for it.
  const slow = join(dir, 'slow');
  writeFileSync(slow, '');
  truncateSync(slow, 4 * 1024 ** 3);
  const small = join(dir, 'small');
  writeFileSync(small, 'small file');
  const stalling = new ExeHasher({ maxBytes: 8 * 1024 ** 3, stallMs: 1500 });
  try {
    await assert.rejects(stalling.ofPath(slow), /took longer than 1500 ms: its thread was given up/);
    assert.equal((await stalling.ofPath(small)).sha256, sha256('small file'));
  } finally {
    await stalling.close();
    rmSync(slow, { force: true });
  }
});

describe('ask prompts of programs', () => {
  test('carry the file hash (an answer "always" pins it) and the change when a pin did not hold', async () => {
    const exe = join(dir, 'asked-sleep');
    copyFileSync('/bin/sleep', exe);
    const sha = sha256(readFileSync(exe));
    const policy = compilePolicy(
      parsePolicyText(`
defaults: { incoming: { action: deny }, outgoing: { action: ask } }
rules:
  - { name: old build, direction: outgoing, application: ${exe}, sha256: "${'e'.repeat(64)}", action: allow }
`),
    );
    const child = await run(exe);
    const prompts: AskPrompt[] = [];
    const enforcer = new Enforcer({
      policy: () => policy,
      identify: async () => ({ pid: child.pid!, executable: exe, uid: 0 }),
      hostsOf: () => [],
      asks: new AskDesk({
        timeoutMs: () => 50,
        consoles: () => 1,
        notify: (event, p) => {
          if (event === 'prompt') prompts.push(p as AskPrompt);
        },
      }),
      log: () => {},
      executables: { engine: '/x/engine', console: '/x/console', assistant: '/x/assist' },
      pins: hasher,
    });
    const j = await enforcer.judge(
      {
        protocol: 'tcp',
        source: '10.200.0.1',
        destination: '10.200.0.2',
        sourcePort: 3000,
        destinationPort: 443,
      },
      'outgoing',
    );
    assert.equal(j.decision.ruleName, 'default outgoing');
    assert.equal(prompts.length, 1);
    assert.equal(prompts[0]!.sha256, sha);
    assert.match(
      prompts[0]!.change ?? '',
      /rule "old build" not applied: pinned sha256 eeeeeeeeeeee… but .* is now/,
    );
  });
});
