/**
 * Integration: policy.apply over the real protocol (TLS, a real administration server and config
 * store), the fleet rollout's one call: a whole policy file's text replaces the policy as one
 * version; the same policy written otherwise changes nothing (same hash); an invalid text is refused
 * with its location; an auditor may not; applied with confirm and not confirmed, it is undone.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { ErrorCode, WardenError } from '../../src/errors.js';
import { Methods } from '../../src/protocol/methods.js';
import { type Harness, startHarness, until } from './admin-harness.js';

const TEXT = `mode: enforce
defaults:
  incoming: { action: deny, log: true }
  outgoing: { action: allow, log: false }
rules:
  - name: ssh
    direction: incoming
    protocol: tcp
    localPorts: 22
    action: allow
`;
/** The same policy: other order, spacing, comments and flow style. */
const SAME = `# the same, written otherwise
rules: [{ action: allow, localPorts: 22, protocol: tcp, direction: incoming, name: ssh }]
defaults:
  outgoing: { log: false, action: allow }
  incoming:   { action: deny, log: true }
mode: enforce
`;

describe('policy.apply', () => {
  let h: Harness;
  before(async () => {
    h = await startHarness();
  });
  after(() => h.close());

  test('replaces the policy as one version; the same policy again makes none; status reports the hash', async () => {
    const c = await h.login();
    const r = await c.call(Methods.policyApply, { policy: TEXT });
    assert.equal(r.unchanged, false);
    assert.match(r.hash, /^sha256:[0-9a-f]{64}$/);
    assert.deepEqual(
      h.config.policy().rules.map((x) => x.name),
      ['ssh'],
    );
    const s = await c.call(Methods.status, {});
    assert.equal(s.policyHash, r.hash);
    assert.equal(s.policyVersion, r.version);
    assert.deepEqual(s.problems, []);
    assert.equal(s.decisionsPerMinute, 0);
    const again = await c.call(Methods.policyApply, { policy: SAME });
    assert.deepEqual(again, { version: r.version, hash: r.hash, unchanged: true });
    assert.equal(h.config.history()[0]!.version, r.version, 'no new version');
  });

  test('an invalid text is refused with its line and field; nothing changes', async () => {
    const c = await h.login();
    const before = h.config.history()[0]!.version;
    await assert.rejects(
      c.call(Methods.policyApply, {
        policy: `${TEXT}  - name: typo\n    direction: outgoing\n    acton: deny\n`,
      }),
      (e: unknown) => {
        assert.ok(e instanceof WardenError);
        assert.equal(e.code, ErrorCode.POLICY_INVALID);
        const problems = JSON.stringify(e.problems);
        assert.match(problems, /"line":1[0-2]/, problems);
        assert.match(problems, /acton/);
        return true;
      },
    );
    assert.equal(h.config.history()[0]!.version, before);
  });

  test('an auditor may not apply', async () => {
    const c = await h.login('bob');
    await assert.rejects(c.call(Methods.policyApply, { policy: TEXT }), /administrator/);
  });

  test('applied with confirm and not confirmed: undone at the deadline', async () => {
    const c = await h.login();
    const old = (await c.call(Methods.status, {})).policyHash;
    const r = await c.call(Methods.policyApply, {
      policy: TEXT.replace('localPorts: 22', 'localPorts: 2222'),
      confirm: { seconds: 1 },
    });
    assert.ok(r.pending !== undefined);
    assert.notEqual(r.hash, old);
    await until(() => h.config.history()[0]!.version > r.version, 8000, 'the revert');
    assert.equal((await c.call(Methods.status, {})).policyHash, old);
  });
});
