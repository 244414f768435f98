/**
 * Crash safety of the configuration: kill -9 during configuration writes, again and again. The configuration
 * always loads, history versions are never torn, and no change acknowledged before the kill is lost.
 * Most kills hit a small writer process that drives FileConfigStore (fast to start); some hit the real
 * wardend (unprivileged) while a console streams rules.add over the protocol.
 */
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { FileConfigStore } from '../../src/admin/config-store.js';
import { EngineClient } from '../../src/client/engine-client.js';
import { parsePolicyText } from '../../src/policy/index.js';
import { Methods } from '../../src/protocol/methods.js';
import { parseSettingsText } from '../../src/settings/index.js';
import { NODE, WARDEND } from '../kernel/wardend.js';
import { repoRoot } from '../repo-root.js';
import { configCounters } from './config-counters.js';

const WRITER = join(repoRoot(import.meta.url), 'dist/test/integration/fixtures/config-writer.js');
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Resolves with the output once `pattern` appears in it; rejects when the process ends first. */
function waitFor(child: ChildProcess, out: () => string, pattern: RegExp): Promise<RegExpExecArray> {
  return new Promise((resolve, reject) => {
    const end = Date.now() + 10_000;
    const poll = () => {
      const m = pattern.exec(out());
      if (m) return resolve(m);
      if (child.exitCode !== null || Date.now() > end) return reject(new Error(`no ${pattern}: ${out()}`));
      setTimeout(poll, 5);
    };
    poll();
  });
}

async function kill9(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((r) => child.once('exit', r));
  child.kill('SIGKILL');
  await exited;
}

/** Every version file parses whole, versions are consecutive, nothing temporary is left behind. */
function assertHistoryWhole(dir: string): number {
  if (!existsSync(join(dir, 'history'))) return 0; // killed before the first change
  const names = readdirSync(join(dir, 'history'));
  const numbers = names
    .filter((n) => /^\d+\.json$/.test(n))
    .map((n) => {
      const v = JSON.parse(readFileSync(join(dir, 'history', n), 'utf8'));
      parsePolicyText(v.policy, { file: n });
      parseSettingsText(v.settings, { file: n });
      assert.equal(`${String(v.version).padStart(6, '0')}.json`, n);
      return v.version as number;
    })
    .sort((a, b) => a - b);
  const expected = numbers.map((_, i) => numbers[0]! + i);
  assert.deepEqual(numbers, expected, 'versions are consecutive');
  return numbers.at(-1) ?? 0;
}

