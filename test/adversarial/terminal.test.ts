/**
 * A local program tries to drive the administrator's terminal (issue 11, item 14a): it posts a
 * pop-up report (any local user may) whose reason holds `\r\x1b[2K`, a fake "ALLOW ... sshd" line
 * and `\x1b[8m` (hide what follows) to a real engine; `warden logs`, the real CLI, prints it.
 * The controls must arrive as visible escapes, never raw, in text and in --json output.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { Engine } from '../../src/engine/daemon.js';
import { repoRoot } from '../repo-root.js';

const bin = join(repoRoot(import.meta.url), 'dist/src/console/bin.js');
const FAKE =
  '2026-12-06T10:00:00.000Z  #1  connection  ALLOW  /usr/sbin/sshd  10.0.0.1:22 <- 203.0.113.9:4000';
const REASON = `opened without a click\r\x1b[2K${FAKE}\x1b[8m hidden \x9b31m\u202eevil`;

/** Any raw control character a terminal would obey (newline and tab excepted). */
// biome-ignore lint/suspicious/noControlCharactersInRegex: the attack is control characters.
const RAW_CONTROL = /[\x00-\x08\x0b-\x1f\x7f-\x9f\u202e]/;

async function postReport(port: number, report: Record<string, unknown>): Promise<Record<string, unknown>> {
  const socket = net.connect({ port, host: '127.0.0.1' });
  socket.on('error', () => {});
  let data = '';
  socket.on('data', (d) => {
    data += d.toString();
  });
  await new Promise<void>((resolve, reject) => {
    socket.once('connect', resolve);
    socket.once('error', reject);
  });
  socket.write(`${JSON.stringify(report)}\n`);
  const deadline = Date.now() + 5000;
  while (!data.includes('\n') && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
  socket.destroy();
  return JSON.parse(data.split('\n')[0]!);
}

test('a pop-up report with terminal controls is printed by warden logs as visible escapes', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'warden-adv-terminal-'));
  const stateDir = join(dir, 'state');
  const engine = await Engine.start({
    configDir: join(dir, 'etc'),
    stateDir,
    port: 0,
    bindAddress: '127.0.0.1',
    services: { popupPort: 0, updateFirstDelayMs: 3_600_000 },
  });
  const warden = (args: string[]) =>
    new Promise<{ code: number; stdout: string; stderr: string }>((resolve) => {
      execFile(
        process.execPath,
        [bin, ...args, '--engine', `127.0.0.1:${engine.server.port}`, '--local'],
        {
          env: {
            PATH: process.env.PATH ?? '',
            XDG_CONFIG_HOME: join(dir, 'home'),
            WARDEN_LOCAL_TOKEN_FILE: engine.localTokenPath,
            NO_COLOR: '1',
          },
        },
        (error, stdout, stderr) => resolve({ code: error ? Number(error.code ?? 1) : 0, stdout, stderr }),
      );
    });
  try {
    const answer = await postReport(engine.services.popupPort()!, {
      application: '/usr/bin/firefox',
      host: 'ads.example',
      reason: REASON,
    });
    assert.equal(answer.ok, true, JSON.stringify(answer));

    const text = await warden(['logs', '--kind', 'security', '--text', 'blocked pop-up']);
    assert.equal(text.code, 0, text.stderr);
    const line = text.stdout.split('\n').find((l) => l.includes('blocked pop-up'));
    assert.ok(line !== undefined, text.stdout);
    assert.doesNotMatch(text.stdout, RAW_CONTROL, 'no raw control character reaches the terminal');
    assert.ok(line.includes('\\x0d\\x1b[2K'), line);
    assert.ok(line.includes('\\x1b[8m hidden \\u009b31m\\u202eevil'), line);
    // The fake line is on the same printed line as the report, after the visible escapes.
    assert.ok(line.indexOf('blocked pop-up') < line.indexOf('ALLOW  /usr/sbin/sshd'));

    const json = await warden(['logs', '--kind', 'security', '--text', 'blocked pop-up', '--json']);
    assert.equal(json.code, 0, json.stderr);
    assert.doesNotMatch(json.stdout, RAW_CONTROL);
    const item = JSON.parse(json.stdout.trim().split('\n').at(-1)!);
    assert.ok((item.message as string).includes(REASON), 'the JSON output is still the exact message');
  } finally {
    await engine.stop();
    rmSync(dir, { recursive: true, force: true });
  }
});
