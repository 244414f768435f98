/**
 * Attack: a local unprivileged user (nobody) passes for one of Warden's own parts to get the internal
 * rules' allowances (issue 11 item 3). `wardend run` enforces deny-all in the client namespace with
 * update checks on and no proxy, so the engine itself may open TCP to any host and port, and the
 * console may reach any host's application port. Each attack runs node as nobody naming Warden's
 * script while its own code runs first (--import, -r, --require, --loader, --experimental-loader,
 * NODE_OPTIONS, a symlink to the script) or rewrites its command line in memory, then connects to a
 * server in the other namespace. The same for the console (the application port of any host) and
 * the crash assistant (the crash report server). None may get through; the real console still does.
 */
import assert from 'node:assert/strict';
import type { ChildProcess, SpawnOptions } from 'node:child_process';
import { once } from 'node:events';
import { chmodSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { after, before, describe, test } from 'node:test';
import { createNetnsPair, kernelTestsUnavailable, type NetnsPair, SERVER_ADDR } from '../kernel/netns.js';
import { NODE, startWardend, WARDEND } from '../kernel/wardend.js';
import { repoRoot } from '../repo-root.js';

const skip = kernelTestsUnavailable();
const PORT = 44336;
const CONSOLE = join(repoRoot(import.meta.url), 'dist/src/console/bin.js');
const ASSISTANT = join(repoRoot(import.meta.url), 'dist/src/assist/bin.js');

const POLICY = `
version: 1
mode: enforce
defaults:
  incoming: { action: deny, log: true }
  outgoing: { action: deny, log: true }
rules: []
`;
const SETTINGS = `applicationPort: ${PORT}\nupdates:\n  enabled: true\nproxy:\n  mode: direct
crashReports:\n  sendingAllowed: true\n  server: https://${SERVER_ADDR}:8443/reports\n`;

/** Connects to ATTACK_TARGET (host:port), prints the outcome, and ends the process (the script it names never runs). */
const CONNECT = `
const [host, port] = process.env.ATTACK_TARGET.split(':');
const s = connect(Number(port), host);
const done = (what) => { writeSync(1, what + '\\n'); process.kill(process.pid, 'SIGKILL'); };
s.setTimeout(2500, () => done('timeout'));
s.on('connect', () => done('connected'));
s.on('error', (e) => done(e.code));
`;
const ATTACK_MJS = `import { connect } from 'node:net';\nimport { writeSync } from 'node:fs';\n${CONNECT}\nawait new Promise(() => setInterval(() => {}, 1000));\n`;
const ATTACK_CJS = `require('node:module').runMain = () => {}; // the named script is never loaded
const { connect } = require('node:net');\nconst { writeSync } = require('node:fs');\n${CONNECT}`;
/** Rewrites its own command line (/proc/self/mem) to `node WARDEND run`, then connects. */
const REWRITE_MJS = `import { connect } from 'node:net';
import { openSync, readFileSync, writeSync } from 'node:fs';
const stat = readFileSync('/proc/self/stat', 'utf8');
const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
const [start, end] = [Number(fields[45]), Number(fields[46])];
const fake = Buffer.alloc(end - start);
Buffer.from(${JSON.stringify(`${NODE}\0${WARDEND}\0run\0`)}).copy(fake);
const mem = openSync('/proc/self/mem', 'r+');
writeSync(mem, fake, 0, fake.length, start);
if (!readFileSync('/proc/self/cmdline', 'latin1').startsWith(${JSON.stringify(`${NODE}\0${WARDEND}\0`)})) throw new Error('rewrite failed');
${CONNECT}`;

describe("impersonating Warden's parts (as nobody, against wardend in a namespace)", { skip }, () => {
  let pair: NetnsPair;
  let dir: string;
  let files: string;
  let engine: (ChildProcess & { output: () => string }) | undefined;
  const accepted: string[] = [];

  /** Runs node as nobody in the client namespace with `args`; its first output line. */
  const asNobody = async (
    args: string[],
    env: Record<string, string> = {},
    target = `${SERVER_ADDR}:8000`,
  ) => {
    const options: SpawnOptions = {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, ...env, ATTACK_TARGET: target },
    };
    const child = pair.spawn(
      pair.client,
      'setpriv',
      ['--reuid=65534', '--regid=65534', '--clear-groups', NODE, ...args],
      options,
    );
    let err = '';
    child.stderr!.on('data', (d) => (err += d));
    const line = new Promise<string>((resolve) =>
      createInterface({ input: child.stdout! }).once('line', resolve),
    );
    const exited = once(child, 'exit').then(() => `exited: ${err.trim().split('\n').slice(-3).join(' | ')}`);
    let timer: NodeJS.Timeout | undefined;
    const stuck = new Promise<string>((r) => {
      timer = setTimeout(() => r(`no outcome in 15 s: ${err.trim()}`), 15_000);
    });
    const outcome = await Promise.race([line, exited, stuck]);
    clearTimeout(timer);
    if (child.exitCode === null && child.signalCode === null) process.kill(child.pid!, 'SIGKILL');
    return outcome;
  };

  before(async () => {
    pair = createNetnsPair('imp');
    dir = mkdtempSync(join(tmpdir(), 'warden-imp-'));
    chmodSync(dir, 0o755); // the attacks run as nobody
    files = join(dir, 'files');
    mkdirSync(files, { mode: 0o755 });
    writeFileSync(join(files, 'attack.mjs'), ATTACK_MJS, { mode: 0o644 });
    writeFileSync(join(files, 'attack.cjs'), ATTACK_CJS, { mode: 0o644 });
    writeFileSync(join(files, 'rewrite.mjs'), REWRITE_MJS, { mode: 0o644 });
    symlinkSync(WARDEND, join(files, 'wardend'));
    mkdirSync(join(dir, 'etc'));
    writeFileSync(join(dir, 'etc/policy.yaml'), POLICY);
    writeFileSync(join(dir, 'etc/settings.yaml'), SETTINGS);
    const servers = pair.spawn(pair.server, NODE, [
      '-e',
      `const net = require('node:net'); let n = 0;
       for (const p of [8000, 8443, ${PORT}]) net.createServer((c) => { console.log('accepted ' + p); c.destroy(); })
         .listen(p, () => { if (++n === 3) console.log('ready'); });`,
    ]);
    const lines = createInterface({ input: servers.stdout! });
    await once(lines, 'line');
    lines.on('line', (l) => accepted.push(l));
    engine = await startWardend(pair, pair.client, dir, PORT);
  });
  after(() => {
    if (engine?.pid && engine.exitCode === null) process.kill(engine.pid, 'SIGTERM');
    pair?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  test('node naming the engine script with its own code loaded first is not the engine', async () => {
    const mjs = join(files, 'attack.mjs');
    const cjs = join(files, 'attack.cjs');
    const attacks: [string, string[], Record<string, string>?][] = [
      ['--import', ['--import', mjs, WARDEND, 'run']],
      ['-r', ['-r', cjs, WARDEND, 'run']],
      ['--require', ['--require', cjs, WARDEND, 'run']],
      ['--loader', ['--no-warnings', '--loader', mjs, WARDEND, 'run']],
      ['--experimental-loader', ['--no-warnings', '--experimental-loader', mjs, WARDEND, 'run']],
      ['NODE_OPTIONS', [WARDEND, 'run'], { NODE_OPTIONS: `--import ${mjs}` }],
      ['a symlink to the script', ['--import', mjs, join(files, 'wardend'), 'run']],
      ['argv rewritten in memory', [join(files, 'rewrite.mjs'), 'x'.repeat(WARDEND.length + 16)]],
    ];
    const outcomes: Record<string, string> = {};
    for (const [name, args, env] of attacks) outcomes[name] = await asNobody(args, env);
    assert.deepEqual(
      outcomes,
      Object.fromEntries(attacks.map(([name]) => [name, 'timeout'])),
      `every attack must be denied; engine output: ${engine!.output().slice(-2000)}`,
    );
    assert.deepEqual(
      accepted.filter((l) => l === 'accepted 8000'),
      [],
    );
  });

  test('node naming the crash assistant script is not the assistant (only a child the engine spawned is)', async () => {
    const target = `${SERVER_ADDR}:8443`;
    const mjs = join(files, 'attack.mjs');
    const outcomes = {
      '--import': await asNobody(['--import', mjs, ASSISTANT, 'send'], {}, target),
      NODE_OPTIONS: await asNobody([ASSISTANT, 'send'], { NODE_OPTIONS: `--import ${mjs}` }, target),
    };
    assert.deepEqual(outcomes, { '--import': 'timeout', NODE_OPTIONS: 'timeout' });
    assert.deepEqual(
      accepted.filter((l) => l === 'accepted 8443'),
      [],
    );
  });

  test('node naming the console script with its own code loaded is not the console; the real console is', async () => {
    const target = `${SERVER_ADDR}:${PORT}`;
    const mjs = join(files, 'attack.mjs');
    const outcomes = {
      '--import': await asNobody(['--import', mjs, CONSOLE, 'status'], {}, target),
      '-r': await asNobody(['-r', join(files, 'attack.cjs'), CONSOLE, 'status'], {}, target),
      NODE_OPTIONS: await asNobody([CONSOLE, 'status'], { NODE_OPTIONS: `--import ${mjs}` }, target),
    };
    assert.deepEqual(outcomes, { '--import': 'timeout', '-r': 'timeout', NODE_OPTIONS: 'timeout' });
    assert.deepEqual(
      accepted.filter((l) => l === `accepted ${PORT}`),
      [],
      'nothing reached the application port',
    );
    // The real console, unmodified, reaches another engine's application port.
    let said = '';
    try {
      said = pair.run(pair.client, NODE, [CONSOLE, 'connect', target], '');
    } catch (e) {
      said = (e as Error).message; // the server is no engine: the console fails after connecting
    }
    const reached = () => accepted.filter((l) => l === `accepted ${PORT}`);
    for (let i = 0; i < 100 && reached().length === 0; i++) await new Promise((r) => setTimeout(r, 20));
    assert.deepEqual(reached(), [`accepted ${PORT}`], `${said}\n${engine!.output().slice(-3000)}`);
  });
});
