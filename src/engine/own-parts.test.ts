import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, readFileSync, readlinkSync, realpathSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { environmentIsClean, OwnParts, plainScriptCommandLine, trackAssistant } from './own-parts.js';

const dir = realpathSync(mkdtempSync(join(tmpdir(), 'warden-own-')));
const consoleScript = join(dir, 'console.js');
writeFileSync(consoleScript, 'setInterval(() => {}, 1000);\n');
writeFileSync(join(dir, 'pre.cjs'), '');
writeFileSync(join(dir, 'engine.js'), 'setInterval(() => {}, 1000);\n');
const node = realpathSync(process.execPath);
const parts = new OwnParts({
  executables: { engine: join(dir, 'engine.js'), console: consoleScript, assistant: join(dir, 'assist.js') },
  node,
});
const children: ChildProcess[] = [];
after(() => {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  rmSync(dir, { recursive: true, force: true });
});

/** Starts node with `args` (and `env` added) and returns what /proc says about it. */
async function run(args: string[], env: Record<string, string> = {}) {
  const child = spawn(process.execPath, args, { env: { ...process.env, ...env }, stdio: 'ignore' });
  children.push(child);
  await new Promise((r) => setTimeout(r, 150)); // exec done, command line in place
  const pid = child.pid!;
  const commandLine = readFileSync(`/proc/${pid}/cmdline`, 'utf8').replace(/\0$/, '').split('\0');
  return {
    child,
    facts: { pid, executable: readlinkSync(`/proc/${pid}/exe`), script: consoleScript, commandLine },
  };
}

test('the engine is its own pid, whatever the command line says', async () => {
  assert.equal(await parts.partOf({ pid: process.pid }), 'engine');
  const { facts } = await run([join(dir, 'engine.js')]);
  assert.equal(await parts.partOf({ ...facts, script: join(dir, 'engine.js') }), null);
});

test('the assistant is a tracked child while it runs, not after', async () => {
  const { child, facts } = await run([consoleScript], { NODE_OPTIONS: '--no-warnings' });
  assert.equal(await parts.partOf(facts), null, 'untracked, and not the console (NODE_OPTIONS)');
  trackAssistant(child);
  assert.equal(await parts.partOf(facts), 'assistant');
  child.kill('SIGKILL');
  await once(child, 'exit');
  assert.equal(await parts.partOf(facts), null, 'its pid may be reused now');
});

test('the console: real node, the console script, no code-loading option or environment', async () => {
  assert.equal(await parts.partOf((await run([consoleScript, 'status'])).facts), 'console');
  assert.equal(await parts.partOf((await run(['--enable-source-maps', consoleScript])).facts), 'console');
  for (const [args, env] of [
    [['-r', join(dir, 'pre.cjs'), consoleScript], {}],
    [['--import', join(dir, 'pre.cjs'), consoleScript], {}],
    [['--inspect=0', consoleScript], {}],
    [[consoleScript], { NODE_OPTIONS: `--require ${join(dir, 'pre.cjs')}` }],
    [[consoleScript], { LD_PRELOAD: '/nonexistent.so' }],
    [[consoleScript], { OPENSSL_CONF: join(dir, 'pre.cjs') }],
  ] as [string[], Record<string, string>][]) {
    const { facts } = await run(args, env);
    assert.equal(await parts.partOf(facts), null, `${JSON.stringify(env)} node ${args.join(' ')}`);
  }
  const { facts } = await run([consoleScript]);
  assert.equal(await parts.partOf({ ...facts, executable: '/tmp/node' }), null, 'another node binary');
  assert.equal(await parts.partOf({ ...facts, script: '/tmp/console.js' }), null, 'another script');
  const stale = { ...facts, commandLine: [...facts.commandLine, 'status'] };
  assert.equal(
    await parts.partOf(stale),
    null,
    'a command line that is not the one the process has now (exec)',
  );
});

test('command lines and environments', () => {
  assert.equal(
    plainScriptCommandLine(['node', '/x/bin.js', '-r', 'y']),
    true,
    'options after the script are its own',
  );
  assert.equal(plainScriptCommandLine(['node', '--no-warnings', '--', '/x/bin.js']), true);
  assert.equal(plainScriptCommandLine(['node', '--require=/tmp/x', '/x/bin.js']), false);
  assert.equal(plainScriptCommandLine(['node', '-e', 'x']), false);
  assert.equal(plainScriptCommandLine(['node']), false);
  assert.equal(environmentIsClean(Buffer.from('HOME=/root\0PATH=/bin\0LD=x\0')), true);
  assert.equal(environmentIsClean(Buffer.from('HOME=/root\0LD_AUDIT=/x.so\0')), false);
  assert.equal(environmentIsClean(Buffer.from('NODE_OPTIONS=\0')), false, 'even empty: the process chose it');
});
