/**
 * Confirmed apply across an engine restart, with the real wardend (unprivileged): a remote console applies a
 * deny-all with confirm and never confirms; the engine is killed (-9) inside the confirmation window. Past its
 * deadline on restart the change is rolled back at once; not yet due, it is re-armed and rolled back on time.
 * Either way the console reconnects and finds the configuration from before the deny-all.
 */
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { networkInterfaces, tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { UserStore } from '../../src/admin/auth/users.js';
import { EngineClient } from '../../src/client/engine-client.js';
import { Methods } from '../../src/protocol/methods.js';
import { NODE, WARDEND } from '../kernel/wardend.js';

/** An address of this host that is not loopback: a console calling from it is remote to the engine. */
const hostAddress = Object.values(networkInterfaces())
  .flat()
  .find((a) => a && !a.internal && a.family === 'IPv4')?.address;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Waits until `ok` holds (a loaded machine is slow to restart and fire timers). */
async function until(ok: () => Promise<boolean>, ms = 5000): Promise<void> {
  const end = Date.now() + ms;
  while (!(await ok())) {
    assert.ok(Date.now() < end, 'timed out');
    await sleep(50);
  }
}
const denyAll = { name: 'deny-all', action: 'deny', direction: 'both' };

test('a remote deny-all applied with confirmation and never confirmed is rolled back, across a kill -9, and the console reconnects', {
  skip: hostAddress === undefined ? 'this host has no non-loopback IPv4 address' : false,
}, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'warden-confirm-restart-'));
  const configDir = join(dir, 'etc');
  mkdirSync(configDir);
  writeFileSync(join(configDir, 'settings.yaml'), 'remoteAdministration:\n  enabled: true\n');
  const users = await UserStore.open(join(configDir, 'users.json'));
  await users.add('alice', 'administrator', 'correct horse battery');
  let engine: ChildProcess | undefined;
  const start = async () => {
    const args = ['run', '--no-kernel', '--config-dir', configDir, '--state-dir', join(dir, 'state')];
    const child = spawn(NODE, [WARDEND, ...args, '--port', '0'], { stdio: ['ignore', 'pipe', 'pipe'] });
    engine = child;
    let out = '';
    child.stdout!.on('data', (d) => (out += d));
    child.stderr!.on('data', (d) => (out += d));
    const end = Date.now() + 10_000;
    for (;;) {
      const m = /listening on port (\d+)/.exec(out);
      if (m) return Number(m[1]);
      if (Date.now() > end || child.exitCode !== null) throw new Error(`wardend did not start: ${out}`);
      await sleep(10);
    }
  };
  const kill9 = async () => {
    const child = engine!;
    const exited = new Promise((r) => child.once('exit', r));
    child.kill('SIGKILL');
    await exited;
  };
  const remoteConsole = async (port: number) => {
    const c = await EngineClient.connect({
      host: hostAddress!,
      port,
      verifyFingerprint: async () => {},
      timeoutMs: 5000,
    });
    await c.login({ user: 'alice', password: 'correct horse battery' });
    assert.notEqual((await c.call(Methods.whoami, {})).remoteAddress.replace('::ffff:', ''), '127.0.0.1');
    return c;
  };
  const ruleNames = async (c: EngineClient) =>
    (await c.call(Methods.rulesList, { internal: false })).rules.map((r) => r.name);
  try {
    // Past due on restart: rolled back at once.
    let c = await remoteConsole(await start());
    const first = await c.call(Methods.rulesAdd, { rule: denyAll, confirm: { seconds: 1 } });
    c.close();
    await kill9();
    await sleep(1200);
    c = await remoteConsole(await start());
    await until(async () => (await ruleNames(c)).length === 0); // undone at once on start
    const [newest] = (await c.call(Methods.configHistory, {})).versions;
    assert.deepEqual(
      [newest!.what, newest!.restores, newest!.source],
      ['rollback', first.pending!.previous, 'confirm timeout'],
    );

    // Not due yet on restart: re-armed, rolled back at its deadline.
    const second = await c.call(Methods.rulesAdd, { rule: denyAll, confirm: { seconds: 8 } });
    c.close();
    await kill9();
    c = await remoteConsole(await start());
    assert.deepEqual(await ruleNames(c), ['deny-all'], 'still on probation');
    const { pending } = await c.call(Methods.configHistory, {});
    assert.deepEqual(pending, [second.pending]);
    await until(async () => (await ruleNames(c)).length === 0, 12_000); // at its deadline
    assert.ok(Date.now() >= Date.parse(second.pending!.deadline), 'not before its deadline');
    assert.deepEqual((await c.call(Methods.configHistory, {})).pending, []);
    c.close();
  } finally {
    if (engine && engine.exitCode === null && engine.signalCode === null) await kill9();
    rmSync(dir, { recursive: true, force: true });
  }
});
