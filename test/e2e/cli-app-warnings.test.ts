/**
 * End-to-end: a rule naming an application path that does not exist is kept but warned about, by
 * `warden rules add|update` against a real administration server (the engine looks on its own host) and
 * by `warden policy check|lint FILE` offline; the warning names a similarly named executable in PATH.
 */
import assert from 'node:assert/strict';
import { chmodSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { Methods } from '../../src/protocol/methods.js';
import { cliAgainstHarness } from '../support/console-harness.js';

describe('warnings for application paths that do not exist', () => {
  let progDir: string;
  const savedPath = process.env.PATH;
  const cli = cliAgainstHarness({
    toLab: (args) => args[0] === 'rules',
    beforeStart: (home) => {
      // A program directory on PATH (of the engine, which runs in this process, and of the CLI).
      progDir = join(home, 'bin');
      mkdirSync(progDir);
      writeFileSync(join(progDir, 'wardenprobe'), '#!/bin/sh\n');
      chmodSync(join(progDir, 'wardenprobe'), 0o755);
      process.env.PATH = `${progDir}:${savedPath ?? ''}`;
    },
    afterClose: () => {
      process.env.PATH = savedPath;
    },
  });
  const warden = (...args: string[]) => cli.warden(args);

  test('rules add and update: kept, with `warning:` and the similarly named executable', async () => {
    await cli.connectLab();
    const typo = join(progDir, 'wardenprobee');
    const add = await warden(
      'rules',
      'add',
      `{ name: probe, direction: outgoing, protocol: tcp, application: ${typo}, action: allow }`,
    );
    assert.equal(add.code, 0, add.stderr);
    assert.match(add.stdout, /Added "probe"/);
    assert.match(
      add.stderr,
      new RegExp(`^warning: rule "probe": application "${typo}" does not exist on this host`, 'm'),
    );
    assert.match(add.stderr, new RegExp(`did you mean "${join(progDir, 'wardenprobe')}"\\?`));

    const nowhere = '/opt/warden-nowhere/zq-not-a-program';
    const upd = await warden(
      'rules',
      'update',
      'probe',
      `{ name: probe, direction: outgoing, protocol: tcp, application: ${nowhere}, action: allow }`,
    );
    assert.equal(upd.code, 0, upd.stderr);
    assert.match(
      upd.stderr,
      /^warning: .*zq-not-a-program" does not exist .*check the path; the rule will match once it exists/m,
    );

    const ok = await warden(
      'rules',
      'update',
      'probe',
      `{ name: probe, direction: outgoing, protocol: tcp, application: ${join(progDir, 'wardenprobe')}, action: allow }`,
    );
    assert.equal(ok.code, 0, ok.stderr);
    assert.equal(ok.stderr, '');

    // The engine's policy.lint reports it too.
    await warden(
      'rules',
      'update',
      'probe',
      `{ name: probe, direction: outgoing, protocol: tcp, application: ${typo}, action: allow }`,
    );
    const client = await cli.h.login();
    const { findings } = await client.call(Methods.lint, {});
    assert.ok(
      findings.some(
        (f) => f.kind === 'missing-application' && f.rule === 'probe' && f.severity === 'warning',
      ),
      JSON.stringify(findings),
    );
    client.close();
  });

  test('policy check and lint of a file warn offline; check still exits 0', async () => {
    const file = join(cli.home, 'policy.yaml');
    writeFileSync(
      file,
      `version: 1\nrules:\n  - name: probe\n    direction: outgoing\n    protocol: tcp\n    application: ${join(progDir, 'wardenprobee')}\n    action: allow\n`,
    );
    const check = await warden('policy', 'check', file);
    assert.equal(check.code, 0, check.stderr);
    assert.match(check.stdout, /OK: 1 rule/);
    assert.match(
      check.stderr,
      new RegExp(`^warning: rule "probe": .*did you mean "${join(progDir, 'wardenprobe')}"`, 'm'),
    );
    const lint = await warden('policy', 'lint', file);
    assert.equal(lint.code, 1);
    assert.match(lint.stdout, /^warning missing-application: rule "probe"/m);
  });
});
