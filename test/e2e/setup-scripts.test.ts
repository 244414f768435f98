/**
 * The parts of `npm start`'s set-up that decide what to skip and what to put on the PATH, run for
 * real on scratch directories: node_modules is taken as up to date only when it holds what
 * package-lock.json asks for (scripts/lib/node-modules-match.cjs), and the wrappers for warden,
 * wardend and warden-assist are written once, run this checkout, and never replace a foreign file
 * (scripts/lib/link-bins.sh).
 */
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { repoRoot } from '../repo-root.js';

const root = repoRoot(import.meta.url);
const dir = mkdtempSync(join(tmpdir(), 'warden-setup-'));

describe('set-up steps', () => {
  after(() => rmSync(dir, { recursive: true, force: true }));

  test('node_modules matches the lock only when every locked package is installed at its version', () => {
    const project = join(dir, 'project');
    mkdirSync(join(project, 'node_modules/a'), { recursive: true });
    const lock = {
      packages: {
        '': { name: 'x' },
        'node_modules/a': { version: '1.0.0' },
        'node_modules/@biomejs/cli-darwin-arm64': { version: '2.0.0', optional: true },
      },
    };
    writeFileSync(join(project, 'package-lock.json'), JSON.stringify(lock));
    const installed = (packages: Record<string, unknown>) =>
      writeFileSync(join(project, 'node_modules/.package-lock.json'), JSON.stringify({ packages }));
    const check = () =>
      spawnSync('node', [join(root, 'scripts/lib/node-modules-match.cjs')], {
        cwd: project,
        encoding: 'utf8',
      });
    installed({ 'node_modules/a': { version: '1.0.0' } });
    assert.equal(check().status, 0, 'same versions; an optional package of another platform is not needed');
    installed({ 'node_modules/a': { version: '0.9.0' } });
    assert.match(check().stderr, /node_modules\/a is 0\.9\.0, the lock wants 1\.0\.0/);
    installed({ 'node_modules/a': { version: '1.0.0' }, 'node_modules/gone': { version: '1.0.0' } });
    assert.match(check().stderr, /node_modules\/gone is not in the lock/);
    installed({});
    assert.match(check().stderr, /node_modules\/a is not installed/);
    rmSync(join(project, 'node_modules/a'), { recursive: true });
    installed({ 'node_modules/a': { version: '1.0.0' } });
    assert.match(check().stderr, /node_modules\/a is missing on disk/);
    rmSync(join(project, 'node_modules/.package-lock.json'));
    assert.equal(check().status, 1);
  });

  test('the wrappers run this checkout, are written once, and a foreign file is left alone', () => {
    const bin = join(dir, 'bin');
    mkdirSync(bin);
    writeFileSync(join(bin, 'warden-assist'), '#!/bin/sh\necho someone else\n', { mode: 0o755 });
    const link = () =>
      spawnSync('bash', [join(root, 'scripts/lib/link-bins.sh'), bin], { cwd: dir, encoding: 'utf8' });
    const first = link();
    assert.equal(first.status, 0, first.stderr);
    assert.match(first.stderr, /left .*warden-assist alone: it is not a wrapper of ours/);
    assert.match(first.stderr, /warden wardend in .* run this checkout/);
    assert.equal(readFileSync(join(bin, 'warden-assist'), 'utf8'), '#!/bin/sh\necho someone else\n');
    assert.equal(statSync(join(bin, 'warden')).mode & 0o777, 0o755);
    assert.match(
      readFileSync(join(bin, 'warden'), 'utf8'),
      new RegExp(`exec \\S+ ${root}/dist/src/console/bin\\.js "\\$@"`),
    );
    const before = statSync(join(bin, 'wardend')).mtimeMs;
    assert.equal(link().status, 0);
    assert.equal(statSync(join(bin, 'wardend')).mtimeMs, before, 'an unchanged wrapper is not rewritten');
    assert.equal(execFileSync(join(bin, 'warden'), ['--version'], { encoding: 'utf8' }).trim(), '0.1.0');
    assert.equal(execFileSync(join(bin, 'wardend'), ['--version'], { encoding: 'utf8' }).trim(), '0.1.0');
  });
});
