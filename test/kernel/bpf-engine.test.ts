/**
 * The engine attributing by BPF: `wardend run` enforcing in a namespace pair with its attribution
 * programs on a cgroup this test makes (WARDEN_BPF_CGROUP; never the host's root), and many
 * short-lived programs started in that cgroup and namespace, as root and as nobody, each judged and
 * logged as itself. engine.status (and the start line) say which path is in use.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { type KernelEngine, startKernelEngine } from '../adversarial/kernel-engine.js';
import { cgroupTestsUnavailable, createTestCgroup, type TestCgroup } from './cgroup.js';
import { kernelTestsUnavailable, listenOn, SERVER_ADDR } from './netns.js';
import { denyAllPolicy, NODE } from './wardend.js';

const PORT = 44351;
const SERVICE = 9011;
const PERL = '/usr/bin/perl';

const POLICY = denyAllPolicy(
  PORT,
  `  - name: node to the service
    direction: outgoing
    protocol: tcp
    application: ${NODE}
    remote: ${SERVER_ADDR}
    remotePorts: ${SERVICE}
    action: allow
    log: true
`,
);

/** Connects once, prints what happened and exits at once: a program that lives a few ms. */
const NODE_CLIENT = `const c = require('net').connect(${SERVICE}, '${SERVER_ADDR}', () => { console.log('ok ' + c.localPort); process.exit(0); });
c.on('error', (e) => { console.log('error ' + e.code); process.exit(0); }); setTimeout(() => { console.log('timeout'); process.exit(0); }, 4000);`;
const PERL_CLIENT = `use IO::Socket::INET; my $s = IO::Socket::INET->new(PeerAddr => '${SERVER_ADDR}', PeerPort => ${SERVICE}, Timeout => 2); print($s ? "ok\\n" : "refused\\n");`;

describe('the engine attributes by BPF', {
  skip: kernelTestsUnavailable() ?? cgroupTestsUnavailable() ?? undefined,
}, () => {
  let k: KernelEngine;
  let cgroup: TestCgroup;

  before(async () => {
    cgroup = createTestCgroup('bpf-engine');
    k = await startKernelEngine('bpfeng', PORT, POLICY, '', cgroup);
    await listenOn(k.pair, k.pair.server, [SERVICE]);
  });

  after(async () => {
    k?.close();
    await cgroup?.remove();
  });

  /** Runs a program in the test cgroup and the client namespace as `user`; resolves with its output. */
  function run(user: 'root' | 'nobody', command: string, args: readonly string[]): Promise<string> {
    const asUser = user === 'nobody' ? ['--reuid=65534', '--regid=65534', '--clear-groups'] : [];
    const child = cgroup.spawn(
      'nsenter',
      [`--net=${k.pair.path(k.pair.client)}`, 'setpriv', ...asUser, command, ...args],
      {
        stdio: ['ignore', 'pipe', 'inherit'],
      },
    );
    let out = '';
    child.stdout!.on('data', (d) => (out += d));
    return new Promise((resolve, reject) => {
      child.once('error', reject);
      child.once('close', () => resolve(out.trim())); // 'exit' may come before the last output is read
    });
  }

  test('engine.status names the BPF path, and short-lived programs are judged and logged as themselves', async () => {
    assert.match(k.engine.output(), /attribution bpf \(cgroup [^)]*warden-test-bpf-engine-/);
    const users = ['root', 'nobody', 'root', 'nobody', 'root', 'nobody', 'root', 'nobody'] as const;
    const outputs = await Promise.all([
      ...users.map((u) => run(u, NODE, ['-e', NODE_CLIENT])),
      run('nobody', PERL, ['-e', PERL_CLIENT]),
      run('root', PERL, ['-e', PERL_CLIENT]),
    ]);
    for (const [i, u] of users.entries()) assert.match(outputs[i]!, /^ok \d+$/, `node as ${u}: allowed`);
    assert.equal(outputs[users.length], 'refused', 'perl as nobody: denied');
    assert.equal(outputs[users.length + 1], 'refused', 'perl as root: denied');
    const allowed = await k.logs({ kind: 'connection', verdict: 'allow', application: NODE });
    for (const [i, u] of users.entries()) {
      const port = outputs[i]!.split(' ')[1];
      const item = allowed.find((a) => a.local === `10.200.0.1:${port}`);
      assert.ok(item, `node as ${u} from port ${port} is logged as node (${JSON.stringify(allowed)})`);
      assert.equal(item.user, u);
    }
    const denied = await k.logs({ kind: 'connection', verdict: 'deny', application: PERL });
    assert.deepEqual(
      [...new Set(denied.map((d) => d.user))].sort(),
      ['nobody', 'root'],
      JSON.stringify(denied),
    );
    // The queued TCP connections were found from their connect-time slots.
    const { attributionLookups: found } = (await k.call('engine.status', {})) as {
      attributionLookups?: { slots: string; fromSlots: number };
    };
    assert.equal(found?.slots, 'on', JSON.stringify(found));
    // At least the two perl programs (denied: never decided by the verdict cache).
    assert.ok(found.fromSlots >= 2, JSON.stringify(found));
  });
});
