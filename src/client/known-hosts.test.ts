import assert from 'node:assert/strict';
import { chmod, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { ErrorCode, WardenError } from '../errors.js';
import {
  defaultKnownHostsPath,
  fingerprintMismatchError,
  fingerprintOfDer,
  fingerprintUnknownError,
  KnownHosts,
  normalizeFingerprint,
} from './known-hosts.js';

let dir: string;
let n = 0;
const fresh = () => join(dir, `case-${++n}`, 'warden', 'known-hosts.json');

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'warden-known-'));
});
after(async () => {
  await rm(dir, { recursive: true, force: true });
});

const FP_A = fingerprintOfDer(Buffer.from('certificate A'));
const FP_B = fingerprintOfDer(Buffer.from('certificate B'));
const fixedNow = () => new Date('2031-05-06T07:08:09.000Z');

function isCode(code: ErrorCode, match?: RegExp) {
  return (e: unknown) => {
    assert.ok(e instanceof WardenError);
    assert.equal(e.code, code);
    if (match) assert.match(e.message, match);
    return true;
  };
}

describe('known hosts', () => {
  test('defaultKnownHostsPath: XDG_CONFIG_HOME when absolute, else ~/.config', () => {
    assert.equal(
      defaultKnownHostsPath({ XDG_CONFIG_HOME: '/x/cfg' }, '/home/u'),
      '/x/cfg/warden/known-hosts.json',
    );
    assert.equal(defaultKnownHostsPath({}, '/home/u'), '/home/u/.config/warden/known-hosts.json');
    assert.equal(
      defaultKnownHostsPath({ XDG_CONFIG_HOME: '' }, '/home/u'),
      '/home/u/.config/warden/known-hosts.json',
    );
    assert.equal(
      defaultKnownHostsPath({ XDG_CONFIG_HOME: 'rel' }, '/home/u'),
      '/home/u/.config/warden/known-hosts.json',
    );
  });

  test('fingerprints: SHA256 and 32 upper-case hex pairs; normalize accepts lower case', () => {
    assert.match(FP_A, /^SHA256:[0-9A-F]{2}(:[0-9A-F]{2}){31}$/);
    assert.equal(normalizeFingerprint(FP_A.toLowerCase()), FP_A);
    assert.equal(normalizeFingerprint('SHA256:AB'), undefined);
    assert.equal(normalizeFingerprint(FP_A.replace('SHA256:', 'MD5:')), undefined);
  });

  test('a missing file is an empty list and is not created until the first pin', async () => {
    const path = fresh();
    const hosts = await KnownHosts.open(path);
    assert.equal(hosts.lookup('fw:44333'), undefined);
    assert.deepEqual(hosts.check('fw:44333', FP_A), { status: 'unknown' });
    await assert.rejects(stat(path), { code: 'ENOENT' });
  });

  test('pin writes the file (mode 0600, atomically) and check tells known, unknown and changed', async () => {
    const path = fresh();
    const hosts = await KnownHosts.open(path, { now: fixedNow });
    await hosts.pin('fw.example:44333', FP_A);
    assert.equal(hosts.lookup('fw.example:44333'), FP_A);
    assert.deepEqual(hosts.check('fw.example:44333', FP_A), { status: 'known' });
    assert.deepEqual(hosts.check('FW.Example:44333', FP_A.toLowerCase()), { status: 'known' });
    assert.deepEqual(hosts.check('fw.example:44333', FP_B), { status: 'changed', pinned: FP_A });
    assert.deepEqual(hosts.check('fw.example:44334', FP_A), { status: 'unknown' });
    assert.equal((await stat(path)).mode & 0o777, 0o600);
    assert.deepEqual(JSON.parse(await readFile(path, 'utf8')), {
      version: 1,
      hosts: { 'fw.example:44333': { fingerprint: FP_A, added: '2031-05-06T07:08:09.000Z' } },
    });
    assert.deepEqual(await readdir(join(path, '..')), ['known-hosts.json'], 'no temporary file left');
    const again = await KnownHosts.open(path);
    assert.deepEqual(again.list(), [
      { hostPort: 'fw.example:44333', fingerprint: FP_A, added: '2031-05-06T07:08:09.000Z' },
    ]);
  });

  test('forget removes a pin; forgetting an unknown engine returns false', async () => {
    const path = fresh();
    const hosts = await KnownHosts.open(path);
    await hosts.pin('a:1', FP_A);
    await hosts.pin('b:1', FP_B);
    assert.equal(await hosts.forget('a:1'), true);
    assert.equal(await hosts.forget('a:1'), false);
    assert.equal(hosts.lookup('a:1'), undefined);
    assert.deepEqual(
      (await KnownHosts.open(path)).list().map((h) => h.hostPort),
      ['b:1'],
    );
  });

  test('two consoles writing the same file keep each other’s pins', async () => {
    const path = fresh();
    const one = await KnownHosts.open(path);
    const two = await KnownHosts.open(path);
    await one.pin('a:1', FP_A);
    await two.pin('b:1', FP_B);
    assert.deepEqual(
      (await KnownHosts.open(path)).list().map((h) => h.hostPort),
      ['a:1', 'b:1'],
    );
    await Promise.all([one.pin('c:1', FP_A), one.pin('d:1', FP_B), one.forget('a:1')]);
    assert.deepEqual(
      (await KnownHosts.open(path)).list().map((h) => h.hostPort),
      ['b:1', 'c:1', 'd:1'],
    );
  });

  test('pin refuses something that is not a fingerprint', async () => {
    const hosts = await KnownHosts.open(fresh());
    await assert.rejects(
      hosts.pin('a:1', 'SHA256:12'),
      isCode(ErrorCode.PARAMS_INVALID, /not a fingerprint/),
    );
  });

  test('a malformed file, or one group or others may write, is refused', async () => {
    const path = fresh();
    const hosts = await KnownHosts.open(path);
    await hosts.pin('a:1', FP_A);
    await chmod(path, 0o666);
    await assert.rejects(KnownHosts.open(path), isCode(ErrorCode.FILE_IO, /0666/));
    await chmod(path, 0o600);
    await writeFile(path, '{"version":1,"hosts":{"a:1":{"fingerprint":"nope"}}}');
    await assert.rejects(KnownHosts.open(path), isCode(ErrorCode.FILE_IO, /a:1.*fingerprint/));
    await writeFile(path, '[');
    await assert.rejects(KnownHosts.open(path), isCode(ErrorCode.FILE_IO, /malformed/));
  });

  test('the mismatch error warns loudly, names both fingerprints and the file, and says how to recover', () => {
    const e = fingerprintMismatchError('fw:44333', FP_A, FP_B, '/home/u/.config/warden/known-hosts.json');
    assert.equal(e.code, ErrorCode.FINGERPRINT_MISMATCH);
    assert.match(e.message, /^WARNING: THE ENGINE'S IDENTITY HAS CHANGED!/);
    assert.ok(e.message.includes(`pinned:    ${FP_A}`));
    assert.ok(e.message.includes(`presented: ${FP_B}`));
    assert.ok(e.message.includes('/home/u/.config/warden/known-hosts.json'));
    assert.ok(e.message.split('\n').length > 3);
    assert.match(e.suggestion ?? '', /administrator/);
    assert.match(e.suggestion ?? '', /warden engines forget fw:44333/);
  });

  test('the unknown error names the fingerprint and says how to accept it', () => {
    const e = fingerprintUnknownError('fw:44333', FP_A);
    assert.equal(e.code, ErrorCode.FINGERPRINT_UNKNOWN);
    assert.ok(e.message.includes('fw:44333'));
    assert.ok(e.message.includes(FP_A));
    assert.match(e.suggestion ?? '', /prints at start/);
    assert.ok((e.suggestion ?? '').includes(`--accept ${FP_A}`));
  });
});
