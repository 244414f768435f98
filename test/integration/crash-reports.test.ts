/**
 * Crash reports end to end: a real `wardend run` process dies of an unhandled error and leaves a
 * report; a real `warden-assist send` keeps it while sending is not allowed, keeps it when the
 * server fails, and uploads it through the proxy once allowed. An engine that starts with pending
 * reports runs the assistant itself when sending becomes allowed.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { pathToFileURL } from 'node:url';
import { Engine } from '../../src/engine/daemon.js';
import {
  crashReport,
  pendingReports,
  writeCrashReportSync,
} from '../../src/engine/services/crash-reports.js';
import { repoRoot } from '../repo-root.js';
import {
  eventually,
  freePort,
  startConnectProxy,
  startHttpsStandIn,
  TEST_CA,
  TEST_CA_FILE,
} from '../support/stand-ins.js';

const root = repoRoot(import.meta.url);
const WARDEND = join(root, 'dist/src/engine/bin.js');
const ASSIST = join(root, 'dist/src/assist/bin.js');

function runNode(args: string[], env: NodeJS.ProcessEnv = {}) {
  const child = spawn(process.execPath, args, {
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d) => {
    stdout += d;
  });
  child.stderr.on('data', (d) => {
    stderr += d;
  });
  const done = new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) =>
    child.once('close', (code) => resolve({ code, stdout, stderr })),
  );
  return { child, done, stdout: () => stdout };
}

test('a crashing wardend leaves a private crash report; warden-assist uploads it only when allowed', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'warden-crash-'));
  const configDir = join(dir, 'etc');
  const stateDir = join(dir, 'state');
  mkdirSync(configDir);
  const settingsFile = join(configDir, 'settings.yaml');
  const popupPort = await freePort();
  writeFileSync(settingsFile, `blockedPopups: {port: ${popupPort}}\n`);
  // The crash: a preloaded module throws from a signal handler, outside any of the engine's own code paths.
  const hook = join(dir, 'crash-hook.mjs');
  writeFileSync(
    hook,
    "process.on('SIGUSR2', () => setImmediate(() => { throw new Error('test crash: boom'); }));\n",
  );
  const server = await startHttpsStandIn((_req, i) =>
    i === 0 ? { status: 500, text: 'disk full' } : { status: 202 },
  );
  const proxy = await startConnectProxy();
  const engine = runNode([
    '--import',
    pathToFileURL(hook).href,
    WARDEND,
    'run',
    '--no-kernel',
    '--port',
    '0',
    '--bind',
    '127.0.0.1',
    '--config-dir',
    configDir,
    '--state-dir',
    stateDir,
  ]);
  try {
    await eventually(
      () => (engine.stdout().includes('listening on port') ? true : undefined),
      10_000,
      'wardend',
    );
    engine.child.kill('SIGUSR2');
    const exit = await engine.done;
    assert.equal(exit.code, 1);
    assert.match(exit.stderr, /unhandled error, the engine stops: Error: test crash: boom/);

    const reports = pendingReports(stateDir);
    assert.equal(reports.length, 1);
    assert.match(exit.stderr, new RegExp(reports[0]!.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')));
    assert.equal(statSync(reports[0]!).mode & 0o777, 0o600);
    assert.equal(statSync(join(stateDir, 'crash-reports')).mode & 0o777, 0o700);
    const report = JSON.parse(readFileSync(reports[0]!, 'utf8'));
    assert.equal(report.program, 'wardend');
    assert.equal(report.version, '0.1.0');
    assert.equal(report.origin, 'uncaughtException');
    assert.equal(report.node, process.version);
    assert.equal(report.error.message, 'test crash: boom');
    assert.match(report.error.stack, /crash-hook\.mjs/);
    assert.equal(typeof report.hostname, 'string');

    const assist = (env: NodeJS.ProcessEnv = {}) =>
      runNode([ASSIST, 'send', '--config-dir', configDir, '--state-dir', stateDir], {
        NODE_EXTRA_CA_CERTS: TEST_CA_FILE,
        ...env,
      }).done;
    // Not allowed (the default): nothing leaves the host, the report stays.
    const notAllowed = await assist();
    assert.equal(notAllowed.code, 0, notAllowed.stderr);
    assert.match(notAllowed.stdout, /kept .*: sending is not allowed/);
    assert.equal(server.requests.length, 0);

    writeFileSync(
      settingsFile,
      `blockedPopups: {port: ${popupPort}}\n` +
        `crashReports: {sendingAllowed: true, server: "${server.url('/reports')}"}\n` +
        `proxy: {mode: manual, url: "${proxy.url}"}\n`,
    );
    // The server fails: the report is kept, the assistant says why and exits 1.
    const failed = await assist();
    assert.equal(failed.code, 1);
    assert.match(failed.stdout, /kept .*HTTP 500: disk full/);
    assert.equal(pendingReports(stateDir).length, 1);
    // The server takes it: sent through the proxy, then deleted.
    const sent = await assist();
    assert.equal(sent.code, 0, sent.stdout + sent.stderr);
    assert.match(sent.stdout, /^sent .*\.json$/m);
    assert.equal(pendingReports(stateDir).length, 0);
    assert.equal(server.requests.length, 2);
    assert.equal(server.requests[1]!.method, 'POST');
    assert.equal(server.requests[1]!.path, '/reports');
    assert.deepEqual(JSON.parse(server.requests[1]!.body), report);
    assert.deepEqual(proxy.tunnels, [new URL(server.url('/')).host, new URL(server.url('/')).host]);
  } finally {
    if (engine.child.exitCode === null) engine.child.kill('SIGKILL');
    await proxy.close();
    await server.close();
    rmSync(dir, { recursive: true, force: true });
  }
});

test('an engine with pending crash reports says they are kept, and runs warden-assist once sending is allowed', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'warden-crash-'));
  const configDir = join(dir, 'etc');
  const stateDir = join(dir, 'state');
  mkdirSync(configDir);
  const server = await startHttpsStandIn(() => ({ status: 200 }));
  writeCrashReportSync(
    stateDir,
    crashReport(new Error('earlier crash'), 'uncaughtException', 'wardend', '0.1.0'),
  );
  // The assistant is a child process: it trusts the test CA through the environment it inherits.
  const before = process.env.NODE_EXTRA_CA_CERTS;
  process.env.NODE_EXTRA_CA_CERTS = TEST_CA_FILE;
  const engine = await Engine.start({
    configDir,
    stateDir,
    port: 0,
    bindAddress: '127.0.0.1',
    services: { ca: TEST_CA, popupPort: 0 },
  });
  try {
    const kept = engine.logs.query({ kind: 'system', text: 'crash report', limit: 10 }).items;
    assert.equal(kept.length, 1);
    assert.match(kept[0]!.message, /^1 crash report\(s\) kept in .*crash-reports; sending is not allowed/);
    const s = engine.config.settings();
    await engine.config.setSettings({
      ...s,
      crashReports: { sendingAllowed: true, server: server.url('/r') },
      proxy: { mode: 'direct', url: '' },
    });
    const done = await eventually(
      () => engine.logs.query({ kind: 'system', text: 'crash assistant', limit: 10 }).items[0],
      10_000,
      'the assistant run',
    );
    assert.match(done.message, /crash assistant: sent .*\.json/);
    assert.equal(server.requests.length, 1);
    assert.equal(JSON.parse(server.requests[0]!.body).error.message, 'earlier crash');
    assert.deepEqual(readdirSync(join(stateDir, 'crash-reports')), []);
  } finally {
    if (before === undefined) delete process.env.NODE_EXTRA_CA_CERTS;
    else process.env.NODE_EXTRA_CA_CERTS = before;
    await engine.stop();
    await server.close();
    rmSync(dir, { recursive: true, force: true });
  }
});
