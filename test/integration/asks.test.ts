/** Ask prompts over the real protocol: held connections reach consoles, answers decide them and add rules. */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { AskDesk, type HeldConnection } from '../../src/engine/asks.js';
import type { AskPrompt, AskResolution } from '../../src/protocol/asks.js';
import { Methods, Notifications } from '../../src/protocol/methods.js';
import { heldCurl } from '../support/console-harness.js';
import { type Harness, startHarness, until } from './admin-harness.js';

const connection: HeldConnection = heldCurl;

describe('ask prompts over the administration protocol', () => {
  let h: Harness;
  let desk: AskDesk;
  let timeoutMs = 5000;
  before(async () => {
    let server: { consoles: number; broadcast(n: string, p: unknown): void } | undefined;
    desk = new AskDesk({
      timeoutMs: () => timeoutMs,
      consoles: () => server?.consoles ?? 0,
      notify: (event, params) =>
        server?.broadcast(event === 'prompt' ? Notifications.askPrompt : Notifications.askResolved, params),
    });
    h = await startHarness({ asks: desk });
    server = h.server;
  });
  after(() => h.close());

  test('with no console logged in, the default decides at once', async () => {
    const r = await desk.hold({ ...connection, local: '10.200.0.1:39999' });
    assert.equal(r.verdict, 'deny');
    assert.equal(r.by, 'timeout');
  });

  test('an administrator sees the prompt, answers "always" for the port, and a rule is added first', async () => {
    const alice = await h.login('alice');
    const prompts: AskPrompt[] = [];
    const resolved: AskResolution[] = [];
    alice.onNotification((method, params) => {
      if (method === Notifications.askPrompt) prompts.push(params as AskPrompt);
      if (method === Notifications.askResolved) resolved.push(params as AskResolution);
    });
    const held = desk.hold(connection);
    const retransmit = desk.hold({ ...connection, local: '10.200.0.1:40000' });
    await until(() => prompts.length === 1, 3000, 'the prompt');
    const listed = await alice.call(Methods.asksList, {});
    assert.equal(listed.prompts.length, 1);
    assert.equal(listed.prompts[0]!.waiting, 2, 'the retransmission joined the prompt');
    assert.equal(listed.prompts[0]!.application, '/usr/bin/curl');

    const answer = await alice.call(Methods.asksAnswer, {
      id: prompts[0]!.id,
      verdict: 'allow',
      duration: 'always',
      scope: 'port',
    });
    assert.equal(answer.verdict, 'allow');
    assert.equal(answer.rule, 'ask: allow curl outgoing tcp port 443');
    assert.deepEqual(
      [(await held).verdict, (await retransmit).verdict],
      ['allow', 'allow'],
      'every held packet gets the answer',
    );
    await until(() => resolved.length === 1, 3000, 'the resolution notification');
    const { rule, position } = await alice.call(Methods.rulesGet, { name: answer.rule! });
    assert.equal(position, 0);
    assert.deepEqual(
      {
        application: rule.application,
        protocol: rule.protocol,
        remotePorts: rule.remotePorts,
        action: rule.action,
      },
      { application: '/usr/bin/curl', protocol: 'tcp', remotePorts: 443, action: 'allow' },
    );
    const audit = h.logs.query({ kind: 'admin', limit: 100, text: 'answered ask prompt' });
    assert.equal(audit.items.length, 1);
    assert.equal(audit.items[0]!.user, 'alice');
    alice.close();
  });

  test('a temporary answer for the host adds an expiring rule naming the host', async () => {
    const alice = await h.login('alice');
    const held = desk.hold({ ...connection, remotePort: 8443, remote: '93.184.215.14:8443' });
    await until(() => desk.list().length === 1);
    const answer = await alice.call(Methods.asksAnswer, {
      id: desk.list()[0]!.id,
      verdict: 'deny',
      duration: 'temporary',
      minutes: 10,
      scope: 'host',
    });
    assert.equal((await held).verdict, 'deny');
    const { rule } = await alice.call(Methods.rulesGet, { name: answer.rule! });
    assert.equal(rule.remote, 'example.org');
    const expires = Date.parse(String(rule.expires));
    assert.ok(expires > Date.now() + 9 * 60_000 && expires <= Date.now() + 10 * 60_000);
    alice.close();
  });

  test('an auditor sees prompts but may not answer; unanswered prompts time out to the default', async () => {
    const bob = await h.login('bob');
    timeoutMs = 300;
    const started = Date.now();
    const held = desk.hold({ ...connection, remotePort: 25, remote: '93.184.215.14:25' });
    await until(() => desk.list().length === 1);
    await assert.rejects(
      bob.call(Methods.asksAnswer, { id: desk.list()[0]!.id, verdict: 'allow' }),
      /administrator/,
    );
    const r = await held;
    assert.equal(r.by, 'timeout');
    assert.equal(r.verdict, 'deny');
    assert.ok(Date.now() - started >= 250);
    await assert.rejects(bob.call(Methods.asksAnswer, { id: r.id, verdict: 'allow' }), /administrator/);
    timeoutMs = 5000;
    bob.close();
  });

  test('"deny, once" holds for the connection: its retransmission is denied without a new prompt', async () => {
    const alice = await h.login('alice');
    const prompts: AskPrompt[] = [];
    alice.onNotification((method, params) => {
      if (method === Notifications.askPrompt) prompts.push(params as AskPrompt);
    });
    const syn = { ...connection, defaultVerdict: 'allow' as const, local: '10.200.0.1:41000' };
    const held = desk.hold(syn);
    await until(() => prompts.length === 1, 3000, 'the prompt');
    const answer = await alice.call(Methods.asksAnswer, {
      id: prompts[0]!.id,
      verdict: 'deny',
      duration: 'once',
    });
    assert.equal(answer.verdict, 'deny');
    assert.equal((await held).verdict, 'deny');
    // The SYN retransmitted after the answer (same 5-tuple), even once its program read differently.
    for (const again of [syn, { ...syn, application: undefined, pid: undefined }]) {
      const r = await desk.hold(again);
      assert.equal(r.verdict, 'deny', 'the retransmission gets the answer');
      assert.equal(r.id, answer.id);
    }
    await new Promise((r) => setTimeout(r, 100));
    assert.equal(prompts.length, 1, 'no second prompt');
    assert.equal(desk.list().length, 0);
    // Another connection of the same program (a new source port) is asked about again.
    const next = desk.hold({ ...syn, local: '10.200.0.1:41001' });
    await until(() => prompts.length === 2, 3000, 'a prompt for the new connection');
    await alice.call(Methods.asksAnswer, { id: prompts[1]!.id, verdict: 'allow', duration: 'once' });
    assert.equal((await next).verdict, 'allow');
    alice.close();
  });

  test('a timed-out prompt: the default applies to the retransmissions too, without a new prompt', async () => {
    const alice = await h.login('alice');
    const prompts: AskPrompt[] = [];
    alice.onNotification((method, params) => {
      if (method === Notifications.askPrompt) prompts.push(params as AskPrompt);
    });
    timeoutMs = 200;
    const syn = { ...connection, local: '10.200.0.1:42000', remotePort: 8080, remote: '93.184.215.14:8080' };
    assert.equal((await desk.hold(syn)).by, 'timeout');
    timeoutMs = 5000;
    const again = await desk.hold(syn);
    assert.deepEqual([again.verdict, again.by], ['deny', 'timeout']);
    await new Promise((r) => setTimeout(r, 100));
    assert.equal(prompts.length, 1, 'no second prompt');
    alice.close();
  });

  test('answering a prompt that is gone names the id', async () => {
    const alice = await h.login('alice');
    await assert.rejects(
      alice.call(Methods.asksAnswer, { id: '00112233445566778899', verdict: 'allow' }),
      /no prompt has id 00112233445566778899/,
    );
    alice.close();
  });
});
