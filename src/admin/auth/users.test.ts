import assert from 'node:assert/strict';
import { chmod, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { ErrorCode, WardenError } from '../../errors.js';
import { DEFAULT_SCRYPT_COST, hashPassword, parsePasswordHash, verifyPasswordHash } from './password-hash.js';
import { UserStore } from './users.js';

/** Small scrypt cost so the tests stay fast; the default cost is tested once on its own. */
const FAST = { scryptCost: { N: 2 ** 10, r: 8, p: 1 } };

let dir: string;
let n = 0;
const fresh = () => join(dir, `case-${++n}`, 'users.json');

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'warden-users-'));
});
after(async () => {
  await rm(dir, { recursive: true, force: true });
});

function isCode(code: ErrorCode, match?: RegExp) {
  return (e: unknown) => {
    assert.ok(e instanceof WardenError, `expected a WardenError, got ${String(e)}`);
    assert.equal(e.code, code);
    if (match) assert.match(e.message, match);
    return true;
  };
}

describe('password hashes', () => {
  test('the default cost is N=2^15, r=8, p=1 with a 16-byte salt and a 32-byte key', async () => {
    assert.deepEqual(DEFAULT_SCRYPT_COST, { N: 32768, r: 8, p: 1 });
    const encoded = await hashPassword('correct horse');
    assert.match(encoded, /^scrypt\$32768\$8\$1\$[A-Za-z0-9+/=]+\$[A-Za-z0-9+/=]+$/);
    const parsed = parsePasswordHash(encoded);
    assert.ok(parsed);
    assert.equal(parsed.salt.length, 16);
    assert.equal(parsed.hash.length, 32);
    assert.equal(await verifyPasswordHash('correct horse', parsed), true);
    assert.equal(await verifyPasswordHash('correct horsf', parsed), false);
  });

  test('two hashes of one password differ (random salt)', async () => {
    const a = await hashPassword('same password', FAST.scryptCost);
    const b = await hashPassword('same password', FAST.scryptCost);
    assert.notEqual(a, b);
  });

  test('hashes of another form, or with an absurd cost, are not accepted', () => {
    assert.equal(parsePasswordHash('plain'), undefined);
    assert.equal(parsePasswordHash('bcrypt$1$2$3$AAAAAAAAAAA=$AAAAAAAAAAAAAAAAAAAAAA=='), undefined);
    const salt = Buffer.alloc(16).toString('base64');
    const key = Buffer.alloc(32).toString('base64');
    assert.ok(parsePasswordHash(`scrypt$1024$8$1$${salt}$${key}`));
    assert.equal(parsePasswordHash(`scrypt$1000$8$1$${salt}$${key}`), undefined, 'N not a power of two');
    assert.equal(parsePasswordHash(`scrypt$${2 ** 24}$8$1$${salt}$${key}`), undefined, 'N too large');
    assert.equal(parsePasswordHash(`scrypt$1024$8$1$${salt}$!!`), undefined, 'not base64');
  });
});

