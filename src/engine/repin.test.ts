/**
 * The Debian re-pin: the pure decision, the dpkg database reader on a fake database of real files,
 * and the Repinner writing a real configuration store (a version by user "engine", an audit item).
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { FileConfigStore } from '../admin/config-store.js';
import { parsePolicyText } from '../policy/index.js';
import type { NewLogItem } from '../protocol/log-item.js';
import { DpkgDatabase } from './dpkg.js';
import { ExeHasher } from './exe-hash.js';
import { Repinner, repinDecision } from './repin.js';

const dir = mkdtempSync(join(tmpdir(), 'warden-repin-'));
const hasher = new ExeHasher();
after(async () => {
  await hasher.close();
  rmSync(dir, { recursive: true, force: true });
});
const md5 = (s: string) => createHash('md5').update(s).digest('hex');
const OLD = '0'.repeat(64);
const NEW = '1'.repeat(64);

/** A fake dpkg database: `files` per package (path -> content recorded in md5sums), `versions` in status. */
function fakeDpkg(
  root: string,
  packages: Record<string, { files: Record<string, string>; version: string }>,
) {
  mkdirSync(join(root, 'info'), { recursive: true });
  const status: string[] = [];
  for (const [pkg, p] of Object.entries(packages)) {
    const paths = Object.keys(p.files);
    // As dpkg does: a new file renamed into place (the info directory changes).
    const put = (name: string, text: string) => {
      writeFileSync(join(root, 'info', `${name}.new`), text);
      renameSync(join(root, 'info', `${name}.new`), join(root, 'info', name));
    };
    put(`${pkg}.list`, `${['/.', '/usr', '/usr/bin', ...paths].join('\n')}\n`);
    put(`${pkg}.md5sums`, paths.map((f) => `${md5(p.files[f]!)}  ${f.slice(1)}\n`).join(''));
    const [name, arch] = pkg.split(':');
    status.push(
      `Package: ${name}\nStatus: install ok installed\nArchitecture: ${arch ?? 'amd64'}\nVersion: ${p.version}\n`,
    );
  }
  writeFileSync(join(root, 'status'), status.join('\n'));
}

describe('repinDecision', () => {
  const rules = parsePolicyText(`
rules:
  - { name: curl, direction: outgoing, application: /usr/bin/curl, sha256: "${OLD}", action: allow }
  - { name: curl new, direction: outgoing, application: /usr/bin/curl, sha256: "${NEW}", action: allow }
  - { name: wget, direction: outgoing, application: /usr/bin/wget, sha256: "${OLD}", action: allow }
`).rules;
  const base = { application: '/usr/bin/curl', sha256: NEW, md5: md5('new curl'), rules };
  test('re-pins the rules of that application pinned to another hash when the package md5 matches', () => {
    const d = repinDecision({
      ...base,
      owner: { package: 'curl', version: '8.5.0-2', md5: md5('new curl') },
    });
    assert.deepEqual(d, {
      repin: true,
      rules: ['curl'],
      because: `/usr/bin/curl is now sha256 111111111111…, the file of package curl 8.5.0-2 (its md5sums match)`,
    });
  });
  test('never when the file belongs to no package, the package has no checksum for it, or the md5 differs', () => {
    assert.match(repinDecision({ ...base, owner: null }).because, /belongs to no Debian package/);
    assert.match(
      repinDecision({ ...base, owner: { package: 'curl', version: '1' } }).because,
      /records no checksum/,
    );
    const d = repinDecision({ ...base, owner: { package: 'curl', version: '1', md5: md5('old curl') } });
    assert.equal(d.repin, false);
    assert.match(d.because, /NOT the file package curl 1 installed/);
    assert.equal(repinDecision({ ...base, application: '/usr/bin/ssh', owner: null }).repin, false);
  });
});

