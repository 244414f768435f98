import assert from 'node:assert/strict';
import { test } from 'node:test';
import { KnownExecutable, KnownExecutables } from './attribution-exe.js';
import type { RecordedExecutable } from './socket-lookup.js';

const EXT4 = 0xef53;
const NFS = 0x6969;
const recorded = (id: string, fsMagic = EXT4): RecordedExecutable => ({
  id,
  mount: 25,
  inode: '1234',
  fsMagic,
});

test('a path is learned only when /proc/PID/exe names the recorded file, on a local file system', () => {
  const known = new KnownExecutables(2);
  const bash = recorded('25:2049:1234:7:1700000000.5:abc');
  assert.equal(known.canLearn(bash), true);
  assert.equal(known.canLearn(recorded('x', NFS)), false);
  known.learn(bash, { path: '/usr/bin/bash', mount: 25, inode: '999' }); // another file: not kept
  assert.equal(known.of(bash), undefined);
  known.learn(bash, { path: '/usr/bin/bash (deleted)', mount: 25, inode: '1234' });
  assert.equal(known.of(bash)?.path, '/usr/bin/bash');
  known.learn(recorded('b'), { path: '/b', mount: 25, inode: '1234' });
  known.learn(recorded('c'), { path: '/c', mount: 25, inode: '1234' });
  assert.equal(known.of(bash), undefined, 'at most 2 kept, oldest out');
  assert.equal(new KnownExecutables(0).canLearn(bash), false);
});

test('a command line is split once per text, with the script of an interpreter', () => {
  const bash = new KnownExecutable('/usr/bin/bash');
  const first = bash.commandLine('bash\0-c\0echo hi\0');
  assert.deepEqual(first, { commandLine: ['bash', '-c', 'echo hi'], argument: null });
  assert.equal(bash.commandLine('bash\0-c\0echo hi\0'), first, 'the same text gives the same array');
  assert.deepEqual(bash.commandLine('bash')?.commandLine, ['bash'], 'no trailing NUL');
  assert.deepEqual(bash.commandLine('a\0\0'), { commandLine: ['a', ''], argument: null }, 'one NUL removed');
  assert.equal(bash.commandLine('\0-c\0x\0'), null, 'no argv[0]: read from /proc');

  const node = new KnownExecutable('/usr/bin/node');
  assert.deepEqual(node.commandLine('node\0/srv/app.js\0'), {
    commandLine: ['node', '/srv/app.js'],
    argument: '/srv/app.js',
  });
  assert.equal(node.commandLine('node\0app.js\0'), null, 'a script relative to the cwd: read from /proc');
  assert.deepEqual(node.commandLine('node\0-e\0x\0')?.argument, null);
});

test('at most 32 command lines are kept per executable, and a text dropped is split again', () => {
  const exe = new KnownExecutable('/usr/bin/curl');
  const first = exe.commandLine('curl\0https://a/0\0');
  for (let i = 1; i <= 32; i++) exe.commandLine(`curl\0https://a/${i}\0`);
  const again = exe.commandLine('curl\0https://a/0\0');
  assert.notEqual(again, first, 'the oldest text was dropped');
  assert.deepEqual(again, first);
});