describe('UserStore', () => {
  test('open creates a missing file (and its directory) empty, with mode 0600', async () => {
    const path = fresh();
    const store = await UserStore.open(path, FAST);
    assert.deepEqual(store.list(), []);
    assert.equal((await stat(path)).mode & 0o777, 0o600);
    assert.deepEqual(JSON.parse(await readFile(path, 'utf8')), { version: 1, users: [] });
  });

  test('open refuses a file group or others may read, naming the file, its mode and chmod 600', async () => {
    const path = fresh();
    await UserStore.open(path, FAST);
    await chmod(path, 0o644);
    await assert.rejects(UserStore.open(path, FAST), (e) => {
      isCode(ErrorCode.FILE_IO)(e);
      const err = e as WardenError;
      assert.ok(err.message.includes(path));
      assert.match(err.message, /0644/);
      assert.match(err.suggestion ?? '', /chmod 600/);
      return true;
    });
    await chmod(path, 0o620);
    await assert.rejects(UserStore.open(path, FAST), isCode(ErrorCode.FILE_IO, /0620/));
  });

  test('open refuses a malformed file with the file and the entry named', async () => {
    const path = fresh();
    await UserStore.open(path, FAST);
    await writeFile(path, '{"version":1,"users":[{"name":"bob","role":"root","password":"x"}]}');
    await assert.rejects(UserStore.open(path, FAST), isCode(ErrorCode.FILE_IO, /users\[0\].*role/));
    await writeFile(path, 'not json');
    await assert.rejects(UserStore.open(path, FAST), isCode(ErrorCode.FILE_IO, /malformed/));
    await writeFile(path, '{"version":2,"users":[]}');
    await assert.rejects(UserStore.open(path, FAST), isCode(ErrorCode.FILE_IO, /version/));
  });

  test('add, list and verify; the file keeps mode 0600 and holds only hashes', async () => {
    const path = fresh();
    const store = await UserStore.open(path, FAST);
    await store.add('alice', 'administrator', 'alice-secret');
    await store.add('bob', 'auditor', 'bob-secret!');
    assert.deepEqual(store.list(), [
      { name: 'alice', role: 'administrator' },
      { name: 'bob', role: 'auditor' },
    ]);
    assert.deepEqual(await store.verify('alice', 'alice-secret'), { name: 'alice', role: 'administrator' });
    assert.deepEqual(await store.verify('bob', 'bob-secret!'), { name: 'bob', role: 'auditor' });
    assert.equal(await store.verify('alice', 'bob-secret!'), null);
    assert.equal(await store.verify('carol', 'alice-secret'), null);
    assert.equal(await store.verify('', ''), null);
    assert.equal((await stat(path)).mode & 0o777, 0o600);
    const text = await readFile(path, 'utf8');
    assert.ok(!text.includes('alice-secret'));
    const doc = JSON.parse(text);
    assert.equal(doc.version, 1);
    assert.match(doc.users[0].password, /^scrypt\$1024\$8\$1\$/);
    // No temporary files are left beside it.
    assert.deepEqual(await readdir(join(path, '..')), ['users.json']);
  });

  test('changes persist: a new store on the same file sees them', async () => {
    const path = fresh();
    const store = await UserStore.open(path, FAST);
    await store.add('alice', 'administrator', 'first-password');
    await store.setPassword('alice', 'second-password');
    await store.add('bob', 'auditor', 'bob-password');
    await store.remove('bob');
    const again = await UserStore.open(path, FAST);
    assert.deepEqual(again.list(), [{ name: 'alice', role: 'administrator' }]);
    assert.equal(await again.verify('alice', 'first-password'), null);
    assert.deepEqual(await again.verify('alice', 'second-password'), {
      name: 'alice',
      role: 'administrator',
    });
  });

  test('names are matched without regard to case', async () => {
    const store = await UserStore.open(fresh(), FAST);
    await store.add('Alice', 'auditor', 'alice-secret');
    assert.deepEqual(await store.verify('alice', 'alice-secret'), { name: 'Alice', role: 'auditor' });
    await assert.rejects(store.add('ALICE', 'auditor', 'whatever-1'), isCode(ErrorCode.ALREADY_EXISTS));
  });

  test('bad names, roles and passwords are refused with PARAMS_INVALID and a clear message', async () => {
    const store = await UserStore.open(fresh(), FAST);
    for (const name of ['', '1abc', 'has space', 'a'.repeat(33), 'semi;colon', '-dash']) {
      await assert.rejects(
        store.add(name, 'auditor', 'long-enough'),
        isCode(ErrorCode.PARAMS_INVALID, /user name/),
      );
    }
    await store.add(`_${'a'.repeat(31)}`, 'auditor', 'long-enough');
    await store.add('a.b-c_d', 'auditor', 'long-enough');
    await assert.rejects(
      store.add('carol', 'root' as 'auditor', 'long-enough'),
      isCode(ErrorCode.PARAMS_INVALID, /role/),
    );
    await assert.rejects(
      store.add('carol', 'auditor', 'short'),
      isCode(ErrorCode.PARAMS_INVALID, /at least 8/),
    );
    await assert.rejects(
      store.setPassword('a.b-c_d', '1234567'),
      isCode(ErrorCode.PARAMS_INVALID, /at least 8/),
    );
    assert.equal(store.list().length, 2);
  });

  test('duplicates and missing users: ALREADY_EXISTS and NOT_FOUND', async () => {
    const store = await UserStore.open(fresh(), FAST);
    await store.add('alice', 'administrator', 'alice-secret');
    await assert.rejects(store.add('alice', 'auditor', 'other-secret'), isCode(ErrorCode.ALREADY_EXISTS));
    await assert.rejects(store.setPassword('nobody', 'long-enough'), isCode(ErrorCode.NOT_FOUND));
    await assert.rejects(store.remove('nobody'), isCode(ErrorCode.NOT_FOUND));
  });

  test('concurrent changes are serialized: none is lost', async () => {
    const path = fresh();
    const store = await UserStore.open(path, FAST);
    const names = ['u1', 'u2', 'u3', 'u4', 'u5'];
    await Promise.all(names.map((name) => store.add(name, 'auditor', `${name}-password`)));
    const again = await UserStore.open(path, FAST);
    assert.deepEqual(
      again
        .list()
        .map((u) => u.name)
        .sort(),
      names,
    );
    const dup = await Promise.allSettled([
      store.add('same', 'auditor', 'password-1'),
      store.add('same', 'auditor', 'password-2'),
    ]);
    assert.deepEqual(dup.map((r) => r.status).sort(), ['fulfilled', 'rejected']);
  });

  test('a file written with another cost still verifies (cost is read from each hash)', async () => {
    const path = fresh();
    const store = await UserStore.open(path, FAST);
    await store.add('alice', 'administrator', 'alice-secret');
    const other = await UserStore.open(path, { scryptCost: { N: 2 ** 11, r: 4, p: 1 } });
    assert.deepEqual(await other.verify('alice', 'alice-secret'), { name: 'alice', role: 'administrator' });
  });

  test('an unknown name still costs a scrypt run (timing does not tell which names exist)', async () => {
    // A lower bound only: without the dummy run the unknown name would answer in well under a millisecond.
    const store = await UserStore.open(fresh(), { scryptCost: { N: 2 ** 14, r: 8, p: 1 } });
    const start = performance.now();
    assert.equal(await store.verify('nobody', 'some password'), null);
    assert.ok(performance.now() - start >= 5, 'verify of an unknown user returned too fast to have hashed');
  });
});
