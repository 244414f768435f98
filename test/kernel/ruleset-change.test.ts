/**
 * Rule changes as differences, with real packets between two throwaway namespaces: one rule added,
 * changed and removed goes to the kernel as one small transaction ('changed') that takes effect at
 * once and keeps the table, its hooks, the dynamic sets and the flood counters; a batch the kernel
 * refuses leaves the old table whole, and applyRuleset then loads the whole table; and wardend
 * applies changes this way, while after a restart it reconciles the kernel with the policy whatever
 * the table held meanwhile.
 */
import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { applyChange, applyRuleset, removeRuleset, verifyRuleset } from '../../src/kernel/nft.js';
import { compileRuleset } from '../../src/kernel/ruleset.js';
import { changeBatch } from '../../src/kernel/ruleset-diff.js';
import { compilePolicy, validatePolicy } from '../../src/policy/index.js';
import { NOW } from '../../src/policy/testing/arbitraries.js';
import { validateSettings } from '../../src/settings/index.js';
import {
  createNetnsPair,
  kernelTestsUnavailable,
  listenOn,
  type NetnsPair,
  SERVER_ADDR,
  tcpConnect,
} from './netns.js';
import { startWardend } from './wardend.js';

const PORTS = [8001, 8002, 8003, 8004, 8005, 8006];
const SESSION_MODULE = fileURLToPath(new URL('../../src/kernel/nft-session.js', import.meta.url));

/** The nft sessions (`nft -t -i`, nft-session.ts) running in the namespace at `netnsPath`. */
function sessionsIn(netnsPath: string): string[] {
  const netns = statSync(netnsPath).ino;
  return readdirSync('/proc')
    .filter((p) => /^\d+$/.test(p))
    .filter((p) => {
      try {
        const cmd = readFileSync(`/proc/${p}/cmdline`, 'utf8');
        return cmd === 'nft\0-t\0-i\0' && statSync(`/proc/${p}/ns/net`).ino === netns;
      } catch {
        return false;
      }
    });
}

type Rule = Record<string, unknown>;
const deny = (name: string, port: number | string, extra: Rule = {}): Rule => ({
  name,
  direction: 'outgoing',
  protocol: 'tcp',
  remotePorts: port,
  action: 'deny',
  ...extra,
});
const policyOf = (rules: Rule[]) => ({
  mode: 'enforce',
  defaults: { incoming: { action: 'deny', log: false }, outgoing: { action: 'allow', log: false } },
  rules,
});
/** Many rules of one shape, so the deny rules share sets whose elements a change edits. */
const BASE: Rule[] = [
  deny('d1', 8001),
  deny('d2', 8002, { remote: SERVER_ADDR }),
  deny('far', 9000, { remote: '10.9.0.1' }),
  deny('range', '8100-8200', { remote: '10.200.0.0/24' }),
];

function compile(rules: Rule[]) {
  const settings = validateSettings({});
  return compileRuleset({
    policy: compilePolicy(validatePolicy(policyOf(rules)), { settings }),
    settings,
    now: NOW,
  });
}

