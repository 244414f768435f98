/**
 * End-to-end: `warden rules add --pin` asks the engine for the program's current SHA-256
 * (programs.hash) and stores the rule pinned to it; programs.hash hashes only programs, for
 * administrators; policy.lint warns when the file on the engine host no longer has the pinned hash.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { ExeHasher } from '../../src/engine/exe-hash.js';
import { WardenError } from '../../src/errors.js';
import { Methods } from '../../src/protocol/methods.js';
import { type Harness, startHarness } from '../integration/admin-harness.js';
import { repoRoot } from '../repo-root.js';

const bin = join(repoRoot(import.meta.url), 'dist/src/console/bin.js');

describe('warden rules add --pin', () => {
  let h: Harness;
  let home: string;
  const hasher = new ExeHasher();
  before(async () => {
    home = mkdtempSync(join(tmpdir(), 'warden-pin-'));
    h = await startHarness({ hasher });
  });
  after(async () => {
    await h.close();
    await hasher.close();
    rmSync(home, { recursive: true, force: true });
  });

  const warden = (...args: string[]) =>
    new Promise<{ code: number; stdout: string; stderr: string }>((resolve) => {
      const remote = args[0] === 'rules' ? ['--engine', 'lab'] : [];
      execFile(
        process.execPath,
        [bin, ...args, ...remote],
        {
          env: {
            PATH: process.env.PATH ?? '',
            XDG_CONFIG_HOME: home,
            WARDEN_PASSWORD: 'correct horse battery',
            NO_COLOR: '1',
          },
        },
        (error, stdout, stderr) => resolve({ code: error ? Number(error.code ?? 1) : 0, stdout, stderr }),
      );
    });

  test('the rule is stored with the program hash; a changed program is a lint warning', async () => {
    const c = await warden(
      'connect',
      `127.0.0.1:${h.server.port}`,
      '--user',
      'alice',
      '--name',
      'lab',
      '--accept',
      h.fingerprint,
    );
    assert.equal(c.code, 0, c.stderr);
    const prog = join(home, 'tool');
    writeFileSync(prog, '#!/bin/sh\necho one\n');
    chmodSync(prog, 0o755);
    const sha = createHash('sha256').update(readFileSync(prog)).digest('hex');
    const add = await warden(
      'rules',
      'add',
      `{ name: tool, direction: outgoing, application: ${prog}, action: allow }`,
      '--pin',
    );
    assert.equal(add.code, 0, add.stderr);
    const client = await h.login();
    assert.equal((await client.call(Methods.rulesGet, { name: 'tool' })).rule.sha256, sha);
    assert.equal(h.config.policy().rules[0]!.sha256, sha);

    const noApp = await warden('rules', 'add', '{ name: any, direction: outgoing, action: allow }', '--pin');
    assert.equal(noApp.code, 2);
    assert.match(noApp.stderr, /--pin needs a rule with an application/);

    assert.deepEqual((await client.call(Methods.lint, {})).findings, []);
    const explained = () =>
      client.call(Methods.explain, { direction: 'outgoing', protocol: 'tcp', hosts: [], application: prog });
    assert.equal(
      ((await explained()).decidingRule as { name?: string } | null)?.name,
      'tool',
      'explain hashes the file at the path',
    );
    writeFileSync(prog, '#!/bin/sh\necho two\n');
    const { findings } = await client.call(Methods.lint, {});
    assert.equal(findings.length, 1, JSON.stringify(findings));
    assert.equal(findings[0]!.kind, 'pin-mismatch');
    assert.match(
      String(findings[0]!.message),
      new RegExp(`pinned sha256 ${sha.slice(0, 12)}… but ${prog} on this host is`),
    );
    const skipped = (await explained()).skipped as { name: string; field: string; reason: string }[];
    assert.equal(skipped[skipped.length - 1]?.field, 'sha256');
    assert.match(
      skipped[skipped.length - 1]!.reason,
      new RegExp(`pinned sha256 ${sha.slice(0, 12)}… but ${prog} is now`),
    );
    client.close();
  });

  test('warden policy explain and lint FILE judge a pin with the file on this host', async () => {
    const prog = join(home, 'other-tool');
    writeFileSync(prog, '#!/bin/sh\n', { mode: 0o755 });
    const sha = createHash('sha256').update(readFileSync(prog)).digest('hex');
    const file = join(home, 'pinned.yaml');
    const policy = (pin: string) =>
      `rules:\n  - { name: pinned, direction: outgoing, application: ${prog}, sha256: "${pin}", action: deny }\n`;
    writeFileSync(file, policy(sha));
    const same = await warden('policy', 'explain', file, '--app', prog, '--to', '192.0.2.1:443');
    assert.match(same.stdout, /^verdict: +DENY by "pinned"/m);
    writeFileSync(file, policy('f'.repeat(64)));
    const other = await warden('policy', 'explain', file, '--app', prog, '--to', '192.0.2.1:443');
    assert.match(
      other.stdout,
      new RegExp(`"pinned": sha256: pinned sha256 ffffffffffff… but ${prog} is now ${sha.slice(0, 12)}…`),
    );
    const lint = await warden('policy', 'lint', file);
    assert.equal(lint.code, 1);
    assert.match(
      lint.stdout,
      new RegExp(
        `^warning pin-mismatch: rule "pinned": pinned sha256 ffffffffffff… but ${prog} on this host is ${sha.slice(0, 12)}…`,
        'm',
      ),
    );
  });

  test('programs.hash: executables only, absolute paths only, administrators only', async () => {
    const admin = await h.login();
    const plain = join(home, 'secret');
    writeFileSync(plain, 'not a program');
    const refused = async (path: string, code: string, message: RegExp) => {
      const e = await admin.call(Methods.programsHash, { path }).then(
        () => assert.fail(`${path} was hashed`),
        (err: unknown) => err,
      );
      assert.ok(e instanceof WardenError);
      assert.equal(e.code, code, e.message);
      assert.match(`${e.message} ${JSON.stringify(e.problems)}`, message);
    };
    await refused(plain, 'WARDEN_E_PARAMS_INVALID', /is not an executable file/);
    await refused(home, 'WARDEN_E_PARAMS_INVALID', /is not an executable file/);
    await refused(join(home, 'nothing'), 'WARDEN_E_NOT_FOUND', /no such file/);
    await refused('usr/bin/env', 'WARDEN_E_PARAMS_INVALID', /absolute path/);
    const env = await admin.call(Methods.programsHash, { path: '/usr/bin/env' });
    assert.equal(env.sha256, createHash('sha256').update(readFileSync('/usr/bin/env')).digest('hex'));
    admin.close();
    const auditor = await h.login('bob');
    await assert.rejects(
      auditor.call(Methods.programsHash, { path: '/usr/bin/env' }),
      /needs the administrator role/,
    );
    auditor.close();
  });
});
