/**
 * Rules on the program context, enforced for real: `wardend run` in a namespace pair (the /proc
 * attribution path), curl started by a test shell (a copy of bash under its own path) or by bash,
 * real packets to a server in the other namespace. `parent:` lets curl through only from the test
 * shell; `arguments:` only for the URL it names; a program whose parent exited before it connected
 * (adopted by init) no longer has the test shell as its parent and is refused.
 */
import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { chmodSync, copyFileSync, existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { after, before, describe, test } from 'node:test';
import { consoleRule, type KernelEngine, outputOf, startKernelEngine } from '../adversarial/kernel-engine.js';
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
    arguments: "*/curl -s -m ? http://${SERVER_ADDR}:${SERVICE}/allowed"
    remote: ${SERVER_ADDR}
    remotePorts: ${SERVICE}
    action: allow
    log: true
`;

/** A client that waits `delay` ms, connects once and writes what happened to `file`. */
const DELAYED_CLIENT = `const [delay, file] = process.argv.slice(1); const fs = require('fs');
setTimeout(() => { const c = require('net').connect(${SERVICE}, '${SERVER_ADDR}', () => { fs.writeFileSync(file, 'ok'); process.exit(0); });
c.on('error', (e) => { fs.writeFileSync(file, 'error ' + e.code); process.exit(0); }); setTimeout(() => { fs.writeFileSync(file, 'timeout'); process.exit(0); }, 4000); }, Number(delay));`;

describe('rules on the program context', { skip: kernelTestsUnavailable() ?? !existsSync(CURL) }, () => {
  let k: KernelEngine;
  let server: ChildProcess;

  before(async () => {
    copyFileSync(BASH, TESTSH);
    chmodSync(TESTSH, 0o755);
    k = await startKernelEngine('ctx', PORT, POLICY, '');
    server = k.pair.spawn(k.pair.server, NODE, [
      '-e',
      `require('net').createServer((s) => s.on('error', () => {}).end('HTTP/1.0 200 OK\\r\\nContent-Length: 2\\r\\n\\r\\nok')).listen(${SERVICE}, () => console.log('ready'));`,
    ]);
    await new Promise<void>((resolve) =>
      createInterface({ input: server.stdout! }).once('line', () => resolve()),
    );
  });

  after(() => {
    k?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  /** Runs `script` with `shell -c` in the client namespace ("; true" keeps the shell from exec-ing curl). */
  const shell = (sh: string, script: string) => outputOf(k.spawnAs('root', sh, ['-c', `${script}; true`]));
  const curl = (path: string) => `${CURL} -s -m 5 http://${SERVER_ADDR}:${SERVICE}/${path}; echo " rc=$?"`;

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

  test('arguments: from bash, curl is allowed for the URL the glob names and refused for another', async () => {
    const [named, other] = await Promise.all([shell(BASH, curl('allowed')), shell(BASH, curl('secret'))]);
    assert.equal(named.trim(), 'ok rc=0');
    assert.equal(other.trim(), 'rc=7');
    const allowed = await k.logs({ kind: 'connection', verdict: 'allow', application: CURL });
    assert.ok(
      allowed.some((i) => /curl fetching \/allowed/.test(i.message)),
      JSON.stringify(allowed),
    );
  });

  test('a program whose parent is gone when it connects does not match parent:', async () => {
    const waited = join(dir, 'waited');
    const orphan = join(dir, 'orphan');
    // The same delayed client, once while the test shell waits for it and once left behind: the
    // shell exits at once and the client, adopted by init, connects after 800 ms.
    await Promise.all([
      shell(TESTSH, `${NODE} -e "${DELAYED_CLIENT.replace(/"/g, '\\"')}" 800 ${waited}`),
      outputOf(
        k.spawnAs('root', TESTSH, [
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
});
