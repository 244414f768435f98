/**
 * Integration: policy-level changes and learning-mode proposals over the real protocol (TLS, a real
 * administration server and config store), with the engine's real Enforcer judging connections into
 * the proposal book as the kernel backend does.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { ProposalBook } from '../../src/admin/proposals.js';
import { AskDesk } from '../../src/engine/asks.js';
import { Enforcer } from '../../src/engine/enforcer.js';
import { ErrorCode, WardenError } from '../../src/errors.js';
import { compilePolicy } from '../../src/policy/index.js';
import { Methods } from '../../src/protocol/methods.js';
import { type Harness, startHarness, until } from './admin-harness.js';

const executables = {
  engine: '/usr/lib/warden/wardend',
  console: '/usr/lib/warden/warden',
  assistant: '/usr/lib/warden/warden-assist',
};

async function rejectsWith(p: Promise<unknown>, code: string, message?: RegExp) {
  await assert.rejects(p, (e: unknown) => {
    assert.ok(e instanceof WardenError, String(e));
    assert.equal(e.code, code, e.message);
    if (message) assert.match(e.message, message);
    return true;
  });
}

describe('policy-level changes over the protocol', () => {
  let h: Harness;
  let dir: string;
  let book: ProposalBook;
  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'warden-proposals-'));
    book = await ProposalBook.open({ path: join(dir, 'proposals.json'), cap: 20 });
    h = await startHarness({ proposals: book });
  });
  after(async () => {
    await h.close();
    await book.close();
    rmSync(dir, { recursive: true, force: true });
  });

  /** The engine's enforcer, judging against the policy in force, feeding the proposal book. */
  const enforcer = new Enforcer({
    policy: () => compilePolicy(h.config.policy()),
    identify: async (t) => ({
      pid: 7,
      executable: t.sourcePort! < 2000 ? '/usr/bin/curl' : '/usr/bin/wget',
      uid: 0,
    }),
    hostsOf: (a) => (a === '192.0.2.10' ? ['mirror.example'] : []),
    asks: new AskDesk({ timeoutMs: () => 50, consoles: () => 0, notify: () => {} }),
    log: (i) => h.logs.append(i),
    executables,
    propose: (rule, facts) => book.seen(rule, facts),
  });
  const connect = (sourcePort: number, destination: string, destinationPort: number) =>
    enforcer.judge(
      { protocol: 'tcp', source: '10.200.0.1', destination, sourcePort, destinationPort },
      'outgoing',
    );

  test('mode and defaults: shown by policy.get, changed as versions with audit items; auditors refused', async () => {
    const alice = await h.login('alice');
    const bob = await h.login('bob');
    const before = await bob.call(Methods.policyGet, {});
    assert.equal(before.mode, 'enforce');
    assert.deepEqual(before.defaults.outgoing, { action: 'allow', log: true });
    await rejectsWith(bob.call(Methods.policySetMode, { mode: 'learning' }), ErrorCode.FORBIDDEN);
    const m = await alice.call(Methods.policySetMode, { mode: 'learning' });
    assert.deepEqual(m, { mode: 'learning', previous: 'enforce' });
    const d = await alice.call(Methods.policySetDefault, {
      direction: 'outgoing',
      action: 'deny',
      log: true,
    });
    assert.deepEqual(d.previous, { action: 'allow', log: true });
    assert.deepEqual(d.default, { action: 'deny', log: true });
    const now = await bob.call(Methods.policyGet, {});
    assert.equal(now.mode, 'learning');
    assert.equal(now.version, before.version + 2);
    assert.match((await h.config.version(now.version)).policy, /mode: learning/);
    const audit = h.logs.query({ kind: 'admin', limit: 100 }).items.map((i) => i.message);
    assert.ok(audit.includes('policy mode changed from enforce to learning'), audit.join('\n'));
    assert.ok(audit.some((a) => /default outgoing changed from allow \(logged\) to deny \(logged\)/.test(a)));
    await rejectsWith(
      alice.call(Methods.policySetDefault, { direction: 'outgoing' } as never),
      ErrorCode.PARAMS_INVALID,
      /give action, log or both/,
    );
  });

  test('setting what is set already makes no version', async () => {
    const alice = await h.login('alice');
    const v = h.config.history()[0]!.version;
    assert.deepEqual(await alice.call(Methods.policySetMode, { mode: 'learning' }), {
      mode: 'learning',
      previous: 'learning',
    });
    await alice.call(Methods.policySetDefault, { direction: 'outgoing', action: 'deny' });
    assert.equal(h.config.history()[0]!.version, v);
  });

  test('logs.query newest first over the protocol; beforeSeq alone is refused', async () => {
    const bob = await h.login('bob');
    for (let i = 0; i < 50; i++) h.logs.append({ kind: 'system', message: `item ${i}` });
    const last = h.logs.lastSeq;
    const r = await bob.call(Methods.logsQuery, { kind: 'system', order: 'newest', limit: 3 });
    assert.deepEqual(
      r.items.map((i) => i.seq),
      [last, last - 1, last - 2],
    );
    const older = await bob.call(Methods.logsQuery, {
      kind: 'system',
      order: 'newest',
      limit: 2,
      beforeSeq: last - 2,
    });
    assert.deepEqual(
      older.items.map((i) => i.message),
      ['item 46', 'item 45'],
    );
    await rejectsWith(
      bob.call(Methods.logsQuery, { beforeSeq: 10, limit: 5 }),
      ErrorCode.PARAMS_INVALID,
      /beforeSeq goes with order/,
    );
  });

  test('a change with confirm that is not confirmed goes back by itself', async () => {
    const alice = await h.login('alice');
    const r = await alice.call(Methods.policySetDefault, {
      direction: 'incoming',
      action: 'allow',
      confirm: { seconds: 1 },
    });
    assert.ok(r.pending, 'pending');
    assert.equal(h.config.policy().defaults.incoming.action, 'allow');
    await until(() => h.config.policy().defaults.incoming.action === 'deny', 5000, 'the rollback');
  });

  test('groups: add creates, add again merges, remove members, remove a group a rule uses is refused', async () => {
    const alice = await h.login('alice');
    const a = await alice.call(Methods.groupsAdd, { name: 'lan', members: ['192.168.0.0/16'] });
    assert.equal(a.previous, null);
    const b = await alice.call(Methods.groupsAdd, { name: 'lan', members: ['10.0.0.0/8', '192.168.0.0/16'] });
    assert.deepEqual(b.members, ['192.168.0.0/16', '10.0.0.0/8']);
    await rejectsWith(
      alice.call(Methods.groupsAdd, { name: 'lan', members: ['10.0.0.1/8'] }),
      ErrorCode.POLICY_INVALID,
    );
    await rejectsWith(
      alice.call(Methods.groupsRemove, { name: 'lan', members: ['172.16.0.0/12'] }),
      ErrorCode.NOT_FOUND,
      /no member 172\.16\.0\.0\/12/,
    );
    await alice.call(Methods.rulesAdd, {
      rule: {
        name: 'lan ssh',
        direction: 'incoming',
        protocol: 'tcp',
        localPorts: 22,
        remote: '@lan',
        action: 'allow',
      },
    });
    await rejectsWith(
      alice.call(Methods.groupsRemove, { name: 'lan' }),
      ErrorCode.POLICY_INVALID,
      /used by rule "lan ssh"/,
    );
    const got = await alice.call(Methods.policyGet, {});
    assert.deepEqual(got.groupUsers, { lan: ['lan ssh'] });
    const r = await alice.call(Methods.groupsRemove, { name: 'lan', members: ['10.0.0.0/8'] });
    assert.deepEqual(r.members, ['192.168.0.0/16']);
    const s = await alice.call(Methods.groupsSet, { name: 'dns', members: ['192.0.2.53', 'ns.example'] });
    assert.equal(s.previous, null);
    await alice.call(Methods.rulesRemove, { name: 'lan ssh' });
    const gone = await alice.call(Methods.groupsRemove, { name: 'lan' });
    assert.equal(gone.members, null);
    assert.deepEqual(Object.keys(h.config.policy().addressGroups), ['dns']);
  });

  test('learning mode: proposals deduplicated and counted, accepted as rules, rejected for good', async () => {
    const alice = await h.login('alice');
    assert.equal(h.config.policy().mode, 'learning');
    for (const port of [1001, 1002, 1003])
      assert.equal((await connect(port, '192.0.2.10', 443)).verdict, 'accept');
    await connect(1004, '192.0.2.20', 80);
    await connect(2001, '192.0.2.30', 22);
    const listed = await alice.call(Methods.proposalsList, {});
    assert.deepEqual(
      listed.proposals.map((p) => [p.application, p.remote, p.port, p.count]),
      [
        ['/usr/bin/curl', 'mirror.example', 443, 3],
        ['/usr/bin/curl', '192.0.2.20', 80, 1],
        ['/usr/bin/wget', '192.0.2.30', 22, 1],
      ],
    );
    const [mirror, other, wget] = listed.proposals;
    const accepted = await alice.call(Methods.proposalsAccept, { ids: [mirror!.id] });
    assert.equal(accepted.accepted.length, 1);
    const rule = (await alice.call(Methods.rulesList, { internal: false })).rules.at(-1)!;
    assert.equal(rule.name, accepted.accepted[0]!.rule.name);
    assert.equal(rule.remote, 'mirror.example');
    // The rule decides now: no new proposal for it.
    const j = await connect(1005, '192.0.2.10', 443);
    assert.equal(j.decision.ruleName, rule.name);
    await alice.call(Methods.proposalsReject, { all: true, application: '/usr/bin/wget' });
    await connect(2002, '192.0.2.30', 22);
    const left = await alice.call(Methods.proposalsList, {});
    assert.deepEqual(
      left.proposals.map((p) => p.id),
      [other!.id],
    );
    assert.equal(left.rejected, 1);
    await rejectsWith(alice.call(Methods.proposalsAccept, { ids: [wget!.id] }), ErrorCode.NOT_FOUND);
    await rejectsWith(alice.call(Methods.proposalsAccept, {}), ErrorCode.PARAMS_INVALID);
    const bob = await h.login('bob');
    await rejectsWith(bob.call(Methods.proposalsAccept, { all: true }), ErrorCode.FORBIDDEN);
    const audit = h.logs.query({ kind: 'admin', text: 'proposed', limit: 10 }).items.map((i) => i.message);
    assert.equal(audit.length, 2, audit.join('\n'));
  });

  test('a flood of new destinations is capped; the book survives a restart with its rejections', async () => {
    const alice = await h.login('alice');
    for (let i = 0; i < 200; i++) await connect(1100 + i, `198.51.100.${i % 250}`, 1000 + i);
    const r = await alice.call(Methods.proposalsList, {});
    assert.equal(r.proposals.length, 20);
    assert.equal(r.notStored, 200 - 19, JSON.stringify(r.proposals.map((p) => [p.remote, p.port])));
    await book.close();
    const again = await ProposalBook.open({ path: join(dir, 'proposals.json'), cap: 20 });
    assert.equal(again.size, 20);
    assert.equal(again.rejectedCount, 1);
    assert.deepEqual(again.list(), book.list());
  });
});