test('kill -9 during configuration writes, 50 times: it always loads and no acknowledged change is lost', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'warden-crash-'));
  const ahead: { child: ChildProcess; out: () => string }[] = [];
  try {
    let acked = 0;
    let before = 514; // syslog.port before any change
    // Writers load their modules ahead (the slow part) and wait for "go" before touching the directory.
    const startWriter = () => {
      const child = spawn(NODE, [WRITER, dir, '10'], { stdio: ['pipe', 'pipe', 'pipe'] });
      let out = '';
      child.stdout!.on('data', (d) => (out += d));
      child.stderr!.on('data', (d) => (out += d));
      return { child, out: () => out };
    };
    ahead.push(startWriter(), startWriter());
    for (let i = 0; i < 50; i++) {
      const { child, out: output } = ahead.shift()!;
      if (i < 48) ahead.push(startWriter());
      await waitFor(child, output, /^loaded$/m);
      child.stdin!.write('go\n');
      await waitFor(child, output, /^ready$/m);
      // A random moment while writes go on: after 1-4 acknowledged changes, plus up to 15 ms (the next write).
      const acksBeforeKill = 1 + Math.floor(Math.random() * 4);
      await waitFor(child, output, new RegExp(`(^ack \\d+$[^]*){${acksBeforeKill}}`, 'm'));
      await sleep(Math.random() * 15);
      await kill9(child);
      const out = output();
      const acks = [...out.matchAll(/^ack (\d+)$/gm)].map((m) => Number(m[1]));
      acked += acks.length;

      const newest = assertHistoryWhole(join(dir));
      const store = await FileConfigStore.open(dir, { keepVersions: 10 });
      const found = configCounters(store.policy(), store.settings());
      const last = (parity: number) => Math.max(0, ...acks.filter((k) => k % 2 === parity));
      assert.ok(found.policy >= last(0), `acknowledged policy change ${last(0)} is lost: ${found.policy}`);
      assert.ok(
        found.settings >= last(1),
        `acknowledged settings change ${last(1)} is lost: ${found.settings}`,
      );
      // At most the one change in flight when the kill came is in force without its acknowledgement.
      const limit = Math.max(before, ...acks) + 1;
      assert.ok(found.policy <= limit && found.settings <= limit, JSON.stringify({ found, limit }));
      before = Math.max(found.policy, found.settings);
      // History ends with the configuration in force, as a version of its own when the kill came between.
      const top = store.history()[0];
      if (top === undefined) continue;
      assert.ok(top.version === newest || top.version === newest + 1);
      const kept = await store.version(top.version);
      // A file not written yet means its defaults (the first changes may all have been to the other file).
      const inForce = (name: string, parse: (text: string) => unknown, kept: string) => {
        const path = join(dir, name);
        if (existsSync(path)) assert.equal(kept, readFileSync(path, 'utf8'), name);
        else
          assert.deepEqual(
            parse(kept),
            parse(name === 'policy.yaml' ? 'rules: []' : '{}'),
            `${name} (defaults)`,
          );
      };
      inForce('policy.yaml', (t) => parsePolicyText(t), kept.policy);
      inForce('settings.yaml', (t) => parseSettingsText(t), kept.settings);
      assert.deepEqual(
        [...readdirSync(dir), ...readdirSync(join(dir, 'history'))].filter((n) => n.endsWith('.tmp')),
        [],
      );
    }
    assert.ok(acked >= 50, `the writers acknowledged only ${acked} changes`);
  } finally {
    for (const w of ahead) await kill9(w.child);
    rmSync(dir, { recursive: true, force: true });
  }
});

test('kill -9 of the real engine while a console adds rules: every acknowledged rule is there on restart', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'warden-crash-engine-'));
  const configDir = join(dir, 'etc');
  const stateDir = join(dir, 'state');
  const acked: string[] = [];
  try {
    for (let i = 0; i < 5; i++) {
      const args = ['run', '--no-kernel', '--config-dir', configDir, '--state-dir', stateDir];
      const child = spawn(NODE, [WARDEND, ...args, '--port', '0', '--bind', '127.0.0.1'], {
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      let out = '';
      child.stdout!.on('data', (d) => (out += d));
      child.stderr!.on('data', (d) => (out += d));
      try {
        const port = Number((await waitFor(child, () => out, /listening on port (\d+)/))[1]);
        const client = await EngineClient.connect({
          host: '127.0.0.1',
          port,
          verifyFingerprint: async () => {},
          timeoutMs: 5000,
        });
        await client.login({ localToken: readFileSync(join(stateDir, 'local-token'), 'utf8').trim() });
        const killAt = Date.now() + 100 + Math.random() * 200;
        const killed = sleep(killAt - Date.now()).then(() => kill9(child));
        for (let n = 0; Date.now() < killAt; n++) {
          const name = `d${i}-${n}`;
          const rule = { name, direction: 'outgoing', protocol: 'tcp', remotePorts: '443', action: 'allow' };
          try {
            await client.call(Methods.rulesAdd, { rule });
            acked.push(name);
          } catch {
            break; // the engine is gone: this change was never acknowledged
          }
        }
        await killed;
        client.close();
      } finally {
        await kill9(child);
      }
      const store = await FileConfigStore.open(configDir);
      const names = new Set(store.policy().rules.map((r) => r.name));
      const lost = acked.filter((n) => !names.has(n));
      assert.deepEqual(lost, [], `acknowledged rules lost after kill ${i + 1}`);
    }
    assert.ok(acked.length >= 10, `only ${acked.length} rules were acknowledged`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
