/**
 * The README's main command, `npm start` (scripts/start.sh), run for real inside a namespace: it starts
 * the engine with the safe defaults of a new installation (incoming denied except replies and internal
 * rules; outgoing allowed and logged), prints how to connect a console, and that very command logs in
 * at once with the local token. The packets show the defaults are in force.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { repoRoot } from '../repo-root.js';
import {
  CLIENT_ADDR,
  createNetnsPair,
  kernelTestsUnavailable,
  type NetnsPair,
  SERVER_ADDR,
  tcpConnect,
} from './netns.js';
import { NODE } from './wardend.js';

const root = repoRoot(import.meta.url);
const skip = kernelTestsUnavailable();

/** A TCP server that greets and closes, as a node one-liner. */
const server = (address: string, port: number) =>
  `require('node:net').createServer((s) => s.end('hello')).listen(${port}, '${address}', () => console.log('up'))`;

async function waitFor(read: () => string, text: string, what: string, ms = 15_000): Promise<void> {
  const end = Date.now() + ms;
  while (!read().includes(text)) {
    if (Date.now() > end) throw new Error(`no ${what}: ${read()}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

describe('npm start (scripts/start.sh) on a new installation', { skip }, () => {
  let pair: NetnsPair;
  let dir: string;
  let greeting = '';
  let stdout = '';
  let stderr = '';
  let home: string;

  before(async () => {
    pair = createNetnsPair('main');
    dir = mkdtempSync(join(tmpdir(), 'warden-main-'));
    home = join(dir, 'home');
    const engine = pair.spawn(
      pair.server,
      'bash',
      [join(root, 'scripts/start.sh'), '--config-dir', join(dir, 'etc'), '--state-dir', join(dir, 'state')],
      { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, WARDEN_SKIP_SETUP: '1' } },
    );
    engine.stdout!.on('data', (d) => {
      greeting += d;
      stdout += d;
    });
    engine.stderr!.on('data', (d) => {
      greeting += d;
      stderr += d;
    });
    await waitFor(() => greeting, 'connect a console on this host', 'greeting from npm start');
    for (const [ns, address, port] of [
      [pair.server, SERVER_ADDR, 8080],
      [pair.client, CLIENT_ADDR, 9090],
    ] as const) {
      let out = '';
      pair
        .spawn(ns, NODE, ['-e', server(address, port)], { stdio: ['ignore', 'pipe', 'inherit'] })
        .stdout!.on('data', (d) => (out += d));
      await waitFor(() => out, 'up', `server on ${address}:${port}`, 5000);
    }
  });

  after(() => {
    pair?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  test('says where it listens, what it enforces, and how to connect', () => {
    assert.match(greeting, /listening on port 44334 \(TCP and UDP\)/);
    assert.match(greeting, /fingerprint SHA256(:[0-9A-F]{2}){32}\n/);
    assert.match(greeting, /incoming deny and outgoing allow by default/);
    assert.match(greeting, /enforcing: replies and Warden's internal rules always pass/);
    assert.match(greeting, /remote administration is off/);
  });

  test('the greeting is true to the files: no policy.yaml yet, so it says the defaults are in force', () => {
    const etc = join(dir, 'etc');
    assert.match(
      stdout,
      new RegExp(
        `^policy: the built-in defaults \\(no ${etc}/policy\\.yaml yet; written on the first change\\)`,
        'm',
      ),
    );
    assert.doesNotMatch(stdout, new RegExp(`^policy ${etc}/policy\\.yaml`, 'm'));
    assert.match(stdout, new RegExp(`^state ${join(dir, 'state')} `, 'm'));
  });

  test('the greeting (stdout) holds no log line; the log (stderr, a pipe here) is JSON, after one start line', () => {
    assert.doesNotMatch(stdout, /^\{/m);
    const lines = stderr.trim().split('\n');
    assert.equal(lines[0], 'start: starting wardend (stop with Ctrl-C)');
    for (const line of lines.slice(1)) assert.doesNotThrow(() => JSON.parse(line), line);
    assert.ok(lines.slice(1).some((l) => JSON.parse(l).message === 'engine started'));
  });

  test('the printed console command logs in at once with the local token', () => {
    const line = greeting.split('\n').find((l) => l.startsWith('connect a console on this host'));
    const command = line!.split(':  ')[1]!;
    assert.match(command, /connect 127\.0\.0\.1:44334 --local$/);
    const out = pair.run(pair.server, 'sh', ['-c', `HOME=${home} XDG_CONFIG_HOME= ${command}`]);
    assert.match(out, /Connected to 127\.0\.0\.1:44334 .* as root \(local token\) \(administrator\)/s);
  });

  test('incoming connections are denied, outgoing ones pass and replies come back', () => {
    assert.equal(tcpConnect(pair, pair.client, SERVER_ADDR, 8080), 'timeout', 'incoming to 8080 is dropped');
    assert.equal(tcpConnect(pair, pair.server, CLIENT_ADDR, 9090), 'connected', 'outgoing to 9090 passes');
  });

  test('both decisions are logged', async () => {
    const console = join(root, 'dist/src/console/bin.js');
    const query = (verdict: string) =>
      pair.run(pair.server, 'sh', [
        '-c',
        `HOME=${home} XDG_CONFIG_HOME= WARDEN_LOCAL_TOKEN_FILE=${join(dir, 'state/local-token')} ${NODE} ${console} logs --engine 127.0.0.1:44334 --local --kind connection --verdict ${verdict} --json`,
      ]);
    const end = Date.now() + 5000;
    let denied = '';
    let allowed = '';
    while (Date.now() < end) {
      denied = query('deny');
      allowed = query('allow');
      if (denied.includes(':8080') || denied.includes('8080')) {
        if (allowed.includes('9090')) break;
      }
      await new Promise((r) => setTimeout(r, 200));
    }
    assert.match(denied, /8080/, 'the denied incoming connection is a log item');
    assert.match(allowed, /9090/, 'the allowed outgoing connection is a log item');
  });
});
