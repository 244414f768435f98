import assert from 'node:assert/strict';
import { test } from 'node:test';
import { WardenMetrics } from '../metrics/warden.js';
import { compilePolicy, parsePolicyText } from '../policy/index.js';
import type { NewLogItem } from '../protocol/log-item.js';
import { AskDesk } from './asks.js';
import { Enforcer, type ProcessInfo } from './enforcer.js';

const POLICY = `
version: 1
mode: enforce
defaults:
  incoming: { action: deny, log: true }
  outgoing: { action: deny, log: true }
rules:
  - { name: curl to web, direction: outgoing, protocol: tcp, application: /usr/bin/curl, remotePorts: 8000, action: allow }
  - { name: no port 81, direction: outgoing, protocol: tcp, remotePorts: 81, action: reject }
  - { name: ask for 82, direction: outgoing, protocol: tcp, remotePorts: 82, action: ask }
  - { name: engine out, direction: outgoing, protocol: tcp, application: /usr/lib/warden/wardend, action: allow, log: true }
  - { name: to example.org, direction: outgoing, protocol: tcp, remote: example.org, action: allow }
`;

const executables = {
  engine: '/usr/lib/warden/wardend',
  console: '/usr/lib/warden/warden',
  assistant: '/usr/lib/warden/warden-assist',
};

function setup(
  processes: Record<number, ProcessInfo | null>,
  consoles = 0,
  metrics?: WardenMetrics,
  policyText = POLICY,
) {
  const policy = compilePolicy(parsePolicyText(policyText, { file: 'test.yaml' }));
  const logged: NewLogItem[] = [];
  const events: string[] = [];
  const asks = new AskDesk({ timeoutMs: () => 50, consoles: () => consoles, notify: () => {} });
  const enforcer = new Enforcer({
    policy: () => policy,
    identify: async (t) => {
      events.push(`identify ${t.sourcePort}`);
      return processes[t.sourcePort ?? 0] ?? null;
    },
    hostsOf: (a) => (a === '10.200.0.9' ? ['example.org'] : []),
    asks,
    log: (i) => logged.push(i),
    executables,
    now: () => Date.parse('2026-11-23T12:00:00Z'),
    ...(metrics ? { metrics } : {}),
  });
  return { enforcer, logged, asks, events };
}

const tcp = (sourcePort: number, destinationPort: number, destination = '10.200.0.2') => ({
  protocol: 'tcp' as const,
  source: '10.200.0.1',
  destination,
  sourcePort,
  destinationPort,
});

test('the same destination: curl is allowed, another program is denied and logged with its identity', async () => {
  const { enforcer, logged } = setup({
    1000: { pid: 10, executable: '/usr/bin/curl', uid: 0, user: 'root' },
    1001: { pid: 11, executable: '/usr/bin/python3.11', uid: 65534, user: 'nobody' },
  });
  assert.equal((await enforcer.judge(tcp(1000, 8000), 'outgoing')).verdict, 'accept');
  const denied = await enforcer.judge(tcp(1001, 8000), 'outgoing');
  assert.equal(denied.verdict, 'drop');
  assert.equal(denied.decision.ruleName, 'default outgoing');
  assert.equal(logged.length, 1, 'the silent allow is not logged; the block is');
  assert.deepEqual(logged[0], {
    kind: 'connection',
    verdict: 'deny',
    direction: 'outgoing',
    protocol: 'tcp',
    application: '/usr/bin/python3.11',
    local: '10.200.0.1:1001',
    remote: '10.200.0.2:8000',
    rule: 'default outgoing',
    user: 'nobody',
    message: 'deny by default outgoing (pid 11)',
  });
});

test('reject becomes the reject verdict; an unattributed process is judged as unknown', async () => {
  const { enforcer, logged } = setup({});
  const r = await enforcer.judge(tcp(2000, 81), 'outgoing', 1000);
  assert.equal(r.verdict, 'reject');
  assert.equal(r.facts.application, null);
  assert.equal(r.facts.uid, 1000, 'the uid the kernel gave is used when the process is gone');
  assert.equal(logged[0]!.user, '1000');
});

test("Warden's own parts are known by their part, and a script on a command line alone is no part", async () => {
  const { enforcer } = setup({
    3000: { pid: 12, executable: '/usr/bin/node', script: '/usr/lib/warden/wardend', uid: 0, part: 'engine' },
    3001: { pid: 13, executable: '/usr/bin/node', script: '/home/u/other.js', uid: 0 },
    3002: { pid: 14, executable: '/usr/bin/node', script: '/usr/lib/warden/wardend', uid: 65534 },
  });
  assert.equal((await enforcer.judge(tcp(3000, 9999), 'outgoing')).decision.ruleName, 'engine out');
  assert.equal((await enforcer.judge(tcp(3001, 9999), 'outgoing')).facts.application, '/usr/bin/node');
  const named = await enforcer.judge(tcp(3002, 9999), 'outgoing');
  assert.equal(
    named.facts.application,
    '/usr/bin/node',
    "naming the engine's script does not make the engine",
  );
  assert.equal(named.verdict, 'drop');
});

test('host-name rules match through the names the engine resolved', async () => {
  const { enforcer } = setup({});
  assert.equal((await enforcer.judge(tcp(4000, 443, '10.200.0.9'), 'outgoing')).verdict, 'accept');
  assert.equal((await enforcer.judge(tcp(4001, 443, '10.200.0.8'), 'outgoing')).verdict, 'drop');
});

