/**
 * The compiled ruleset in a real kernel, with real packets between two throwaway namespaces:
 * kernel deny / reject / allow, CIDRs and port ranges, incoming rules, the queue path with and
 * without --queue-bypass, and the guarantee that other tables survive apply, re-apply and remove.
 */
import assert from 'node:assert/strict';
import { createInterface } from 'node:readline';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { nativeAvailable } from '../../src/kernel/native.js';
import { applyRuleset, detectKernelFeatures, removeRuleset, verifyRuleset } from '../../src/kernel/nft.js';
import { compileRuleset } from '../../src/kernel/ruleset.js';
import { compilePolicy, validatePolicy } from '../../src/policy/index.js';
import { NOW } from '../../src/policy/testing/arbitraries.js';
import { validateSettings } from '../../src/settings/index.js';
import { createNetnsPair, kernelTestsUnavailable, listenOn, type NetnsPair, SERVER_ADDR } from './netns.js';

const skip = kernelTestsUnavailable();
const AGENT = fileURLToPath(new URL('./fixtures/kernel-agent.js', import.meta.url));
const PORTS = [8001, 8002, 8003, 8004, 8005, 8006, 8007, 8008];

function compile(policy: unknown, settings: unknown = {}) {
  const s = validateSettings(settings);
  return compileRuleset({
    policy: compilePolicy(validatePolicy(policy), { settings: s }),
    settings: s,
    now: NOW,
  });
}

/** Connects from the client namespace; 'connected', 'refused' or 'timeout' (after `ms`). */
function connect(pair: NetnsPair, port: number, ms = 400): string {
  return pair
    .run(pair.client, process.execPath, [
      '-e',
      `const s = require('node:net').connect(${port}, '${SERVER_ADDR}');
     const t = setTimeout(() => { console.log('timeout'); process.exit(0); }, ${ms});
     s.on('connect', () => { console.log('connected'); process.exit(0); });
     s.on('error', (e) => { console.log(e.code === 'ECONNREFUSED' ? 'refused' : e.code); process.exit(0); });`,
    ])
    .trim();
}

const CLIENT_POLICY = {
  mode: 'enforce',
  defaults: { incoming: { action: 'deny', log: false }, outgoing: { action: 'allow', log: false } },
  rules: [
    { name: 'deny', direction: 'outgoing', protocol: 'tcp', remotePorts: 8001, action: 'deny' },
    { name: 'reject', direction: 'outgoing', protocol: 'tcp', remotePorts: 8002, action: 'reject' },
    { name: 'allow', direction: 'outgoing', protocol: 'tcp', remotePorts: 8003, action: 'allow', log: true },
    {
      name: 'cidr range',
      direction: 'outgoing',
      protocol: 'tcp',
      remote: '10.200.0.0/24',
      remotePorts: '8005-8006',
      action: 'deny',
    },
    { name: 'other net', direction: 'outgoing', protocol: 'tcp', remote: '10.9.0.0/16', action: 'deny' },
    {
      name: 'app',
      direction: 'outgoing',
      protocol: 'tcp',
      application: '/usr/bin/curl',
      remotePorts: 8007,
      action: 'deny',
    },
  ],
};

