/**
 * Lists fetched from a real local HTTPS server (the test certificate, trusted as the engine's CA
 * override): first fetch, refresh, a failed refresh keeps the last good copy, a restart starts from
 * the copy on disk, a list through the proxy, an oversized list refused; and an engine that
 * reports its lists in engine.status and decides with them.
 */
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { EngineClient } from '../../src/client/engine-client.js';
import { Engine } from '../../src/engine/daemon.js';
import { PolicyLists } from '../../src/engine/lists.js';
import { parsePolicyText } from '../../src/policy/parse.js';
import { Methods } from '../../src/protocol/methods.js';
import { type ProxyRoute, parseProxyUrl } from '../../src/settings/proxy.js';
import { eventually, startConnectProxy, startHttpsStandIn, TEST_CA } from '../support/stand-ins.js';

const DIRECT: ProxyRoute = { kind: 'direct', because: 'test' };

function listsFor(
  stateDir: string,
  logs: string[],
  changes: { n: number },
  route = (): ProxyRoute => DIRECT,
) {
  return new PolicyLists({
    stateDir,
    route,
    ca: TEST_CA,
    timeoutMs: 5000,
    log: (level, message) => logs.push(`${level} ${message}`),
    onChange: () => changes.n++,
  });
}

test('a URL list is fetched, refreshed, kept through failed refreshes and restarts, refused when too big', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'warden-lists-'));
  let answer: { status: number; text: string } = {
    status: 200,
    text: '# ads\n0.0.0.0 ads.example.com\n0.0.0.0 track.example.net\nbad line here\n',
  };
  const server = await startHttpsStandIn(() => answer);
  const logs: string[] = [];
  const changes = { n: 0 };
  const policy = parsePolicyText(
    `lists:\n  ads: { url: "${server.url('/hosts.txt')}", format: hosts, refresh: 6h, maxBytes: 4096 }\n`,
  );
  let lists = listsFor(dir, logs, changes);
  try {
    await lists.follow(policy.lists);
    const first = await eventually(() => lists.contents().get('ads'), 5000, 'the first fetch');
    assert.deepEqual([...first.names].sort(), ['ads.example.com', 'track.example.net']);
    let state = lists.states()[0]!;
    assert.equal(state.copy, 'network');
    assert.equal(state.entries, 2);
    assert.equal(state.badLines, 1);
    assert.deepEqual(state.problems, [
      { line: 4, message: '"bad" is not an IP address (a hosts line starts with one)' },
    ]);
    assert.ok(state.nextRefresh !== undefined && Date.parse(state.nextRefresh) > Date.now() + 5 * 3600_000);
    assert.equal(server.requests[0]!.path, '/hosts.txt');
    // The last good copy is on disk, owner-only, with the URL it came from.
    const copy = join(dir, 'lists', 'list-ads.txt');
    assert.equal(readFileSync(copy, 'utf8'), answer.text);
    assert.equal(
      JSON.parse(readFileSync(join(dir, 'lists', 'list-ads.json'), 'utf8')).url,
      server.url('/hosts.txt'),
    );

    // A refresh takes the new text.
    answer = { status: 200, text: '0.0.0.0 new.example.org\n' };
    await lists.refresh('ads');
    assert.deepEqual([...lists.contents().get('ads')!.names], ['new.example.org']);
    const changesBefore = changes.n;
    // The same text again is fetched and recorded, but changes nothing in force (no recompile, no
    // kernel reload, no new verdict cache generation for a refresh that brought nothing new).
    const sameContent = lists.contents().get('ads');
    await lists.refresh('ads');
    assert.equal(changes.n, changesBefore, 'an unchanged text is no change');
    assert.equal(lists.contents().get('ads'), sameContent);
    assert.equal(lists.states()[0]!.lastError, undefined);

    // A failed refresh (server error, then an oversized answer) keeps the last good copy.
    answer = { status: 500, text: 'down' };
    await lists.refresh('ads');
    state = lists.states()[0]!;
    assert.deepEqual([...lists.contents().get('ads')!.names], ['new.example.org']);
    assert.match(state.lastError ?? '', /HTTP 500/);
    assert.equal(state.copy, 'network');
    // Retried soon (a minute), not after the 6 h interval; then backing off.
    const retryIn = (st: { nextRefresh?: string }) => Date.parse(st.nextRefresh ?? '') - Date.now();
    assert.ok(Math.abs(retryIn(state) - 60_000) < 10_000, `retry in ${retryIn(state)} ms`);
    answer = { status: 200, text: `0.0.0.0 ${'x'.repeat(5000)}.example.com\n` };
    await lists.refresh('ads');
    assert.match(lists.states()[0]!.lastError ?? '', /larger than 4096 bytes/);
    assert.ok(
      Math.abs(retryIn(lists.states()[0]!) - 120_000) < 10_000,
      'the second retry waits twice as long',
    );
    assert.deepEqual([...lists.contents().get('ads')!.names], ['new.example.org']);
    assert.equal(changes.n, changesBefore, 'a failed refresh changes nothing in force');
    assert.equal(readFileSync(copy, 'utf8'), '0.0.0.0 new.example.org\n');
    assert.ok(
      logs.some((l) => /^warn list-ads: .*HTTP 500.*the copy of .* \(network\) stays in force/.test(l)),
      logs.join('\n'),
    );

    // A restart while the server is down: the copy on disk is in force before any fetch.
    lists.stop();
    answer = { status: 503, text: '' };
    lists = listsFor(dir, logs, changes);
    await lists.follow(policy.lists);
    assert.deepEqual([...lists.contents().get('ads')!.names], ['new.example.org']);
    assert.equal(lists.states()[0]!.copy, 'last good copy');
    await eventually(() => lists.states()[0]!.lastError, 5000, 'the failed fetch after the restart');
    assert.deepEqual([...lists.contents().get('ads')!.names], ['new.example.org']);

    // A copy fetched from another URL is not taken for this list.
    lists.stop();
    lists = listsFor(dir, logs, changes);
    await lists.follow(
      parsePolicyText(`lists:\n  ads: { url: "${server.url('/other.txt')}", format: hosts }\n`).lists,
    );
    assert.equal(lists.contents().get('ads'), undefined);
    assert.equal(lists.states()[0]!.copy, 'none');
  } finally {
    lists.stop();
    await server.close();
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a URL list goes through the proxy the settings name', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'warden-lists-'));
  const server = await startHttpsStandIn(() => ({ status: 200, text: '203.0.113.0/24\n2001:db8::/48\n' }));
  const proxy = await startConnectProxy();
  const parsed = parseProxyUrl(proxy.url)!;
  const lists = listsFor(dir, [], { n: 0 }, () => ({ kind: 'proxy', ...parsed, because: 'test' }));
  try {
    await lists.follow(
      parsePolicyText(`lists:\n  nets: { url: "${server.url('/n')}", format: ips }\n`).lists,
    );
    const nets = await eventually(() => lists.contents().get('nets'), 5000, 'the fetch through the proxy');
    assert.equal(nets.entries, 2);
    assert.equal(proxy.tunnels.length, 1);
    assert.match(proxy.tunnels[0]!, /^127\.0\.0\.1:\d+$/);
  } finally {
    lists.stop();
    await proxy.close();
    await server.close();
    rmSync(dir, { recursive: true, force: true });
  }
});

