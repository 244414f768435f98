import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { readListFiles } from './list-files.js';
import { ListParser } from './policy/list-format.js';

const dir = mkdtempSync(join(tmpdir(), 'warden-list-files-'));
after(() => rmSync(dir, { recursive: true, force: true }));

async function problemsOf(path: string): Promise<string[]> {
  const parser = new ListParser('domains', { maxBytes: 1 << 20, maxEntries: 1000 });
  await readListFiles(path, 1 << 20, (chunk, quotable) => parser.push(chunk, quotable));
  return parser.end().problems.map((p) => `${p.line}: ${p.message}`);
}

test('bad lines of a safely owned file are quoted; through a symlink, or in a directory others may write, they are not', async () => {
  // A "secret" the engine can read and a user could point a list at.
  const secret = join(dir, 'secret');
  writeFileSync(secret, 'root:$6$SECRETHASH:19000:0:99999:7:::\n');
  const safe = join(dir, 'safe.txt');
  writeFileSync(safe, 'ok.example\nroot:$6$SECRETHASH\n');
  assert.deepEqual(await problemsOf(safe), ['2: "root:$6$SECRETHASH" is not a domain name']);

  const link = join(dir, 'list-link.txt');
  symlinkSync(secret, link);
  const viaLink = await problemsOf(link);
  assert.equal(viaLink.length, 1);
  assert.doesNotMatch(viaLink.join(), /SECRET|root/);
  assert.match(viaLink[0]!, /^1: the entry is not a domain name/);

  const open = join(dir, 'open');
  mkdirSync(open);
  chmodSync(open, 0o1777);
  writeFileSync(join(open, 'list.txt'), 'root:$6$SECRETHASH\n');
  assert.doesNotMatch((await problemsOf(join(open, 'list.txt'))).join(), /SECRET/);
});

test("a FIFO in a list file's place is refused at once, not waited on", async () => {
  const fifo = join(dir, 'fifo');
  execFileSync('mkfifo', [fifo]);
  const t0 = Date.now();
  await assert.rejects(
    readListFiles(fifo, 1 << 20, () => {}),
    /not a regular file/,
  );
  assert.ok(Date.now() - t0 < 2000);
});

test('bytes past the bound refuse the list', async () => {
  const big = join(dir, 'big.txt');
  writeFileSync(big, 'a.example\n'.repeat(1000));
  await assert.rejects(
    readListFiles(big, 5000, () => {}),
    /more than its bound of 5000 bytes/,
  );
});

test('a list path that is a symlink to a directory is read as the directory; in it, what is not a file is passed over', async () => {
  const lists = join(dir, 'lists');
  mkdirSync(lists);
  writeFileSync(join(lists, 'a.txt'), 'a.example\n');
  writeFileSync(join(lists, 'b.txt'), 'b.example\n');
  mkdirSync(join(lists, 'sub'));
  symlinkSync(join(lists, 'sub'), join(lists, 'c-dir-link'));
  symlinkSync(join(dir, 'nowhere'), join(lists, 'd-dangling'));
  execFileSync('mkfifo', [join(lists, 'e-fifo')]);
  const link = join(dir, 'lists-link');
  symlinkSync(lists, link);
  for (const path of [lists, link]) {
    let text = '';
    await readListFiles(path, 1 << 20, (chunk) => (text += chunk.toString()));
    assert.equal(text, 'a.example\n\nb.example\n\n', path);
  }
});
