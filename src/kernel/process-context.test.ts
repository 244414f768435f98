import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { realpathSync } from 'node:fs';
import { after, describe, test } from 'node:test';
import { compilePolicy, validatePolicy } from '../policy/index.js';
import { validateSettings } from '../settings/index.js';
import { ProcessContextReader, parseStat } from './process-context.js';
import { compileRuleset } from './ruleset.js';

const BASH = realpathSync('/bin/bash');
const NODE = realpathSync(process.execPath);
const started: number[] = [];

after(() => {
  for (const pid of started) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {}
  }
});

/** Runs bash with a script that starts `sleep` in the background and prints the pids of `count` children. */
async function bashWithChild(script: string, count = 1): Promise<{ bash: ChildProcess; children: number[] }> {
  const bash = spawn(BASH, ['-c', script], { stdio: ['pipe', 'pipe', 'inherit'] });
  started.push(bash.pid!);
  let out = '';
  bash.stdout!.setEncoding('utf8');
  await new Promise<void>((resolve, reject) => {
    bash.once('exit', () => reject(new Error(`bash exited: ${out}`)));
    bash.stdout!.on('data', (chunk: string) => {
      out += chunk;
      if (out.split('\n').length > count) resolve();
    });
  });
  const children = out.trim().split('\n').map(Number);
  started.push(...children);
  return { bash, children };
}

describe('program context from /proc', () => {
  test('parent and ancestors of a real process, bounded by depth', async () => {
    const {
      bash,
      children: [child],
    } = await bashWithChild('sleep 30 & echo $!; read x');
    const reader = new ProcessContextReader();
    const c = reader.contextOf(child!, true);
    assert.equal(c.parent, BASH);
    assert.equal(c.ancestors[0], BASH);
    assert.ok(c.ancestors.includes(NODE), `node among ${c.ancestors.join(' < ')}`);
    assert.ok(c.ancestors.length <= 32);
    const shallow = new ProcessContextReader({ maxDepth: 1 }).contextOf(child!, true);
    assert.deepEqual(shallow, { parent: BASH, ancestors: [BASH] });
    bash.stdin!.end();
    await once(bash, 'exit');
    // Kept per pid and start time: the parent it had when first seen, after that parent exited.
    assert.equal(reader.contextOf(child!, true).parent, BASH);
    assert.equal(reader.stats.hits, 1);
    // A reader that first sees it now finds it adopted (by init or a subreaper): bash is no longer its parent.
    const late = new ProcessContextReader().contextOf(child!, true);
    assert.notEqual(late.parent, BASH);
    assert.ok(!late.ancestors.includes(BASH));
  });

  test('a second child of the same shell stops at the shell: the chain above it is known', async () => {
    const {
      bash,
      children: [child, second],
    } = await bashWithChild('sleep 30 & echo $!; sleep 30 & echo $!; read x', 2);
    const reader = new ProcessContextReader();
    const first = reader.contextOf(child!, true);
    const files = reader.stats.files;
    assert.ok(files >= 2 * first.ancestors.length, `${files} files for ${first.ancestors.length} ancestors`);
    // Its own stat, the shell's exe and stat: then the shell's ancestors as read the first time.
    assert.deepEqual(reader.contextOf(second!, true), first);
    assert.equal(reader.stats.files - files, 3);
    bash.stdin!.end();
  });

  test('a process that is gone has no context', async () => {
    const p = spawn('/bin/true');
    await once(p, 'exit');
    const reader = new ProcessContextReader();
    assert.deepEqual(reader.contextOf(p.pid!, true), { parent: null, ancestors: [] });
    assert.equal(reader.stats.gone, 1);
  });

  test('stat fields after a name holding spaces and parentheses', () => {
    const text = '4242 (a) b (c)) S 17 4242 4242 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 1 0 987654 1000 100\n';
    assert.deepEqual(parseStat(text), { ppid: 17, start: '987654' });
    assert.equal(parseStat('garbage'), null);
  });
});

describe('rules on the program context in the kernel ruleset', () => {
  test('are never decided in the kernel: each goes to the queue, like a rule naming an application', () => {
    const settings = validateSettings({});
    const queued = (field: Record<string, string>) =>
      compileRuleset({
        policy: compilePolicy(
          validatePolicy({
            rules: [
              {
                name: 'x',
                direction: 'outgoing',
                protocol: 'tcp',
                remotePorts: 443,
                action: 'allow',
                ...field,
              },
            ],
          }),
          { settings },
        ),
        settings,
        now: Date.now(),
      }).stats;
    assert.deepEqual(
      (
        [{}, { parent: '/usr/bin/bash' }, { ancestor: '/usr/sbin/sshd' }, { arguments: 'curl *' }] as Record<
          string,
          string
        >[]
      ).map((f) => {
        const s = queued(f);
        return [s.kernelRules, s.queuedRules];
      }),
      [
        [1, 0],
        [0, 1],
        [0, 1],
        [0, 1],
      ],
    );
  });
});