test('an engine reports its lists in engine.status, and explain decides with their content', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'warden-lists-engine-'));
  const configDir = join(dir, 'etc');
  const stateDir = join(dir, 'state');
  mkdirSync(configDir);
  let adsText = 'tracker.example.com\n';
  const server = await startHttpsStandIn(() => ({ status: 200, text: adsText }));
  const file = join(dir, 'nets.txt');
  writeFileSync(file, '198.51.100.0/24\nnot-an-address\n');
  writeFileSync(
    join(configDir, 'policy.yaml'),
    `lists:
  ads: { url: "${server.url('/d.txt')}", format: domains }
  nets: { file: ${file}, format: ips }
rules:
  - { name: no trackers, direction: outgoing, remote: "list:ads", action: deny }
  - { name: no nets, direction: outgoing, remote: "list:nets", action: reject }
`,
  );
  const engine = await Engine.start({
    configDir,
    stateDir,
    port: 0,
    bindAddress: '127.0.0.1',
    services: { ca: TEST_CA, popupPort: 0 },
  });
  try {
    const client = await EngineClient.connect({
      host: '127.0.0.1',
      port: engine.server.port,
      verifyFingerprint: async (fp) => assert.equal(fp, engine.identity.fingerprint),
      timeoutMs: 5000,
    });
    await client.login({ localToken: readFileSync(join(stateDir, 'local-token'), 'utf8').trim() });
    let status = await client.call(Methods.status, {});
    for (let until = Date.now() + 5000; status.lists?.find((l) => l.name === 'ads')?.copy !== 'network'; ) {
      assert.ok(Date.now() < until, 'the fetched list in engine.status');
      await new Promise((r) => setTimeout(r, 50));
      status = await client.call(Methods.status, {});
    }
    const byName = Object.fromEntries((status.lists ?? []).map((l) => [l.name, l]));
    assert.equal(byName.ads!.entries, 1);
    assert.equal(byName.nets!.copy, 'file');
    assert.equal(byName.nets!.badLines, 1);
    assert.equal(byName.nets!.problems[0]!.line, 2);
    const explained = await client.call(Methods.explain, {
      direction: 'outgoing',
      protocol: 'tcp',
      remoteAddress: '192.0.2.10',
      remotePort: 443,
      hosts: ['cdn.tracker.example.com'],
    } as never);
    assert.equal((explained.decision as { ruleName: string }).ruleName, 'no trackers');
    const viaNets = await client.call(Methods.explain, {
      direction: 'outgoing',
      protocol: 'tcp',
      remoteAddress: '198.51.100.20',
      remotePort: 443,
      hosts: [],
    } as never);
    assert.equal((viaNets.decision as { ruleName: string }).ruleName, 'no nets');
    assert.ok(existsSync(join(stateDir, 'lists', 'list-ads.txt')));

    // lists.refresh fetches now (not at the 1 h default interval); the answer is the state after it.
    adsText = 'tracker.example.com\nmetrics.example.net\n';
    const refreshed = await client.call(Methods.listsRefresh, { name: 'ads' });
    assert.equal(refreshed.done, true);
    assert.equal(refreshed.list.entries, 2);
    assert.equal(refreshed.list.copy, 'network');
    const viaNew = await client.call(Methods.explain, {
      direction: 'outgoing',
      protocol: 'tcp',
      remoteAddress: '192.0.2.11',
      remotePort: 443,
      hosts: ['metrics.example.net'],
    } as never);
    assert.equal((viaNew.decision as { ruleName: string }).ruleName, 'no trackers');
    // A file list is read again; a name the policy does not have is refused naming it.
    writeFileSync(file, '198.51.100.0/24\n203.0.113.0/24\n');
    const reread = await client.call(Methods.listsRefresh, { name: 'nets' });
    assert.deepEqual([reread.list.entries, reread.list.badLines], [2, 0]);
    await assert.rejects(
      client.call(Methods.listsRefresh, { name: 'nope' }),
      (e: Error & { code?: string }) => {
        assert.equal(e.code, 'WARDEN_E_NOT_FOUND');
        assert.match(e.message, /no list named "nope"/);
        return true;
      },
    );
    client.close();
  } finally {
    await engine.stop();
    await server.close();
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a list name as long as the policy allows (64 characters) is followed like any other', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'warden-lists-long-'));
  const file = join(dir, 'nets.txt');
  writeFileSync(file, '198.51.100.0/24\n');
  const name = `n${'x'.repeat(63)}`;
  const lists = listsFor(join(dir, 'state'), [], { n: 0 });
  try {
    const policy = parsePolicyText(`lists:\n  ${name}: { file: ${file}, format: ips }\n`);
    await lists.follow(policy.lists);
    assert.equal(lists.contents().get(name)?.entries, 1);
  } finally {
    lists.stop();
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a file list may be a directory: its files are read in name order, as OpenSnitch keeps lists', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'warden-lists-dir-'));
  const listDir = join(dir, 'ads');
  mkdirSync(listDir);
  writeFileSync(join(listDir, 'b.txt'), '0.0.0.0 b.example.com');
  writeFileSync(join(listDir, 'a.txt'), '0.0.0.0 a.example.com\n0.0.0.0');
  writeFileSync(join(listDir, '.hidden'), '0.0.0.0 hidden.example.com\n');
  const lists = listsFor(join(dir, 'state'), [], { n: 0 });
  try {
    await lists.follow(parsePolicyText(`lists:\n  ads: { file: ${listDir}, format: hosts }\n`).lists);
    const ads = lists.contents().get('ads')!;
    assert.deepEqual([...ads.names], ['a.example.com', 'b.example.com']);
    const state = lists.states()[0]!;
    assert.equal(state.copy, 'file');
    assert.equal(state.badLines, 1, 'the unfinished last line of a.txt is its own bad line');
  } finally {
    lists.stop();
    rmSync(dir, { recursive: true, force: true });
  }
});
