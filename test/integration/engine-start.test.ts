/**
 * Starting `wardend run` directly with node (issue 13): the greeting is true to the files on disk
 * (no policy.yaml yet: it says the defaults are in force; once written, it names it), the log lines
 * are human with --log-format human and JSON under systemd (JOURNAL_STREAM) or in a pipe, and SIGINT
 * and SIGTERM each stop the engine with exit status 0. Unprivileged (--no-kernel), on a free port.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { repoRoot } from '../repo-root.js';

const bin = join(repoRoot(import.meta.url), 'dist/src/engine/bin.js');
const dir = mkdtempSync(join(tmpdir(), 'warden-engine-start-'));

/** Spawns `wardend run --no-kernel` on any port with its configuration and state in DIR/name. */
function spawnEngine(name: string, args: string[], env: Record<string, string>) {
  return spawn(
    process.execPath,
    [
      bin,
      'run',
      '--no-kernel',
      '--port',
      '0',
      '--config-dir',
      join(dir, name, 'etc'),
      '--state-dir',
      join(dir, name, 'state'),
      ...args,
    ],
    { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...env } },
  );
}

async function startAndStop(
  name: string,
  signal: NodeJS.Signals,
  args: string[] = [],
  env: Record<string, string> = {},
): Promise<{ stdout: string; stderr: string; code: number | null }> {
  const child = spawnEngine(name, args, { WARDEN_LOG_FORMAT: '', ...env });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d) => (stdout += d));
  child.stderr.on('data', (d) => (stderr += d));
  const exited = new Promise<number | null>((r) => child.on('close', (code) => r(code)));
  const end = Date.now() + 20_000;
  while (!stdout.includes('stop with Ctrl-C') && child.exitCode === null && Date.now() < end)
    await new Promise((r) => setTimeout(r, 25));
  assert.match(stdout, /stop with Ctrl-C/, `no greeting:\n${stdout}\n${stderr}`);
  child.kill(signal);
  const code = await exited; // before reading stderr: the stop lines come last
  return { stdout, stderr, code };
}

describe('wardend run, started directly', () => {
  after(() => rmSync(dir, { recursive: true, force: true }));

  test('a new installation: the greeting says the defaults are in force, no file it names is missing; SIGINT stops it', async () => {
    const r = await startAndStop('fresh', 'SIGINT', ['--log-format', 'human']);
    const etc = join(dir, 'fresh', 'etc');
    assert.match(
      r.stdout,
      new RegExp(
        `^policy: the built-in defaults \\(no ${etc}/policy\\.yaml yet; written on the first change\\): 0 rules, mode enforce`,
        'm',
      ),
    );
    assert.match(
      r.stdout,
      new RegExp(`^settings: the built-in defaults \\(no ${etc}/settings\\.yaml yet`, 'm'),
    );
    assert.match(r.stdout, new RegExp(`^state ${join(dir, 'fresh', 'state')} `, 'm'));
    assert.equal(r.code, 0, r.stderr);
    // Human log lines: no JSON object among them.
    const lines = r.stderr.trim().split('\n');
    assert.ok(
      lines.some((l) => /^\d\d:\d\d:\d\d info {2}engine started {2}port=\d+ fingerprint=SHA256:/.test(l)),
      r.stderr,
    );
    assert.ok(
      lines.some((l) => /^\d\d:\d\d:\d\d info {2}SIGINT: stopping$/.test(l)),
      r.stderr,
    );
    assert.ok(
      lines.every((l) => !l.startsWith('{')),
      r.stderr,
    );
  });

  test('with a policy.yaml: the greeting names it; under systemd the log is JSON; SIGTERM stops it', async () => {
    const etc = join(dir, 'written', 'etc');
    mkdirSync(etc, { recursive: true });
    writeFileSync(
      join(etc, 'policy.yaml'),
      'mode: enforce\nrules:\n  - { name: ssh, direction: incoming, protocol: tcp, localPorts: 22, action: allow }\n',
    );
    const r = await startAndStop('written', 'SIGTERM', [], { JOURNAL_STREAM: '8:12345' });
    assert.match(r.stdout, new RegExp(`^policy ${etc}/policy\\.yaml: 1 rules, mode enforce`, 'm'));
    assert.equal(r.code, 0, r.stderr);
    const items = r.stderr
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { level: string; message: string });
    assert.ok(items.some((i) => i.message === 'engine started'));
    assert.ok(items.some((i) => i.message === 'SIGTERM: stopping'));
  });

  test('a SIGINT sent the moment the greeting starts still stops the engine cleanly (exit 0)', async () => {
    for (let round = 1; round <= 3; round++) {
      const child = spawnEngine('early', [], { WARDEN_LOG_FORMAT: 'json' });
      let stderr = '';
      child.stderr.on('data', (d) => (stderr += d));
      child.stdout.once('data', () => child.kill('SIGINT'));
      const [code, signal] = await new Promise<[number | null, string | null]>((r) =>
        child.on('close', (c, s) => r([c, s])),
      );
      assert.deepEqual([code, signal], [0, null], `round ${round}: killed instead of stopped:\n${stderr}`);
      assert.match(stderr, /"message":"engine stopped"/);
    }
  });

  test('a bad --log-format is a usage error (exit 2) naming the choices', async () => {
    const child = spawn(
      process.execPath,
      [
        bin,
        'run',
        '--no-kernel',
        '--log-format',
        'xml',
        '--config-dir',
        join(dir, 'bad', 'etc'),
        '--state-dir',
        join(dir, 'bad', 'state'),
      ],
      {
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    let stderr = '';
    child.stderr.on('data', (d) => (stderr += d));
    const code = await new Promise<number | null>((r) => child.on('close', (c) => r(c)));
    assert.equal(code, 2);
    assert.match(stderr, /--log-format "xml" is not a log format/);
    assert.match(stderr, /human, json or auto/);
  });
});
