/**
 * The auxiliary services on the packet path: `wardend run` enforces a deny-all policy in the client
 * namespace, yet its update check, its registration and the crash assistant it runs (a separate
 * program: the internal rule allows the assistant, not the engine) reach a server in the other
 * namespace, while any other program is blocked from that server. Plain http:// URLs: HTTPS is
 * covered by the integration tests; here the point is the internal rules and attribution.
 */
import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { after, before, describe, test } from 'node:test';
import {
  crashReport,
  pendingReports,
  writeCrashReportSync,
} from '../../src/engine/services/crash-reports.js';
import { createNetnsPair, kernelTestsUnavailable, type NetnsPair, SERVER_ADDR } from './netns.js';
import { NODE, startWardend, useFixtureIdentity } from './wardend.js';

const skip = kernelTestsUnavailable();
const PORT = 44334;
const SERVICE_PORT = 8100;

const POLICY = `
version: 1
defaults:
  incoming: { action: deny, log: true }
  outgoing: { action: deny, log: true }
rules: []
`;

const base = `http://${SERVER_ADDR}:${SERVICE_PORT}`;
const SETTINGS = `
updates: {enabled: true, feedUrl: "${base}/feed.json"}
registration: {enabled: true, server: "${base}/enrol"}
crashReports: {sendingAllowed: true, server: "${base}/crash"}
proxy: {mode: direct}
`;

/** The stand-in service server: answers each path and prints every request as a JSON line. */
const SERVER = `
const answers = { '/feed.json': {latest: '9.0.0'}, '/enrol': {registrationId: 'reg-ns'}, '/crash': {} };
require('node:http').createServer((q, r) => {
  let body = '';
  q.on('data', (d) => (body += d));
  q.on('end', () => {
    console.log(JSON.stringify({ method: q.method, path: q.url, body }));
    r.writeHead(200, { 'content-type': 'application/json' });
    r.end(JSON.stringify(answers[q.url] ?? {}));
  });
}).listen(${SERVICE_PORT}, () => console.log(JSON.stringify({ ready: true })));
`;

describe('auxiliary services under a deny-all policy', { skip }, () => {
  let pair: NetnsPair;
  let dir: string;
  let engine: (ChildProcess & { output: () => string }) | undefined;
  const requests: { method: string; path: string; body: string }[] = [];

  before(async () => {
    pair = createNetnsPair('v');
    dir = mkdtempSync(join(tmpdir(), 'warden-services-kernel-'));
    mkdirSync(join(dir, 'etc'));
    writeFileSync(join(dir, 'etc/policy.yaml'), POLICY);
    writeFileSync(join(dir, 'etc/settings.yaml'), SETTINGS);
    useFixtureIdentity(join(dir, 'state'));
    writeCrashReportSync(
      join(dir, 'state'),
      crashReport(new Error('crash before this start'), 'uncaughtException', 'wardend', '0.1.0'),
    );
    const server = pair.spawn(pair.server, NODE, ['-e', SERVER], { stdio: ['ignore', 'pipe', 'inherit'] });
    createInterface({ input: server.stdout! }).on('line', (l) => {
      const line = JSON.parse(l);
      if (line.ready !== true) requests.push(line);
    });
    await once(server.stdout!, 'data');
    engine = await startWardend(pair, pair.client, dir, PORT);
  });
  after(() => {
    if (engine?.pid && engine.exitCode === null) process.kill(engine.pid, 'SIGTERM');
    pair.close();
    rmSync(dir, { recursive: true, force: true });
  });

  test('registration, the update check and the crash upload get out; another program does not', async () => {
    const end = Date.now() + 15_000;
    const seen = () => new Set(requests.map((r) => `${r.method} ${r.path}`));
    while (!['POST /enrol', 'GET /feed.json', 'POST /crash'].every((k) => seen().has(k))) {
      assert.ok(Date.now() < end, `requests so far: ${[...seen()].join(', ')}\n${engine!.output()}`);
      await new Promise((r) => setTimeout(r, 50));
    }
    const enrol = JSON.parse(requests.find((r) => r.path === '/enrol')!.body);
    assert.equal(enrol.version, '0.1.0');
    const crash = JSON.parse(requests.find((r) => r.path === '/crash')!.body);
    assert.equal(crash.error.message, 'crash before this start');
    const until = Date.now() + 5000;
    while (pendingReports(join(dir, 'state')).length > 0) {
      assert.ok(Date.now() < until, 'the uploaded report was not deleted');
      await new Promise((r) => setTimeout(r, 50));
    }
    assert.equal(
      JSON.parse(readFileSync(join(dir, 'state/registration.json'), 'utf8')).registrationId,
      'reg-ns',
    );

    const other = pair.run(pair.client, NODE, [
      '-e',
      `const s = require('node:net').connect(${SERVICE_PORT}, '${SERVER_ADDR}');
       s.setTimeout(1500, () => { process.stdout.write('timeout'); process.exit(0); });
       s.on('connect', () => { process.stdout.write('connected'); process.exit(0); });
       s.on('error', (e) => { process.stdout.write(e.code); process.exit(0); });`,
    ]);
    assert.notEqual(other, 'connected', 'another program reaches the service server');
  });
});
