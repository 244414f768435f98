/**
 * `npm run package:deb` (scripts/package-deb.sh) builds a Debian package that dpkg installs into a
 * scratch root (dpkg --root, maintainer scripts not chrooted: they do nothing outside the real root):
 * the unit, /etc/warden and /var/lib/warden with the engine's modes, the /usr/bin entries, man pages
 * and completions are there, and the installed JS runs with the host's node from the scratch root,
 * loading the packaged C addon and better-sqlite3 (not this checkout's).
 */
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { gunzipSync } from 'node:zlib';
import { repoRoot } from '../repo-root.js';

const root = repoRoot(import.meta.url);
const hasDpkg = (() => {
  try {
    execFileSync('dpkg-deb', ['--version'], { stdio: 'ignore' });
    return process.getuid?.() === 0;
  } catch {
    return false;
  }
})();

describe('the Debian package (npm run package:deb)', {
  skip: hasDpkg ? false : 'needs root and dpkg-deb',
}, () => {
  let dir: string;
  let scratch: string;
  let deb: string;
  const mode = (p: string) => (statSync(join(scratch, p)).mode & 0o7777).toString(8);
  const dpkg = (...args: string[]) =>
    execFileSync(
      'dpkg',
      [`--root=${scratch}`, '--force-script-chrootless', '--force-depends', '--log=/dev/null', ...args],
      { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] },
    );

  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'warden-deb-'));
    scratch = join(dir, 'root');
    for (const d of ['var/lib/dpkg/info', 'var/lib/dpkg/updates', 'var/log'])
      mkdirSync(join(scratch, d), { recursive: true });
    writeFileSync(join(scratch, 'var/lib/dpkg/status'), '');
    // The suite has built everything already: no setup (it would rebuild dist/ under running tests).
    deb = execFileSync('bash', [join(root, 'scripts/package-deb.sh'), join(dir, 'out')], {
      cwd: root,
      encoding: 'utf8',
      env: { ...process.env, WARDEN_SKIP_SETUP: '1' },
      stdio: ['ignore', 'pipe', 'pipe'],
    }).trim();
    dpkg('-i', deb);
  });
  after(() => {
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  test('dpkg records it installed, with its version', () => {
    assert.match(deb, /warden_\d+\.\d+\.\d+_[a-z0-9]+\.deb$/);
    const status = execFileSync(
      'dpkg-query',
      [`--admindir=${join(scratch, 'var/lib/dpkg')}`, '-W', `-f=\${Status} \${Version}`, 'warden'],
      {
        encoding: 'utf8',
      },
    );
    assert.equal(status, 'install ok installed 0.1.0');
  });

  test('the unit, the directories with the modes the engine uses, the /usr/bin entries', () => {
    const unit = readFileSync(join(scratch, 'lib/systemd/system/wardend.service'), 'utf8');
    assert.match(unit, /^ExecStart=wardend run --config-dir \/etc\/warden --state-dir \/var\/lib\/warden$/m);
    assert.doesNotMatch(unit, /npm install/);
    assert.equal(mode('etc/warden'), '755');
    assert.equal(mode('var/lib/warden'), '700');
    for (const [name, part] of [
      ['warden', 'console'],
      ['wardend', 'engine'],
      ['warden-assist', 'assist'],
    ] as const) {
      assert.equal(mode(`usr/bin/${name}`), '755');
      const wrapper = readFileSync(join(scratch, 'usr/bin', name), 'utf8');
      const target = `/usr/lib/warden/dist/src/${part}/bin.js`;
      assert.match(wrapper, new RegExp(`^exec node ${target} "\\$@"$`, 'm'));
      assert.ok(existsSync(join(scratch, target)), `${target} is installed`);
    }
    assert.ok(existsSync(join(scratch, 'usr/lib/warden/build/Release/warden_kernel.node')), 'the C addon');
    assert.deepEqual(
      readdirSync(join(scratch, 'usr/lib/warden/dist/src/console')).filter((f) => f.endsWith('.test.js')),
      [],
      'no tests are packaged',
    );
  });

  test('man pages generated from the help, and completions', () => {
    const man1 = gunzipSync(readFileSync(join(scratch, 'usr/share/man/man1/warden.1.gz'))).toString();
    assert.match(man1, /^\.TH WARDEN 1 /);
    assert.match(man1, /^\.SS "warden rules add"$/m);
    assert.match(man1, /Examples:/);
    const man8 = gunzipSync(readFileSync(join(scratch, 'usr/share/man/man8/wardend.8.gz'))).toString();
    assert.match(man8, /^\.TH WARDEND 8 /);
    assert.match(man8, /--log-format/);
    assert.match(
      readFileSync(join(scratch, 'usr/share/bash-completion/completions/warden'), 'utf8'),
      /complete .*-F _warden warden/,
    );
    assert.ok(existsSync(join(scratch, 'usr/share/zsh/vendor-completions/_warden')));
    assert.ok(existsSync(join(scratch, 'usr/share/fish/vendor_completions.d/warden.fish')));
  });

  test('the installed warden and wardend run from the scratch root with the host node', () => {
    const lib = join(scratch, 'usr/lib/warden');
    const run = (part: string, ...args: string[]) =>
      execFileSync(process.execPath, [join(lib, 'dist/src', part, 'bin.js'), ...args], { encoding: 'utf8' });
    assert.equal(run('console', '--version').trim(), '0.1.0');
    assert.equal(run('engine', '--version').trim(), '0.1.0');
    // The packaged addon loads (from the package's build/Release, not this checkout's).
    const native = join(lib, 'dist/src/kernel/native.js');
    const loaded = execFileSync(
      process.execPath,
      [
        '--input-type=module',
        '-e',
        `const m = await import(${JSON.stringify(native)}); console.log(m.ADDON_PATH, m.nativeAvailable());`,
      ],
      { encoding: 'utf8' },
    ).trim();
    assert.equal(loaded, `${join(lib, 'build/Release/warden_kernel.node')} true`);
  });

  test('the installed engine starts (its log store is the packaged better-sqlite3) and stops on SIGTERM', async () => {
    const state = join(dir, 'state');
    const engine = spawn(
      process.execPath,
      [
        join(scratch, 'usr/lib/warden/dist/src/engine/bin.js'),
        'run',
        '--no-kernel',
        '--port',
        '0',
        '--config-dir',
        join(dir, 'etc'),
        '--state-dir',
        state,
      ],
      { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, WARDEN_LOG_FORMAT: 'json' } },
    );
    let out = '';
    engine.stdout.on('data', (d) => (out += d));
    engine.stderr.on('data', (d) => (out += d));
    const exited = new Promise<number | null>((r) => engine.on('close', (code) => r(code)));
    const end = Date.now() + 20_000;
    while (!out.includes('connect a console on this host') && Date.now() < end && engine.exitCode === null)
      await new Promise((r) => setTimeout(r, 50));
    assert.match(out, /listening on port \d+/, out);
    assert.doesNotMatch(out, /log store unusable/, 'SQLite works from the package');
    assert.ok(existsSync(join(state, 'logs.db')));
    const maps = readFileSync(`/proc/${engine.pid}/maps`, 'utf8');
    assert.match(
      maps,
      new RegExp(`${scratch}/usr/lib/warden/node_modules/better-sqlite3/build/Release/better_sqlite3\\.node`),
    );
    engine.kill('SIGTERM');
    assert.equal(await exited, 0);
  });

  test('dpkg removes it again', () => {
    dpkg('-r', 'warden');
    assert.ok(!existsSync(join(scratch, 'usr/bin/warden')));
    assert.ok(!existsSync(join(scratch, 'usr/lib/warden/dist')));
  });
});