test('ask with nobody to answer falls to the default; an answered ask uses the answer', async () => {
  const lonely = setup({});
  const r = await lonely.enforcer.judge(tcp(5000, 82), 'outgoing');
  assert.equal(r.verdict, 'drop');
  assert.equal(lonely.logged[0]!.verdict, 'ask');
  assert.match(lonely.logged[0]!.message, /no answer in time, default deny/);

  const watched = setup({ 5001: { pid: 20, executable: '/usr/bin/curl', uid: 0 } }, 1);
  const pending = watched.enforcer.judge(tcp(5001, 82), 'outgoing');
  await new Promise((r) => setImmediate(r));
  const [prompt] = watched.asks.list();
  assert.equal(prompt!.application, '/usr/bin/curl');
  assert.equal(prompt!.rule, 'ask for 82');
  await watched.asks.answer(
    { id: prompt!.id, verdict: 'allow', duration: 'once', minutes: 60, scope: 'application' },
    { user: 'alice', source: '127.0.0.1' },
    { names: () => new Set(), add: async () => 'unused' },
  );
  assert.equal((await pending).verdict, 'accept');
  assert.match(watched.logged[0]!.message, /alice answered allow/);
});

test('every decision is counted by its final verdict, with its latency in the histogram', async () => {
  const metrics = new WardenMetrics();
  const { enforcer } = setup({ 1000: { pid: 10, executable: '/usr/bin/curl', uid: 0 } }, 0, metrics);
  await enforcer.judge(tcp(1000, 8000), 'outgoing'); // allow
  await enforcer.judge(tcp(1001, 8000), 'outgoing'); // deny (default)
  await enforcer.judge(tcp(1002, 81), 'outgoing'); // reject
  await enforcer.judge(tcp(1003, 82), 'outgoing'); // ask, nobody answers: the default denies
  assert.deepEqual(Object.fromEntries(Object.entries(metrics.decisions).map(([k, c]) => [k, c.value])), {
    allow: 1,
    deny: 2,
    reject: 1,
  });
  assert.equal(metrics.queueLatency.count, 4);
  const text = metrics.render();
  assert.match(text, /^warden_decisions_total\{verdict="deny"\} 2$/m);
  assert.match(text, /^warden_queue_latency_seconds_count 4$/m);
  assert.match(text, /^warden_queue_latency_seconds_bucket\{le="\+Inf"\} 4$/m);
});

test('an unlogged decision no process can change is made without attribution', async () => {
  const policy = `
version: 1
mode: enforce
defaults:
  incoming: { action: deny, log: true }
  outgoing: { action: allow, log: false }
rules:
  - { name: no telnet, direction: outgoing, protocol: tcp, remotePorts: 23, action: deny }
  - { name: web quietly, direction: outgoing, protocol: tcp, remotePorts: 443, action: allow }
  - { name: curl logged, direction: outgoing, protocol: tcp, application: /usr/bin/curl, remotePorts: 8443, action: allow, log: true }
`;
  const { enforcer, events, logged } = setup(
    { 6000: { pid: 60, executable: '/usr/bin/curl', uid: 0 } },
    0,
    undefined,
    policy,
  );
  const quiet = await enforcer.judge(tcp(6000, 443), 'outgoing', 0);
  assert.equal(quiet.verdict, 'accept');
  assert.equal(quiet.process, null);
  assert.equal((await enforcer.judge(tcp(6000, 80), 'outgoing', 0)).verdict, 'accept'); // the unlogged default
  assert.deepEqual(events, [], 'no attribution for either');
  assert.equal(logged.length, 0);
  // A block is always logged (with its program); a program rule could match 8443: both attribute.
  assert.equal((await enforcer.judge(tcp(6000, 23), 'outgoing', 0)).verdict, 'drop');
  assert.equal((await enforcer.judge(tcp(6000, 8443), 'outgoing', 0)).verdict, 'accept');
  assert.deepEqual(events, ['identify 6000', 'identify 6000']);
  assert.deepEqual(
    logged.map((i) => i.application),
    ['/usr/bin/curl', '/usr/bin/curl'],
  );
});

test('rules by user, asks and learning proposals need the process', async () => {
  const byUser = `
version: 1
mode: enforce
defaults:
  incoming: { action: deny, log: true }
  outgoing: { action: allow, log: false }
rules:
  - { name: nobody stays home, direction: outgoing, protocol: tcp, user: nobody, action: deny }
  - { name: ask for 82, direction: outgoing, protocol: tcp, remotePorts: 82, action: ask }
`;
  const a = setup(
    { 6004: { pid: 64, executable: '/usr/bin/curl', uid: 65534, user: 'nobody' } },
    0,
    undefined,
    byUser,
  );
  assert.equal((await a.enforcer.judge(tcp(6004, 443), 'outgoing', 65534)).verdict, 'drop');
  assert.equal((await a.enforcer.judge(tcp(6004, 82), 'outgoing', 65534)).verdict, 'drop');
  assert.deepEqual(a.events, ['identify 6004', 'identify 6004']);
  const learning = `
version: 1
mode: learning
defaults:
  incoming: { action: deny, log: true }
  outgoing: { action: ask, log: false }
rules: []
`;
  const b = setup({ 6005: { pid: 65, executable: '/usr/bin/curl', uid: 0 } }, 0, undefined, learning);
  const j = await b.enforcer.judge(tcp(6005, 443), 'outgoing', 0);
  assert.equal(j.decision.proposal?.application, '/usr/bin/curl');
  assert.deepEqual(b.events, ['identify 6005']);
});
