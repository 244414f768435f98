/**
 * A refused SIGHUP reload: the real wardend (unprivileged), its real files hand-edited with two errors,
 * a real SIGHUP. The engine log names every problem (file, line, field, message, did-you-mean), a system
 * log item says the same so `warden logs` shows it, and the last good configuration stays in force.
 */
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { EngineClient } from '../../src/client/engine-client.js';
import { Methods } from '../../src/protocol/methods.js';
import { NODE, WARDEND } from '../kernel/wardend.js';

const GOOD = `version: 1
mode: enforce
rules:
  - name: web
    direction: outgoing
    protocol: tcp
    remotePorts: 443
    action: allow
`;
// Line 6: a misspelt field name; line 8: an action that does not exist.
const BAD = `version: 1
mode: enforce
rules:
  - name: web
    direction: outgoing
    protcol: tcp
    remotePorts: 443
    action: permit
`;

async function until(what: string, ok: () => boolean): Promise<void> {
  const end = Date.now() + 15_000;
  while (!ok()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

describe('a refused SIGHUP reload names its problems and becomes a log item', () => {
  let dir: string;
  let child: ChildProcess;
  let out = '';
  let client: EngineClient;
  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'warden-reload-'));
    mkdirSync(join(dir, 'etc'));
    writeFileSync(join(dir, 'etc/policy.yaml'), GOOD);
    const args = ['run', '--no-kernel', '--config-dir', join(dir, 'etc'), '--state-dir', join(dir, 'state')];
    child = spawn(NODE, [WARDEND, ...args, '--port', '0', '--bind', '127.0.0.1'], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    child.stdout!.on('data', (d) => (out += d));
    child.stderr!.on('data', (d) => (out += d));
    await until('the engine to listen', () => /listening on port (\d+)/.test(out) || child.exitCode !== null);
    const port = Number(/listening on port (\d+)/.exec(out)?.[1]);
    client = await EngineClient.connect({
      host: '127.0.0.1',
      port,
      verifyFingerprint: async () => {},
      timeoutMs: 5000,
    });
    await client.login({ localToken: readFileSync(join(dir, 'state/local-token'), 'utf8').trim() });
  });
  after(async () => {
    client?.close();
    if (child?.exitCode === null) {
      const exited = new Promise((r) => child.once('exit', r));
      child.kill('SIGTERM');
      await exited;
    }
    rmSync(dir, { recursive: true, force: true });
  });

  test('both problems are named in the engine log and in logs.query; the good policy stays', async () => {
    writeFileSync(join(dir, 'etc/policy.yaml'), BAD);
    const from = out.length;
    child.kill('SIGHUP');
    await until('the refusal in the engine log', () => out.slice(from).includes('reload refused'));
    await until('the whole line', () => out.slice(from).split('reload refused')[1]!.includes('\n'));
    const line = out
      .slice(from)
      .split('\n')
      .find((l) => l.includes('reload refused'))!;
    assert.match(line, /2 problems: \(1\) .* \(2\) /);
    assert.match(line, /policy\.yaml:6:\d+: rules\[0\]/);
    assert.match(line, /protcol/);
    assert.match(line, /did you mean \\?"protocol/);
    assert.match(line, /policy\.yaml:8:\d+: rules\[0\]\.action/);
    assert.doesNotMatch(line, /is invalid: 2 problems$/);

    const logs = await client.call(Methods.logsQuery, { kind: 'system', text: 'reload refused', limit: 100 });
    assert.equal(logs.items.length, 1, JSON.stringify(logs.items));
    const message = logs.items[0]!.message ?? '';
    assert.match(message, /policy\.yaml:6:\d+: .*protcol/);
    assert.match(message, /policy\.yaml:8:\d+: rules\[0\]\.action/);

    const rules = await client.call(Methods.rulesList, { internal: false });
    assert.deepEqual(
      rules.rules.map((r) => [r.name, r.protocol, r.action]),
      [['web', 'tcp', 'allow']],
    );
    assert.equal(child.exitCode, null, 'the engine keeps running');

    // Fixed by hand: the next SIGHUP takes it, and no new refusal is logged.
    writeFileSync(join(dir, 'etc/policy.yaml'), GOOD.replace('443', '8443'));
    const again = out.length;
    child.kill('SIGHUP');
    await until('the reload', () => out.slice(again).includes('reloaded'));
    const after = await client.call(Methods.rulesList, { internal: false });
    assert.deepEqual(after.rules[0]?.remotePorts, 8443);
    const refused = await client.call(Methods.logsQuery, {
      kind: 'system',
      text: 'reload refused',
      limit: 100,
    });
    assert.equal(refused.items.length, 1);
  });
});