describe('rule changes in the kernel', { skip: kernelTestsUnavailable() }, () => {
  let pair: NetnsPair;
  const connect = (port: number) => tcpConnect(pair, pair.client, SERVER_ADDR, port, 400);
  const nft = (...args: string[]) => pair.run(pair.client, 'nft', args);
  const tableHandle = () =>
    /table inet warden \{ # handle (\d+)/.exec(nft('-a', 'list', 'table', 'inet', 'warden'))?.[1];

  before(async () => {
    pair = createNetnsPair('chg');
    await listenOn(pair, pair.server, PORTS);
  });
  after(() => pair?.close());

  test('one rule added, changed and removed: a small transaction, in force at once; table, dynamic sets and flood counters kept', async () => {
    const target = { netns: pair.path(pair.client) };
    try {
      const base = compile(BASE);
      await applyRuleset(base, target);
      assert.equal(connect(8003), 'connected');
      nft('add', 'element', 'inet', 'warden', 'udp_owner4', '{ 10.200.0.1 . 5000 . 10.200.0.2 . 53 . 0 }');
      nft('add', 'element', 'inet', 'warden', 'flood_out', '{ 65534 counter packets 7 bytes 420 }');
      const handle = tableHandle();

      const added = compile([...BASE, deny('d3', 8003)]);
      const batch = changeBatch(base.model, added.model);
      assert.ok(batch !== null && batch.stats.elementsAdded + batch.stats.chainsRewritten > 0);
      assert.ok(batch.text.length < 2000, `a one-rule change is small: ${batch.text}`);
      assert.equal(await applyRuleset(added, target, base), 'changed');
      assert.equal(connect(8003), 'timeout', 'the added rule is in force');

      const changed = compile([...BASE, deny('d3', 8004)]);
      assert.equal(await applyRuleset(changed, target, added), 'changed');
      assert.equal(connect(8003), 'connected', 'the changed rule no longer drops its old port');
      assert.equal(connect(8004), 'timeout', 'the changed rule drops its new port');

      const removed = compile(BASE.filter((r) => r.name !== 'd2'));
      assert.equal(await applyRuleset(removed, target, changed), 'changed');
      assert.equal(connect(8002), 'connected', 'the removed rule is gone');
      assert.equal(connect(8004), 'connected');
      assert.equal(connect(8001), 'timeout', 'the other rules stay');

      assert.equal(tableHandle(), handle, 'the table (and so its hooks) was replaced');
      assert.match(
        nft('list', 'set', 'inet', 'warden', 'udp_owner4'),
        /10\.200\.0\.1 \. 5000 \. 10\.200\.0\.2 \. 53 \. 0/,
      );
      assert.match(
        nft('list', 'set', 'inet', 'warden', 'flood_out'),
        /65534 counter packets 7 bytes 420/,
        'the flood counter was reset',
      );
      assert.deepEqual(await verifyRuleset(removed, target), { ok: true, problems: [] });
    } finally {
      await removeRuleset(target);
    }
  });

  test('a batch the kernel refuses leaves the old table whole; applyRuleset then loads the whole table', async () => {
    const target = { netns: pair.path(pair.client) };
    try {
      const base = compile([...BASE, deny('d3', 8003, { remote: SERVER_ADDR })]);
      await applyRuleset(base, target);
      // The change deletes d2's element and adds d4's; the table no longer holds d2's element
      // (changed behind the engine's back), so the kernel refuses the whole batch.
      const next = compile([
        ...BASE.filter((r) => r.name !== 'd2'),
        deny('d3', 8003, { remote: SERVER_ADDR }),
        deny('d4', 8005, { remote: SERVER_ADDR }),
      ]);
      const key = `${SERVER_ADDR} . 8002`; // tcp alone: tested in the rule, not in the key
      const set = base.model.sets.find((s) => s.elements.some((e) => e.split(' comment ')[0] === key));
      assert.ok(set, 'd2 and d3 share a set (with a counter per element)');
      nft('delete', 'element', 'inet', 'warden', set.name, `{ ${key} }`);
      const before = nft('list', 'table', 'inet', 'warden');
      assert.equal(await applyChange(base, next, target), false, 'the kernel took a batch it had to refuse');
      assert.equal(nft('list', 'table', 'inet', 'warden'), before, 'a refused batch changed the table');
      assert.equal(connect(8005), 'connected', 'd4 is not in force: nothing of the batch was applied');
      assert.equal(connect(8003), 'timeout', 'the old rules are all in force');

      assert.equal(await applyRuleset(next, target, base), 'in place');
      assert.deepEqual(await verifyRuleset(next, target), { ok: true, problems: [] });
      assert.equal(connect(8005), 'timeout');
      assert.equal(connect(8002), 'connected');
      assert.equal(connect(8003), 'timeout');
    } finally {
      await removeRuleset(target);
    }
  });

  test('a whole table too big for the session is still updated in place, keeping the dynamic sets', async () => {
    const target = { netns: pair.path(pair.client) };
    const big = (port: number) =>
      compile([
        ...Array.from({ length: 600 }, (_, i) =>
          deny(`b${i}`, 20000 + i, { remote: `10.9.${i >> 8}.${i & 255}` }),
        ),
        deny('last', port),
      ]);
    try {
      const first = big(8001);
      assert.ok(first.nft.length > 8192, 'the text is over the session limit');
      await applyRuleset(first, target);
      nft('add', 'element', 'inet', 'warden', 'udp_owner4', '{ 10.200.0.1 . 5001 . 10.200.0.2 . 53 . 0 }');
      const handle = tableHandle();
      const second = big(8002);
      assert.equal(await applyRuleset(second, target), 'in place');
      assert.equal(tableHandle(), handle);
      assert.match(nft('list', 'set', 'inet', 'warden', 'udp_owner4'), /10\.200\.0\.1 \. 5001/);
      assert.equal(connect(8002), 'timeout');
      assert.equal(connect(8001), 'connected');
    } finally {
      await removeRuleset(target);
    }
  });

  test('a change whose nft session was killed still reaches the kernel (a new session, or the whole table)', async () => {
    const target = { netns: pair.path(pair.client) };
    try {
      const base = compile(BASE);
      await applyRuleset(base, target);
      const added = compile([...BASE, deny('d3', 8003)]);
      assert.equal(await applyRuleset(added, target, base), 'changed');
      // The session this test's change started: the `nft -i` in this namespace.
      const sessions = sessionsIn(target.netns);
      assert.equal(sessions.length, 1, 'one session per namespace');
      process.kill(Number(sessions[0]), 'SIGKILL');
      const changed = compile([...BASE, deny('d3', 8004)]);
      assert.match(await applyRuleset(changed, target, added), /^(changed|in place)$/);
      assert.deepEqual(await verifyRuleset(changed, target), { ok: true, problems: [] });
      assert.equal(connect(8003), 'connected');
      assert.equal(connect(8004), 'timeout');
    } finally {
      await removeRuleset(target);
    }
  });

  test('a session keeps no command history (nft -i writes every line to $HOME/.nft.history)', async () => {
    const home = mkdtempSync(join(tmpdir(), 'warden-home-'));
    try {
      const script = `const { runInSession } = await import(${JSON.stringify(SESSION_MODULE)});
        const probe = 'add table inet warden_probe; delete table inet warden_probe';
        console.log(JSON.stringify(await runInSession(undefined, probe)));`;
      const out = pair.run(pair.client, 'env', [
        `HOME=${home}`,
        ...[process.execPath, '--input-type=module', '-e', script],
      ]);
      assert.deepEqual(JSON.parse(out.trim()), { ok: true, output: '' }, 'the batch went through');
      // The process is gone, so its session's input ended: nft writes its history then, if it keeps one.
      const client = pair.path(pair.client);
      for (let i = 0; i < 50 && sessionsIn(client).length > 0; i++)
        await new Promise((r) => setTimeout(r, 20));
      assert.deepEqual(sessionsIn(client), [], 'the session ended with its engine');
      assert.deepEqual(readdirSync(home), [], 'nothing written in HOME');
    } finally {
      rmSync(home, { recursive: true, force: true });
    }
  });

  describe('wardend', () => {
    const PORT = 44335;
    let dir: string;
    let engine: (ChildProcess & { output: () => string }) | undefined;
    const yaml = (rules: Rule[]) => JSON.stringify({ version: 1, ...policyOf(rules) });
    const stop = async () => {
      if (engine?.pid === undefined || engine.exitCode !== null) return;
      const exited = new Promise((r) => engine!.once('exit', r));
      process.kill(engine.pid, 'SIGTERM');
      await exited;
    };
    /** The fields of the engine's next "ruleset applied" line after `from`. */
    const applied = async (from: number): Promise<Record<string, unknown>> => {
      const end = Date.now() + 10_000;
      for (;;) {
        const line = engine!
          .output()
          .slice(from)
          .split('\n')
          .find((l) => l.includes('"ruleset applied"'));
        if (line !== undefined) return JSON.parse(line) as Record<string, unknown>;
        if (Date.now() > end) throw new Error(`no ruleset applied: ${engine!.output().slice(from)}`);
        await new Promise((r) => setTimeout(r, 20));
      }
    };

    before(() => {
      dir = mkdtempSync(join(tmpdir(), 'warden-change-'));
      mkdirSync(join(dir, 'etc'));
    });
    after(async () => {
      await stop();
      await removeRuleset({ netns: pair.path(pair.client) });
      rmSync(dir, { recursive: true, force: true });
    });

    test('applies a policy change as a change, and reconciles the kernel with the policy after a restart', async () => {
      writeFileSync(join(dir, 'etc/policy.yaml'), yaml(BASE));
      engine = await startWardend(pair, pair.client, dir, PORT);
      assert.equal((await applied(0)).how, 'replaced', 'a fresh namespace has no table to update');
      assert.equal(connect(8001), 'timeout');

      writeFileSync(join(dir, 'etc/policy.yaml'), yaml([...BASE, deny('d5', 8005)]));
      const from = engine.output().length;
      process.kill(engine.pid!, 'SIGHUP');
      assert.equal((await applied(from)).how, 'changed');
      assert.equal(connect(8005), 'timeout', 'the added rule is in force');

      // Stopped (the table stays), the table is changed by hand and the policy edited.
      await stop();
      nft('flush', 'chain', 'inet', 'warden', 'output');
      nft('add', 'set', 'inet', 'warden', 'stray', '{ type ipv4_addr; }');
      assert.equal(connect(8001), 'connected', 'the tampered table still drops');
      writeFileSync(join(dir, 'etc/policy.yaml'), yaml([...BASE, deny('d6', 8006)]));
      engine = await startWardend(pair, pair.client, dir, PORT);
      assert.equal((await applied(0)).how, 'in place');
      assert.equal(connect(8001), 'timeout', 'the rules are back');
      assert.equal(connect(8005), 'connected', 'a rule no longer in the policy is gone');
      assert.equal(connect(8006), 'timeout', 'the edited policy is in force');
      assert.doesNotMatch(nft('list', 'table', 'inet', 'warden'), /stray/);
    });
  });
});