describe('ruleset in the kernel', { skip }, () => {
  let pair: NetnsPair;
  before(async () => {
    pair = createNetnsPair('nf');
    await listenOn(pair, pair.server, PORTS);
  });
  after(() => pair?.close());

  test('outgoing: deny times out, reject is refused, allow and CIDR/port-range rules decide, established replies pass', async () => {
    const target = { netns: pair.path(pair.client) };
    await applyRuleset(compile(CLIENT_POLICY), target);
    try {
      assert.equal(connect(pair, 8001), 'timeout');
      const started = performance.now();
      assert.equal(connect(pair, 8002), 'refused');
      assert.ok(performance.now() - started < 1000);
      // Default incoming deny in the client: the server's SYN-ACK is an established reply and passes.
      assert.equal(connect(pair, 8003), 'connected');
      assert.equal(connect(pair, 8004), 'connected');
      assert.equal(connect(pair, 8005), 'timeout');
      assert.equal(connect(pair, 8006), 'timeout');
      assert.equal(connect(pair, 8008), 'connected');
    } finally {
      await removeRuleset(target);
    }
  });

  test('a rule that needs the application is queued: open bypasses with no listener, closed drops', async () => {
    const target = { netns: pair.path(pair.client) };
    try {
      await applyRuleset(compile(CLIENT_POLICY), target);
      const counters = pair.run(pair.client, 'iptables-nft', [
        '-t',
        'security',
        '-L',
        'WARDEN-QUEUE',
        '-v',
        '-x',
        '-n',
      ]);
      assert.match(counters, /NFQUEUE num 0 bypass/);
      assert.equal(connect(pair, 8007), 'connected');
      const after = pair.run(pair.client, 'iptables-nft', [
        '-t',
        'security',
        '-L',
        'WARDEN-QUEUE',
        '-v',
        '-x',
        '-n',
      ]);
      assert.match(
        after,
        /^\s*[1-9]\d*\s+\d+\s+NFQUEUE/m,
        `the SYN carried MARK_QUEUE and was queued:\n${after}`,
      );
      await applyRuleset(compile(CLIENT_POLICY, { enforcement: { onEngineFailure: 'closed' } }), target);
      assert.equal(connect(pair, 8007), 'timeout');
      assert.equal(connect(pair, 8008), 'connected');
    } finally {
      await removeRuleset(target);
    }
  });

  test('incoming rules in the server namespace: allowed port connects, default deny drops', async () => {
    const target = { netns: pair.path(pair.server) };
    const policy = {
      defaults: { incoming: { action: 'deny', log: false }, outgoing: { action: 'allow', log: false } },
      rules: [
        { name: 'svc', direction: 'incoming', protocol: 'tcp', localPorts: 8001, action: 'allow' },
        { name: 'refuse', direction: 'incoming', protocol: 'tcp', localPorts: 8003, action: 'reject' },
      ],
    };
    try {
      await applyRuleset(compile(policy), target);
      assert.equal(connect(pair, 8001), 'connected');
      assert.equal(connect(pair, 8002), 'timeout');
      assert.equal(connect(pair, 8003), 'refused');
    } finally {
      await removeRuleset(target);
    }
    assert.equal(connect(pair, 8002), 'connected');
  });

  test('other tables survive apply, re-apply and remove; apply is idempotent; verify sees a deleted chain', async () => {
    const target = { netns: pair.path(pair.client) };
    const ns = pair.client;
    pair.run(
      ns,
      'nft',
      ['-f', '-'],
      'table inet other {\n\tchain c {\n\t\ttype filter hook output priority 0;\n\t\ttcp dport 7777 counter accept\n\t}\n}\n',
    );
    pair.run(ns, 'iptables-nft', ['-A', 'OUTPUT', '-p', 'tcp', '--dport', '7778', '-j', 'ACCEPT']);
    // Someone else's rule in the IPv6 security table, where Warden's queue chain goes too.
    const securityRule = ['-t', 'security', '-A', 'OUTPUT', '-p', 'tcp', '--dport', '7779', '-j', 'ACCEPT'];
    pair.run(ns, 'ip6tables-nft', securityRule);
    const others = () => [
      pair.run(ns, 'nft', ['list', 'table', 'inet', 'other']).includes('tcp dport 7777'),
      pair.run(ns, 'iptables-nft', ['-S', 'OUTPUT']).includes('--dport 7778 -j ACCEPT'),
      pair.run(ns, 'ip6tables-nft', ['-t', 'security', '-S', 'OUTPUT']).includes('--dport 7779 -j ACCEPT'),
    ];
    try {
      const compiled = compile(CLIENT_POLICY);
      await applyRuleset(compiled, target);
      // Stateless listings (-s): counters move with whatever the namespace sends (IPv6 neighbour discovery).
      assert.deepEqual(others(), [true, true, true]);
      // A table replaced in place moves to the end of the listing: compare the tables, not their order.
      const ruleset = () =>
        pair
          .run(ns, 'nft', ['-s', 'list', 'ruleset'])
          .split(/^(?=table )/m)
          .sort()
          .join('');
      const first = ruleset();
      const firstQueue = pair.run(ns, 'iptables-nft-save', []);
      await applyRuleset(compiled, target);
      assert.equal(ruleset(), first, 'a second apply changes nothing');
      assert.equal(
        pair.run(ns, 'iptables-nft-save', []).replace(/^#.*\n/gm, ''),
        firstQueue.replace(/^#.*\n/gm, ''),
      );
      assert.deepEqual(await verifyRuleset(compiled, target), { ok: true, problems: [] });
      // Traffic fills the dynamic sets (UDP flow owners, flood buckets): not a difference.
      pair.run(ns, 'nft', [
        'add',
        'element',
        'inet',
        'warden',
        'udp_owner4',
        '{ 10.200.0.1 . 5000 . 10.200.0.2 . 53 . 0 }',
      ]);
      assert.deepEqual(await verifyRuleset(compiled, target), { ok: true, problems: [] });
      pair.run(ns, 'nft', ['delete', 'chain', 'inet', 'warden', 'reject_input']);
      const v = await verifyRuleset(compiled, target);
      assert.equal(v.ok, false);
      assert.deepEqual(v.problems, ['chain reject_input is missing']);
      await applyRuleset(compile({ rules: [] }), target);
      assert.deepEqual(others(), [true, true, true]);
      await removeRuleset(target);
      assert.deepEqual(others(), [true, true, true]);
      assert.doesNotMatch(pair.run(ns, 'nft', ['list', 'tables']), /warden/);
      assert.doesNotMatch(pair.run(ns, 'iptables-nft-save', []), /WARDEN/);
      assert.doesNotMatch(pair.run(ns, 'ip6tables-nft-save', []), /WARDEN/);
      const tables = pair.run(ns, 'nft', ['list', 'tables']);
      assert.doesNotMatch(tables, /table ip security/, 'the IPv4 security table only held the queue chain');
      assert.match(tables, /table ip6 security/, "the IPv6 one holds someone else's rule");
      await removeRuleset(target); // idempotent
    } finally {
      await removeRuleset(target);
      pair.run(ns, 'nft', ['delete', 'table', 'inet', 'other']);
      pair.run(ns, 'iptables-nft', ['-D', 'OUTPUT', '-p', 'tcp', '--dport', '7778', '-j', 'ACCEPT']);
      pair.run(
        ns,
        'ip6tables-nft',
        securityRule.map((a) => (a === '-A' ? '-D' : a)),
      );
    }
  });

  test('a rule change keeps the base chains registered and the dynamic UDP owner set filled', async () => {
    // Deleting the table unregisters its hooks, and the kernel then drops every packet waiting in
    // NFQUEUE and forgets the dynamic sets: a change must update the table in place instead.
    const target = { netns: pair.path(pair.client) };
    const ns = pair.client;
    // Table handles count up per netns: a replaced table gets a new one, one updated in place keeps it.
    const tableHandle = () =>
      /table inet warden \{ # handle (\d+)/.exec(
        pair.run(ns, 'nft', ['-a', 'list', 'table', 'inet', 'warden']),
      )?.[1];
    try {
      await applyRuleset(compile(CLIENT_POLICY), target);
      const element = '10.200.0.2 . 5000 . 10.200.0.1 . 53 . 0';
      pair.run(ns, 'nft', ['add', 'element', 'inet', 'warden', 'udp_owner4', `{ ${element} }`]);
      const before = tableHandle();
      const changed = structuredClone(CLIENT_POLICY);
      changed.rules.push({
        name: 'new',
        direction: 'outgoing',
        protocol: 'tcp',
        remotePorts: 8008,
        action: 'deny',
      });
      const compiled = compile(changed);
      assert.equal(await applyRuleset(compiled, target), 'in place');
      assert.equal(tableHandle(), before, 'the table (and so its hooks) was replaced');
      const owners = pair.run(ns, 'nft', ['list', 'set', 'inet', 'warden', 'udp_owner4']);
      assert.match(
        owners,
        /10\.200\.0\.2 \. 5000 \. 10\.200\.0\.1 \. 53 \. 0/,
        'udp_owner4 lost its elements',
      );
      assert.equal(connect(pair, 8008), 'timeout', 'the new rule is in force');
      assert.deepEqual((await verifyRuleset(compiled, target)).ok, true);
    } finally {
      await removeRuleset(target);
    }
  });

  test('a table of another layout (base chain at another priority, stray chain and set) is replaced as a whole', async () => {
    const target = { netns: pair.path(pair.client) };
    const ns = pair.client;
    pair.run(
      ns,
      'nft',
      ['-f', '-'],
      'table inet warden {\n\tset out_9 { type ipv4_addr; }\n\tchain legacy {\n\t}\n\tchain output {\n\t\ttype filter hook output priority 5; policy accept;\n\t\tjump legacy\n\t}\n}\n',
    );
    try {
      const compiled = compile(CLIENT_POLICY);
      await applyRuleset(compiled, target);
      assert.deepEqual(await verifyRuleset(compiled, target), { ok: true, problems: [] });
      const listed = pair.run(ns, 'nft', ['list', 'table', 'inet', 'warden']);
      assert.doesNotMatch(listed, /legacy|out_9|priority 5;/);
      assert.equal(connect(pair, 8001), 'timeout');
    } finally {
      await removeRuleset(target);
    }
  });

  test('a packet held in the queue while a rule change is applied keeps its verdict (no SYN retry)', {
    skip: nativeAvailable() ? undefined : 'native addon not built',
  }, async () => {
    const target = { netns: pair.path(pair.client) };
    const agent = pair.spawn(pair.client, process.execPath, [
      AGENT,
      'agent',
      JSON.stringify({ queue: 0, hold: [8007], holdMs: 900 }),
    ]);
    const seen: Record<string, unknown>[] = [];
    createInterface({ input: agent.stdout! }).on('line', (l) =>
      seen.push(JSON.parse(l) as Record<string, unknown>),
    );
    const waitFor = async (match: (l: Record<string, unknown>) => boolean, what: string) => {
      for (const deadline = Date.now() + 5000; !seen.some(match); ) {
        if (Date.now() > deadline) throw new Error(`no ${what} in ${JSON.stringify(seen)}`);
        await new Promise((r) => setTimeout(r, 20));
      }
    };
    try {
      await waitFor((l) => l.kind === 'ready', 'ready line');
      await applyRuleset(compile(CLIENT_POLICY, { enforcement: { onEngineFailure: 'closed' } }), target);
      const client = pair.spawn(pair.client, process.execPath, [
        '-e',
        `const s = require('node:net').connect(8007, '${SERVER_ADDR}');
         setTimeout(() => { console.log('timeout'); process.exit(0); }, 4000);
         s.on('connect', () => { console.log('connected'); process.exit(0); });
         s.on('error', (e) => { console.log(e.code); process.exit(0); });`,
      ]);
      let result = '';
      client.stdout!.on('data', (d: Buffer) => {
        result += d.toString();
      });
      const exited = new Promise((r) => client.once('exit', r));
      await waitFor((l) => l.kind === 'packet' && l.destinationPort === 8007, 'queued SYN');
      const changed = structuredClone(CLIENT_POLICY);
      changed.rules.push({
        name: 'new',
        direction: 'outgoing',
        protocol: 'tcp',
        remotePorts: 8008,
        action: 'deny',
      });
      await applyRuleset(compile(changed, { enforcement: { onEngineFailure: 'closed' } }), target);
      await exited;
      assert.equal(result.trim(), 'connected');
      const syns = seen.filter((l) => l.kind === 'packet' && l.destinationPort === 8007);
      assert.equal(syns.length, 1, `the held SYN was dropped and sent again: ${JSON.stringify(syns)}`);
    } finally {
      agent.kill();
      await removeRuleset(target);
    }
  });

  test('feature detection: no native queue here, xt NFQUEUE present, nothing left behind', async () => {
    const target = { netns: pair.path(pair.client) };
    const f = await detectKernelFeatures(target);
    assert.equal(typeof f.nativeQueue, 'boolean');
    assert.equal(f.xtQueue, true);
    assert.doesNotMatch(pair.run(pair.client, 'nft', ['list', 'ruleset']), /warden_probe|WARDEN-PROBE/);
  });

  test('a full load leaves queue rules that are right alone and puts back what was changed by hand', async () => {
    const target = { netns: pair.path(pair.client) };
    const compiled = compile({ rules: [] });
    const handles = (family: 'ip' | 'ip6') =>
      pair
        .run(pair.client, 'nft', ['-a', 'list', 'chain', family, 'security', 'WARDEN-QUEUE'])
        .match(/# handle \d+/g);
    const jumps = (tool: string, hook: string) =>
      pair
        .run(pair.client, tool, ['-t', 'security', '-S', hook])
        .split('\n')
        .filter((l) => l.includes('-j WARDEN-QUEUE')).length;
    try {
      await applyRuleset(compiled, target);
      const before = { ip: handles('ip'), ip6: handles('ip6') };
      assert.equal(before.ip?.length, 2, 'the chain and its rule');
      // Without a previous ruleset: the whole table is loaded again, the queue rules are only read.
      await applyRuleset(compiled, target);
      assert.deepEqual(
        { ip: handles('ip'), ip6: handles('ip6') },
        before,
        'the queue rules were not rewritten',
      );
      pair.run(pair.client, 'iptables-nft', ['-t', 'security', '-D', 'INPUT', '-j', 'WARDEN-QUEUE']);
      pair.run(pair.client, 'ip6tables-nft', [
        ...['-t', 'security', '-R', 'WARDEN-QUEUE', '1', '-m', 'mark', '--mark', '0x01000000/0x0f000000'],
        ...['-j', 'NFQUEUE', '--queue-num', '9'],
      ]);
      assert.equal((await verifyRuleset(compiled, target)).problems.length, 2);
      await applyRuleset(compiled, target);
      assert.deepEqual(await verifyRuleset(compiled, target), { ok: true, problems: [] });
      for (const tool of ['iptables-nft', 'ip6tables-nft'])
        for (const hook of ['OUTPUT', 'INPUT'])
          assert.equal(jumps(tool, hook), 1, `${tool} ${hook}: one jump`);
      assert.match(
        pair.run(pair.client, 'ip6tables-nft', ['-t', 'security', '-S', 'WARDEN-QUEUE']),
        /NFQUEUE --queue-num 0 --queue-bypass/,
      );
    } finally {
      await removeRuleset(target);
    }
  });

  test('a queue jump the listing does not show plainly is left to iptables-nft -C', async () => {
    const target = { netns: pair.path(pair.client) };
    const compiled = compile({ rules: [] });
    // Someone's jump to Warden's chain with a match of its own: not the plain jump nft-listing.ts reads.
    const matched = ['-t', 'security', '-I', 'OUTPUT', '-p', 'tcp', '-j', 'WARDEN-QUEUE'];
    try {
      await applyRuleset(compiled, target);
      pair.run(pair.client, 'iptables-nft', ['-t', 'security', '-D', 'OUTPUT', '-j', 'WARDEN-QUEUE']);
      pair.run(pair.client, 'iptables-nft', matched);
      const v = await verifyRuleset(compiled, target);
      assert.deepEqual(v.problems, ['IPv4: security OUTPUT does not jump to WARDEN-QUEUE']);
      await applyRuleset(compiled, target);
      assert.deepEqual(await verifyRuleset(compiled, target), { ok: true, problems: [] });
      const rules = pair.run(pair.client, 'iptables-nft', ['-t', 'security', '-S', 'OUTPUT']);
      assert.match(rules, /^-A OUTPUT -j WARDEN-QUEUE$/m, 'the plain jump is back');
      assert.match(rules, /^-A OUTPUT -p tcp -j WARDEN-QUEUE$/m, "the other one's rule stays");
    } finally {
      // Warden's chain cannot go while another rule jumps to it.
      pair.run(
        pair.client,
        'iptables-nft',
        matched.map((a) => (a === '-I' ? '-D' : a)),
      );
      await removeRuleset(target);
    }
  });

  test('nft errors name the line; bad queue rules say the table is already loaded', async () => {
    const target = { netns: pair.path(pair.client) };
    const compiled = compile({ rules: [] });
    await assert.rejects(
      applyRuleset({ ...compiled, nft: `${compiled.nft}\nbogus line\n` }, target),
      (e: Error) => {
        assert.equal((e as { code?: string }).code, 'WARDEN_E_KERNEL_RULESET_REJECTED');
        assert.match(e.message, /nothing was changed.*line|stdin:\d+/s);
        return true;
      },
    );
    const q = compiled.queue!;
    const broken = { ...compiled, queue: { ...q, v6: q.v6.replace('NFQUEUE', 'NOSUCHTARGET') } };
    try {
      await assert.rejects(
        applyRuleset(broken, target),
        /table inet warden is loaded and the IPv4 queue rule too, but ip6tables-nft-restore/,
      );
    } finally {
      await removeRuleset(target);
    }
  });
});