describe('DpkgDatabase', () => {
  test('finds the package of a path (also under the other merged-/usr spelling), its md5 and version', async () => {
    const root = join(dir, 'dpkg-a');
    fakeDpkg(root, {
      coreutils: { files: { '/bin/sleep': 'sleep', '/usr/bin/env': 'env' }, version: '9.1-1' },
      'libfoo:arm64': { files: { '/usr/bin/foo': 'foo' }, version: '2.0' },
    });
    const db = new DpkgDatabase(root);
    assert.deepEqual(await db.fileOf('/usr/bin/sleep'), {
      package: 'coreutils',
      version: '9.1-1',
      md5: md5('sleep'),
    });
    assert.deepEqual(await db.fileOf('/usr/bin/foo'), {
      package: 'libfoo:arm64',
      version: '2.0',
      md5: md5('foo'),
    });
    assert.equal(await db.fileOf('/usr/bin/nothere'), null);
    assert.equal(await new DpkgDatabase(join(dir, 'no-database')).fileOf('/usr/bin/env'), null);
  });
});

describe('Repinner', () => {
  test('a package update re-pins as a version by "engine" with an audit item; a tampered file is not re-pinned', async () => {
    const exe = join(dir, 'bin', 'tool');
    mkdirSync(join(dir, 'bin'), { recursive: true });
    const root = join(dir, 'dpkg-b');
    fakeDpkg(root, { tool: { files: { [exe]: 'tool version 2' }, version: '2.0-1' } });
    const config = await FileConfigStore.open(join(dir, 'config'));
    await config.setPolicy(
      parsePolicyText(`
rules:
  - { name: tool, direction: outgoing, application: ${exe}, sha256: "${OLD}", action: allow }
  - { name: other, direction: outgoing, application: /usr/bin/other, sha256: "${OLD}", action: allow }
`),
      { user: 'root', source: 'test' },
    );
    const items: NewLogItem[] = [];
    const failures: string[] = [];
    const repinner = new Repinner({
      dpkg: new DpkgDatabase(root),
      hasher,
      policy: () => config.policy(),
      setPolicy: (p, meta) => config.setPolicy(p, meta),
      log: (i) => items.push(i),
      fail: (m) => failures.push(m),
    });

    // The package's own file (real file, hashed for real): re-pinned.
    writeFileSync(exe, 'tool version 2');
    const good = await hasher.ofPath(exe);
    repinner.consider({ application: exe, hash: good, rules: ['tool'] });
    repinner.consider({ application: exe, hash: good, rules: ['tool'] }); // looked at once
    await repinner.settled();
    assert.deepEqual(failures, []);
    assert.equal(config.policy().rules[0]!.sha256, good.sha256);
    assert.equal(config.policy().rules[1]!.sha256, OLD, 'other applications keep their pins');
    const v = config.history()[0]!;
    assert.equal(v.user, 'engine');
    assert.equal(v.source, 'dpkg re-pin');
    assert.equal(items.length, 1);
    assert.equal(items[0]!.kind, 'admin');
    assert.equal(items[0]!.user, 'engine');
    assert.match(
      items[0]!.message,
      new RegExp(
        `rule "tool" re-pinned from sha256 000000000000… as version ${v.version}: .*package tool 2\\.0-1 \\(its md5sums match\\)`,
      ),
    );

    // Replaced by something no package installed: stays pinned to the package's file, said once.
    writeFileSync(exe, 'tool version 2, patched by someone');
    const bad = await hasher.ofPath(exe);
    repinner.consider({ application: exe, hash: bad, rules: ['tool'] });
    await repinner.settled();
    assert.equal(config.policy().rules[0]!.sha256, good.sha256);
    assert.equal(config.history()[0]!.version, v.version, 'no new version');
    assert.equal(items.length, 2);
    assert.equal(items[1]!.kind, 'security');
    assert.match(items[1]!.message, /not re-pinned: .* is NOT the file package tool 2\.0-1 installed/);
    repinner.consider({ application: exe, hash: bad, rules: ['tool'] });
    await repinner.settled();
    assert.equal(items.length, 2, 'said once while the database is the same');

    // dpkg records the next package version (its checksums written after the file): looked at again, re-pinned.
    fakeDpkg(root, { tool: { files: { [exe]: 'tool version 2, patched by someone' }, version: '2.0-2' } });
    repinner.consider({ application: exe, hash: bad, rules: ['tool'] });
    await repinner.settled();
    assert.equal(config.policy().rules[0]!.sha256, bad.sha256);
    assert.match(items[2]!.message, /re-pinned .*package tool 2\.0-2/);
  });
});
