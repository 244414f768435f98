/**
 * sha256-pinned rules with real packets: `wardend run` in the client namespace allows a copy of
 * curl by a rule pinned to its hash; once the file is replaced by another binary the pinned rule no
 * longer matches (the default denies, the log item names the change, a security item says no
 * package vouches for it); when a (fake) dpkg database then records the new file's checksum, the
 * engine re-pins the rule itself as an audited policy version, and the first connection after that
 * (the one that finds the change) is already allowed by the re-pinned rule.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { once } from 'node:events';
import {
  chmodSync,
  copyFileSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  renameSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { fixture } from './fixture-process.js';
import { createNetnsPair, kernelTestsUnavailable, type NetnsPair, SERVER_ADDR } from './netns.js';
import { NODE, startWardend } from './wardend.js';

const skip =
  kernelTestsUnavailable() ??
  (existsSync('/usr/bin/curl') ? undefined : 'needs curl (scripts/setup.sh installs it)');
const PORT = 44336;
const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');
const md5 = (b: Buffer) => createHash('md5').update(b).digest('hex');

type Item = { kind: string; verdict?: string; rule?: string; message: string; user?: string };

describe('sha256-pinned rules in a namespace', { skip }, () => {
  let pair: NetnsPair;
  let dir: string;
  let curlCopy: string;
  let original: Buffer;
  let engine: Awaited<ReturnType<typeof startWardend>> | undefined;
  const saved = process.env.WARDEN_DPKG_ADMINDIR;

  const curl = (seconds = 2): string => {
    try {
      return pair.run(pair.client, curlCopy, ['-s', '-m', String(seconds), `http://${SERVER_ADDR}:8000/`]);
    } catch (e) {
      return `curl failed: ${(e as Error).message.split('\n')[0]}`;
    }
  };
  const logs = async (q: Record<string, unknown>): Promise<Item[]> => {
    const c = fixture(pair, pair.client, 'local-console.js', [String(PORT), join(dir, 'state/local-token')]);
    await c.next((l) => l.event === 'ready', 'ready');
    c.send(JSON.stringify({ id: 1, method: 'logs.query', params: { limit: 200, ...q } }));
    const { result } = await c.next((l) => l.id === 1, 'log items');
    return (result as { items: Item[] }).items;
  };

  before(async () => {
    pair = createNetnsPair('p');
    dir = mkdtempSync(join(tmpdir(), 'warden-pin-'));
    chmodSync(dir, 0o755);
    mkdirSync(join(dir, 'etc'));
    mkdirSync(join(dir, 'bin'));
    curlCopy = join(dir, 'bin', 'curl');
    copyFileSync('/usr/bin/curl', curlCopy);
    original = readFileSync(curlCopy);
    writeFileSync(
      join(dir, 'etc/policy.yaml'),
      `
version: 1
defaults:
  incoming: { action: deny, log: true }
  outgoing: { action: deny, log: true }
rules:
  - { name: test console, direction: outgoing, protocol: tcp, application: ${NODE}, remote: localhost, remotePorts: ${PORT}, action: allow }
  - { name: pinned curl, direction: outgoing, protocol: tcp, application: ${curlCopy}, sha256: ${sha256(original)}, remotePorts: 8000, action: allow }
`,
    );
    const server = pair.spawn(pair.server, NODE, [
      '-e',
      `require('node:http').createServer((q, r) => r.end('ok')).listen(8000, () => console.log('ready'));`,
    ]);
    await once(server.stdout!, 'data');
    process.env.WARDEN_DPKG_ADMINDIR = join(dir, 'dpkg'); // none yet: no package owns anything
    engine = await startWardend(pair, pair.client, dir, PORT);
  });
  after(() => {
    if (saved === undefined) delete process.env.WARDEN_DPKG_ADMINDIR;
    else process.env.WARDEN_DPKG_ADMINDIR = saved;
    if (engine?.pid && engine.exitCode === null) process.kill(engine.pid, 'SIGTERM');
    pair.close();
    rmSync(dir, { recursive: true, force: true });
  });

  test('the pinned file connects; a replaced file does not, and the log names the change', async () => {
    assert.equal(curl(), 'ok');
    // Another build of the program at the same path (trailing bytes: it still runs).
    const next = join(dir, 'bin', 'curl.new');
    writeFileSync(next, Buffer.concat([original, Buffer.from('\nanother build\n')]), { mode: 0o755 });
    renameSync(next, curlCopy);
    const replaced = readFileSync(curlCopy);
    assert.match(curl(), /^curl failed/);
    const items = await logs({});
    const denied = items.find(
      (i) =>
        i.kind === 'connection' &&
        i.verdict === 'deny' &&
        i.rule === 'default outgoing' &&
        i.message.includes('pinned curl'),
    );
    assert.ok(denied, JSON.stringify(items));
    assert.match(
      denied.message,
      new RegExp(
        `rule "pinned curl" not applied: pinned sha256 ${sha256(original).slice(0, 12)}… but ${curlCopy} is now ${sha256(replaced).slice(0, 12)}…`,
      ),
    );
    const security = items.find((i) => i.kind === 'security' && i.message.includes('not re-pinned'));
    assert.match(security?.message ?? JSON.stringify(items), /belongs to no Debian package/);
    assert.ok(readFileSync(join(dir, 'etc/policy.yaml'), 'utf8').includes(sha256(original)));
  });

  test('a package that vouches for the new file: the engine re-pins the rule and the program connects', async () => {
    const replaced = readFileSync(curlCopy);
    const info = join(dir, 'dpkg', 'info');
    mkdirSync(info, { recursive: true });
    writeFileSync(join(info, 'curl-copy.list'), `/.\n${join(dir, 'bin')}\n${curlCopy}\n`);
    writeFileSync(join(info, 'curl-copy.md5sums'), `${md5(replaced)}  ${curlCopy.slice(1)}\n`);
    writeFileSync(
      join(dir, 'dpkg', 'status'),
      'Package: curl-copy\nStatus: install ok installed\nArchitecture: amd64\nVersion: 8.5.0-2+test1\n',
    );
    // The very connection that finds the change waits for the re-pin (bounded) and is decided by it:
    // a package update keeps its rules from the first connection on. (Decided before the re-pin, its
    // first SYN would be dropped and only the retransmitted one allowed: a deny in the log.)
    const denials = async () =>
      (await logs({ kind: 'connection', verdict: 'deny' })).filter((i) => i.message.includes('pinned curl'))
        .length;
    const deniedBefore = await denials();
    assert.equal(curl(10), 'ok');
    assert.equal(await denials(), deniedBefore, 'no connection of the updated program was denied');
    assert.ok(readFileSync(join(dir, 'etc/policy.yaml'), 'utf8').includes(sha256(replaced)));
    const audit = (await logs({ kind: 'admin' })).find((i) => i.user === 'engine');
    assert.match(
      audit?.message ?? 'no audit item by engine',
      /rule "pinned curl" re-pinned from sha256 .* package curl-copy 8\.5\.0-2\+test1 \(its md5sums match\)/,
    );
  });
});
