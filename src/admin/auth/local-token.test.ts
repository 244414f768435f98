import assert from 'node:assert/strict';
import { chmod, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { readLocalToken } from '../../client/local-token.js';
import { ErrorCode, WardenError } from '../../errors.js';
import { ensureLocalToken, tokensEqual } from './local-token.js';

let dir: string;
let n = 0;
const fresh = () => join(dir, `case-${++n}`, 'local-token');

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'warden-token-'));
});
after(async () => {
  await rm(dir, { recursive: true, force: true });
});

function isFileIo(match: RegExp) {
  return (e: unknown) => {
    assert.ok(e instanceof WardenError);
    assert.equal(e.code, ErrorCode.FILE_IO);
    assert.match(e.message, match);
    return true;
  };
}

describe('local token', () => {
  test('ensureLocalToken creates 32 random bytes, base64url, mode 0600, owned by this user', async () => {
    const path = fresh();
    const token = await ensureLocalToken(path);
    assert.match(token, /^[A-Za-z0-9_-]{43}$/);
    assert.equal(Buffer.from(token, 'base64url').length, 32);
    const st = await stat(path);
    assert.equal(st.mode & 0o777, 0o600);
    assert.equal(st.uid, process.geteuid?.());
    assert.equal((await readFile(path, 'utf8')).trim(), token);
    assert.deepEqual(await readdir(join(path, '..')), ['local-token'], 'no temporary file left');
  });

  test('a second call returns the same token; another file gets another token', async () => {
    const path = fresh();
    const a = await ensureLocalToken(path);
    assert.equal(await ensureLocalToken(path), a);
    assert.notEqual(await ensureLocalToken(fresh()), a);
  });

  test('concurrent first calls agree on one token', async () => {
    const path = fresh();
    const tokens = await Promise.all([1, 2, 3, 4, 5].map(() => ensureLocalToken(path)));
    assert.equal(new Set(tokens).size, 1);
  });

  test('an existing file readable by group or others is refused with its mode and chmod 600', async () => {
    const path = fresh();
    await ensureLocalToken(path);
    await chmod(path, 0o640);
    await assert.rejects(ensureLocalToken(path), (e) => {
      isFileIo(/0640/)(e);
      assert.match((e as WardenError).suggestion ?? '', /chmod 600/);
      return true;
    });
  });

  test('a file that does not hold a token is refused', async () => {
    const path = fresh();
    await ensureLocalToken(path);
    await writeFile(path, 'short\n');
    await assert.rejects(ensureLocalToken(path), isFileIo(/does not hold a token/));
  });

  test('readLocalToken reads it, and gives null when the file is missing', async () => {
    const path = fresh();
    assert.equal(await readLocalToken(path), null);
    assert.equal(await readLocalToken(join(path, 'below-a-missing-dir')), null);
    const token = await ensureLocalToken(path);
    assert.equal(await readLocalToken(path), token);
    assert.equal(await readLocalToken(join(path, 'below-a-file')), null, 'ENOTDIR');
  });

  test('readLocalToken gives null when this user may not read it', {
    skip: process.geteuid?.() === 0 && 'root reads any file',
  }, async () => {
    const path = fresh();
    await ensureLocalToken(path);
    await chmod(path, 0o000);
    assert.equal(await readLocalToken(path), null);
  });

  test('tokensEqual compares whole tokens, whatever their lengths', () => {
    assert.equal(tokensEqual('abc', 'abc'), true);
    assert.equal(tokensEqual('abc', 'abd'), false);
    assert.equal(tokensEqual('abc', 'abcd'), false);
    assert.equal(tokensEqual('', ''), true);
    assert.equal(tokensEqual('', 'a'), false);
  });
});
