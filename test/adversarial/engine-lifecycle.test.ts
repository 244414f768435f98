/**
 * Stopping the engine (issue 11 items 6 and 7): SIGTERM while consoles follow the log over UDP and
 * over TCP ends with exit status 0 and no crash report; SIGTERM, SIGINT or SIGKILL to the README's
 * `npm start` (the real npm, the real scripts/start.sh, enforcing in a namespace) leaves no engine
 * running.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import type { LogItem } from '../../src/protocol/log-item.js';
import { createNetnsPair, kernelTestsUnavailable } from '../kernel/netns.js';
import { repoRoot } from '../repo-root.js';
import { startEngine } from './engine-process.js';

const root = repoRoot(import.meta.url);

/** Pids of engines started with this configuration directory. */
function enginePids(configDir: string): number[] {
  const pids: number[] = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const cmd = readFileSync(`/proc/${name}/cmdline`, 'utf8').split('\0');
      if (cmd.some((a) => a.endsWith('engine/bin.js')) && cmd.includes(configDir)) pids.push(Number(name));
    } catch {
      // gone meanwhile
    }
  }
  return pids;
}

describe('the engine stops cleanly, and never outlives npm start', () => {
  test('SIGTERM while consoles follow the log over UDP and TCP: exit 0, no crash report (3 of 3)', async () => {
    for (let round = 1; round <= 3; round++) {
      const engine = await startEngine();
      try {
        const consoles = await Promise.all([engine.console(), engine.console(), engine.console()]);
        const seen: LogItem[][] = [[], [], []];
        await consoles[0]!.follow((items) => seen[0]!.push(...items), { udp: true });
        await consoles[1]!.follow((items) => seen[1]!.push(...items), { udp: false });
        await consoles[2]!.follow((items) => seen[2]!.push(...items), { udp: true });
        // Log items keep coming while the engine stops: each login is an audit item.
        const busy = setInterval(() => {
          engine.console().then(
            (c) => c.close(),
            () => {},
          );
        }, 20);
        await new Promise((r) => setTimeout(r, 700));
        const code = await engine.stop('SIGTERM');
        clearInterval(busy);
        for (const c of consoles) c.close();
        assert.equal(code, 0, `round ${round}: exit status ${code}:\n${engine.output()}`);
        assert.deepEqual(engine.crashReports(), [], `round ${round}: no crash report`);
        assert.doesNotMatch(engine.output(), /unhandled error|ERR_SOCKET_DGRAM_NOT_RUNNING/);
      } finally {
        await engine.stop('SIGKILL');
        rmSync(engine.dir, { recursive: true, force: true });
      }
    }
  });

  for (const signal of ['SIGTERM', 'SIGINT', 'SIGKILL'] as const) {
    test(`${signal} to \`npm start\` (enforcing, in a namespace) stops wardend: no orphan`, {
      skip: kernelTestsUnavailable(),
    }, async () => {
      const pair = createNetnsPair('npm');
      const dir = mkdtempSync(join(tmpdir(), 'warden-npm-'));
      const configDir = join(dir, 'etc');
      try {
        const npm = pair.spawn(
          pair.server,
          'npm',
          ['start', '--', '--config-dir', configDir, '--state-dir', join(dir, 'state')],
          { cwd: root, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, WARDEN_SKIP_SETUP: '1' } },
        );
        let out = '';
        npm.stdout!.on('data', (d) => (out += d));
        npm.stderr!.on('data', (d) => (out += d));
        const end = Date.now() + 20_000;
        while (!out.includes('enforcing: replies')) {
          if (Date.now() > end || npm.exitCode !== null) throw new Error(`npm start did not start: ${out}`);
          await new Promise((r) => setTimeout(r, 50));
        }
        assert.equal(enginePids(configDir).length, 1, 'one engine runs');
        npm.kill(signal);
        const stopBy = Date.now() + 10_000;
        while (enginePids(configDir).length > 0 && Date.now() < stopBy)
          await new Promise((r) => setTimeout(r, 100));
        const left = enginePids(configDir);
        for (const pid of left) process.kill(pid, 'SIGKILL');
        assert.deepEqual(left, [], `wardend still runs after ${signal} to npm start:\n${out}`);
      } finally {
        pair.close();
        rmSync(dir, { recursive: true, force: true });
      }
    });
  }
});
