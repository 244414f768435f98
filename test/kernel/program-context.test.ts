/**
 * Rules on the program context, enforced for real: `wardend run` in a namespace pair, on the /proc
 * attribution path and on the BPF path (programs on a cgroup this test makes), curl started by a
 * test shell (a copy of bash under its own path) or by bash, real packets to a server in the other
 * namespace. `parent:` lets curl through only from the test shell, `ancestor:` from anything the
 * test shell started; `arguments:` only for the URL it names, also with a command line longer than
 * the BPF record's 256 bytes; a program whose parent exited before it connected (adopted by init)
 * no longer has the test shell as its parent and is refused.
 */
import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { chmodSync, copyFileSync, existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { after, before, describe, test } from 'node:test';
import { consoleRule, type KernelEngine, startKernelEngine } from '../adversarial/kernel-engine.js';
import { cgroupTestsUnavailable, createTestCgroup, type TestCgroup } from './cgroup.js';
import { kernelTestsUnavailable, SERVER_ADDR } from './netns.js';
import { NODE } from './wardend.js';

const PORT = 44361;
const SERVICE = 9012;
const CURL = '/usr/bin/curl';
const BASH = '/usr/bin/bash';
const dir = mkdtempSync(join(tmpdir(), 'warden-context-'));
chmodSync(dir, 0o755);
const TESTSH = join(dir, 'testsh');

const POLICY = `
version: 1
mode: enforce
defaults:
  incoming: { action: deny, log: true }
  outgoing: { action: reject, log: true }
rules:
${consoleRule(PORT)}  - name: from the test shell
    direction: outgoing
    protocol: tcp
    parent: ${TESTSH}
    remote: ${SERVER_ADDR}
    remotePorts: ${SERVICE}
    action: allow
    log: true
  - name: curl fetching /allowed
    direction: outgoing
    protocol: tcp
    application: ${CURL}
    arguments: "*/curl -s -m ?* http://${SERVER_ADDR}:${SERVICE}/allowed"
    remote: ${SERVER_ADDR}
    remotePorts: ${SERVICE}
    action: allow
    log: true
  - name: curl under the test shell
    direction: outgoing
    protocol: tcp
    application: ${CURL}
    ancestor: ${TESTSH}
    remote: ${SERVER_ADDR}
    remotePorts: ${SERVICE}
    action: allow
    log: true
`;

/** A client that waits `delay` ms, connects once and writes what happened to `file`. */
const DELAYED_CLIENT = `const [delay, file] = process.argv.slice(1); const fs = require('fs');
setTimeout(() => { const c = require('net').connect(${SERVICE}, '${SERVER_ADDR}', () => { fs.writeFileSync(file, 'ok'); process.exit(0); });
c.on('error', (e) => { fs.writeFileSync(file, 'error ' + e.code); process.exit(0); }); setTimeout(() => { fs.writeFileSync(file, 'timeout'); process.exit(0); }, 4000); }, Number(delay));`;

/** A child's whole stdout, once its pipes are closed ('exit' may come before the last output). */
function outputOf(child: ChildProcess): Promise<string> {
  let out = '';
  let err = '';
  child.stdout?.on('data', (d) => (out += d));
  child.stderr?.on('data', (d) => (err += d));
  return new Promise((resolve, reject) => {
    child.once('error', reject);
    child.once('close', (code) =>
      code === 0 ? resolve(out) : reject(new Error(`exited ${code}: ${out} ${err}`)),
    );
  });
}

const suite = (path: 'proc' | 'bpf', port: number) => () => {
  let k: KernelEngine;
  let server: ChildProcess;
  let cgroup: TestCgroup | undefined;

  before(async () => {
    copyFileSync(BASH, TESTSH);
    chmodSync(TESTSH, 0o755);
    if (path === 'bpf') cgroup = createTestCgroup('program-context');
    k = await startKernelEngine(
      `ctx${path}`,
      port,
      POLICY.replace(`remotePorts: ${PORT}`, `remotePorts: ${port}`),
      '',
      cgroup,
    );
    assert.match(k.engine.output(), path === 'bpf' ? /attribution bpf/ : /attribution proc/);
    server = k.pair.spawn(k.pair.server, NODE, [
      '-e',
      `require('net').createServer((s) => s.on('error', () => {}).end('HTTP/1.0 200 OK\\r\\nContent-Length: 2\\r\\n\\r\\nok')).listen(${SERVICE}, () => console.log('ready'));`,
    ]);
    await new Promise<void>((resolve) =>
      createInterface({ input: server.stdout! }).once('line', () => resolve()),
    );
  });

  after(async () => {
    k?.close();
    await cgroup?.remove();
  });

  /** Runs a program as root in the client namespace (and, for the BPF path, in the test cgroup). */
  const run = (command: string, args: readonly string[]) =>
    cgroup === undefined
      ? k.spawnAs('root', command, args)
      : cgroup.spawn('nsenter', [`--net=${k.pair.path(k.pair.client)}`, command, ...args], {
          stdio: ['ignore', 'pipe', 'pipe'],
        });
  /** Runs `script` with `shell -c` ("; true" keeps the shell from exec-ing curl). */
  const shell = (sh: string, script: string) => outputOf(run(sh, ['-c', `${script}; true`]));
  const curl = (url: string, extra = '') =>
    `${CURL} -s -m 5 ${extra} http://${SERVER_ADDR}:${SERVICE}/${url}; echo " rc=$?"`;

  test('parent: curl from the test shell is allowed; the same curl from bash is refused', async () => {
    const [fromTestShell, fromBash] = await Promise.all([
      shell(TESTSH, curl('other')),
      shell(BASH, curl('other')),
    ]);
    assert.equal(fromTestShell.trim(), 'ok rc=0');
    assert.equal(fromBash.trim(), 'rc=7', 'refused at once by the reject default');
    const allowed = await k.logs({ kind: 'connection', verdict: 'allow', application: CURL });
    assert.ok(
      allowed.some((i) => /from the test shell/.test(i.message)),
      JSON.stringify(allowed),
    );
    const refused = await k.logs({ kind: 'connection', verdict: 'reject', application: CURL });
    assert.ok(refused.length >= 1, JSON.stringify(refused));
  });

  test('ancestor: curl started by bash started by the test shell is allowed', async () => {
    const nested = await shell(TESTSH, `${BASH} -c '${curl('other').replace(/"/g, '')}; true'`);
    assert.equal(nested.replace(/\s/g, ''), 'okrc=0');
    const allowed = await k.logs({ kind: 'connection', verdict: 'allow', application: CURL });
    assert.ok(
      allowed.some((i) => /curl under the test shell/.test(i.message)),
      JSON.stringify(allowed),
    );
  });

  test('arguments: from bash, curl is allowed for the URL the glob names and refused for another', async () => {
    // A command line longer than the 256 bytes a BPF record holds is read from /proc and matched too.
    const pad = `-H "X-Pad: ${'x'.repeat(300)}"`;
    const [named, other, long, longOther] = await Promise.all([
      shell(BASH, curl('allowed')),
      shell(BASH, curl('secret')),
      shell(BASH, curl('allowed', pad)),
      shell(BASH, curl('secret', pad)),
    ]);
    assert.equal(named.trim(), 'ok rc=0');
    assert.equal(other.trim(), 'rc=7');
    assert.equal(long.trim(), 'ok rc=0');
    assert.equal(longOther.trim(), 'rc=7');
    const allowed = await k.logs({ kind: 'connection', verdict: 'allow', application: CURL });
    assert.ok(
      allowed.some((i) => /curl fetching \/allowed/.test(i.message)),
      JSON.stringify(allowed),
    );
  });

  test('a program whose parent is gone when it connects does not match parent:', async () => {
    const waited = join(dir, `waited-${path}`);
    const orphan = join(dir, `orphan-${path}`);
    // The same delayed client, once while the test shell waits for it and once left behind: the
    // shell exits at once and the client, adopted by init, connects after 800 ms.
    await Promise.all([
      shell(TESTSH, `${NODE} -e "${DELAYED_CLIENT.replace(/"/g, '\\"')}" 800 ${waited}`),
      outputOf(
        run(TESTSH, [
          '-c',
          `${NODE} -e "${DELAYED_CLIENT.replace(/"/g, '\\"')}" 800 ${orphan} > /dev/null 2>&1 & exit 0`,
        ]),
      ),
    ]);
    const end = Date.now() + 15_000;
    while (!existsSync(orphan) && Date.now() < end) await new Promise((r) => setTimeout(r, 50));
    assert.equal(readFileSync(waited, 'utf8'), 'ok', 'with its parent there, the rule matches');
    assert.equal(readFileSync(orphan, 'utf8'), 'error ECONNREFUSED', 'adopted by init: refused');
  });
};

describe(
  'rules on the program context (/proc attribution)',
  { skip: kernelTestsUnavailable() ?? !existsSync(CURL) },
  suite('proc', PORT),
);
describe(
  'rules on the program context (BPF attribution)',
  { skip: kernelTestsUnavailable() ?? cgroupTestsUnavailable() ?? !existsSync(CURL) },
  suite('bpf', PORT + 1),
);
after(() => rmSync(dir, { recursive: true, force: true }));
