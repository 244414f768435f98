/**
 * Attack on sha256-pinned rules: a user who can rewrite a pinned program (a rule pins a tool in a
 * directory the user owns) makes the engine hash without end, to starve the hashes of every other
 * pinned program (their first connections would then miss their deadline and their rules would not
 * match). The attacker, a real process as uid nobody, replaces its 96 MB program 30 times and starts
 * each version (every process runs a different file, so every connection is a new file version),
 * and all 30 connect at once; then a root program pinned by another rule makes its first connection.
 * It must be decided by its pinned rule, in time: one version per program path is hashed at a time
 * (the attacker's other versions are refused at once) and the hash queue is bounded.
 */
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import {
  chmodSync,
  chownSync,
  copyFileSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { after, describe, test } from 'node:test';
import { AskDesk } from '../../src/engine/asks.js';
import { Enforcer, type ProcessInfo } from '../../src/engine/enforcer.js';
import { ExeHasher } from '../../src/engine/exe-hash.js';
import { compilePolicy, parsePolicyText } from '../../src/policy/index.js';
import type { NewLogItem } from '../../src/protocol/log-item.js';

const NOBODY = 65534;
const VERSIONS = 30;
const SIZE = 96 * 1024 * 1024;
const skip = process.getuid?.() === 0 ? undefined : 'needs root (runs the attacker as nobody)';

/** The attacker: writes VERSIONS versions of its program (sparse, 96 MB), starts each, prints the pids. */
const ATTACKER = `
const fs = require('node:fs');
const { spawn } = require('node:child_process');
const [tool, size, versions] = [process.argv[2], Number(process.argv[3]), Number(process.argv[4])];
const elf = fs.readFileSync('/bin/sleep');
for (let i = 0; i < versions; i++) {
  const tmp = tool + '.tmp';
  fs.writeFileSync(tmp, elf, { mode: 0o755 });
  const fd = fs.openSync(tmp, 'r+');
  const mark = Buffer.from('version ' + String(i).padStart(4, '0'));
  fs.writeSync(fd, mark, 0, mark.length, size - 16); // a hole, then a marker: a new file
  fs.closeSync(fd);
  fs.renameSync(tmp, tool);
  const child = spawn(tool, ['60'], { stdio: 'ignore', detached: true });
  child.unref();
  process.stdout.write(child.pid + '\\n');
}
`;

describe('a rewritten pinned program cannot starve the hashes of other programs', { skip }, () => {
  const dir = mkdtempSync(join(tmpdir(), 'warden-pin-attack-'));
  const hasher = new ExeHasher();
  const pids: number[] = [];
  let attacker: ChildProcess | undefined;
  after(async () => {
    attacker?.kill('SIGKILL');
    for (const pid of pids) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {}
    }
    await hasher.close();
    rmSync(dir, { recursive: true, force: true });
  });

  test('30 versions of the attacker program connect at once; the victim is decided by its pin, in time', async () => {
    chmodSync(dir, 0o755);
    const home = join(dir, 'home');
    mkdirSync(home);
    chownSync(home, NOBODY, NOBODY);
    const tool = join(home, 'tool');
    const script = join(dir, 'attacker.js');
    writeFileSync(script, ATTACKER, { mode: 0o644 });
    const victim = join(dir, 'victim');
    copyFileSync('/bin/sleep', victim);
    chmodSync(victim, 0o755);
    const victimSha = createHash('sha256').update(readFileSync(victim)).digest('hex');

    const policy = compilePolicy(
      parsePolicyText(`
defaults: { incoming: { action: deny }, outgoing: { action: deny } }
rules:
  - { name: tool, direction: outgoing, application: ${tool}, sha256: "${'0'.repeat(64)}", action: allow }
  - { name: victim, direction: outgoing, application: ${victim}, sha256: ${victimSha}, action: allow }
`),
    );
    const processes: Record<number, ProcessInfo> = {};
    const logged: NewLogItem[] = [];
    const enforcer = new Enforcer({
      policy: () => policy,
      identify: async (t) => processes[t.sourcePort ?? 0] ?? null,
      hostsOf: () => [],
      asks: new AskDesk({ timeoutMs: () => 50, consoles: () => 0, notify: () => {} }),
      log: (i) => logged.push(i),
      executables: { engine: '/x/e', console: '/x/c', assistant: '/x/a' },
      pins: hasher,
    });
    const tcp = (sourcePort: number) =>
      ({
        protocol: 'tcp',
        source: '10.200.0.1',
        destination: '10.200.0.2',
        sourcePort,
        destinationPort: 443,
      }) as const;

    // The attack, for real: the attacker process as nobody writes and starts its versions.
    attacker = spawn(process.execPath, [script, tool, String(SIZE), String(VERSIONS)], {
      uid: NOBODY,
      gid: NOBODY,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stderr = '';
    attacker.stderr!.on('data', (d) => (stderr += d));
    for await (const line of createInterface({ input: attacker.stdout! })) pids.push(Number(line));
    assert.equal(pids.length, VERSIONS, stderr);
    pids.forEach((pid, i) => {
      processes[2000 + i] = { pid, executable: tool, uid: NOBODY };
    });
    const victimProcess = spawn(victim, ['60'], { stdio: 'ignore' });
    await new Promise((r) => victimProcess.once('spawn', r));
    pids.push(victimProcess.pid!);
    processes[1000] = { pid: victimProcess.pid!, executable: victim, uid: 0 };

    const attack = pids.slice(0, VERSIONS).map((_, i) => enforcer.judge(tcp(2000 + i), 'outgoing'));
    const started = performance.now();
    const judged = await enforcer.judge(tcp(1000), 'outgoing');
    const took = performance.now() - started;
    assert.equal(judged.decision.ruleName, 'victim', JSON.stringify(logged.slice(-3)));
    assert.ok(took < 2500, `the victim waited ${took.toFixed(0)} ms for its hash`);

    // The attacker's connections were judged too: none matched (no version has the pinned hash).
    const results = await Promise.all(attack);
    assert.ok(results.every((j) => j.decision.ruleName === 'default outgoing'));
    assert.ok(hasher.hashed <= 3, `${hasher.hashed} files hashed: the attacker's versions were not all read`);
    assert.ok(
      logged.some((i) => /another version of .* is being hashed/.test(i.message ?? '')),
      JSON.stringify(logged.slice(0, 2)),
    );
  });
});
