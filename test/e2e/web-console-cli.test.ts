/** `warden console` as a user runs it: prints a 127.0.0.1 URL with a token, refuses requests without it, stops on SIGTERM. */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { repoRoot } from '../repo-root.js';

const bin = join(repoRoot(import.meta.url), 'dist/src/console/bin.js');

test('warden console prints its URL with a token and serves the page only with it', async () => {
  const home = mkdtempSync(join(tmpdir(), 'warden-console-cli-'));
  const child = spawn(process.execPath, [bin, 'console'], {
    env: { PATH: process.env.PATH ?? '', XDG_CONFIG_HOME: home },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  try {
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    const end = Date.now() + 10_000;
    while (!/http:\/\/127\.0\.0\.1:\d+\/\?token=[0-9a-f]{64}/.test(out)) {
      assert.ok(Date.now() < end && child.exitCode === null, `no URL printed: ${out}`);
      await new Promise((r) => setTimeout(r, 20));
    }
    const url = new URL(/http:\/\/\S+/.exec(out)![0]);
    assert.equal(url.hostname, '127.0.0.1');
    const bare = await fetch(`${url.origin}/`, { redirect: 'manual' });
    assert.equal(bare.status, 401);
    const withToken = await fetch(url, { redirect: 'manual' });
    assert.equal(withToken.status, 302);
    const cookie = withToken.headers.get('set-cookie')!.split(';')[0]!;
    const page = await fetch(`${url.origin}/`, { headers: { cookie } });
    assert.equal(page.status, 200);
    assert.match(await page.text(), /<div id="app">/);
    child.kill('SIGTERM');
    const [code] = await once(child, 'exit');
    assert.equal(code, 0);
  } finally {
    if (child.exitCode === null) child.kill('SIGKILL');
    rmSync(home, { recursive: true, force: true });
  }
});
