/**
 * Rule subscriptions (docs/policy.md, "Included rules") in a real engine with a real local HTTPS
 * server: fetch, refresh, a failed or refused refresh keeps the last good copy (with the located
 * errors of a bad file in engine.status and the log), included rules read-only over the protocol,
 * one disabled by the administrator and kept so across refreshes and restarts; and the lockout
 * guard refusing a refresh that would cut a remote administrator off.
 */
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { lockoutRisk } from '../../src/admin/confirm.js';
import { EngineClient } from '../../src/client/engine-client.js';
import { Engine } from '../../src/engine/daemon.js';
import { PolicyIncludes } from '../../src/engine/includes.js';
import { WardenError } from '../../src/errors.js';
import { parsePolicyText } from '../../src/policy/parse.js';
import { Methods } from '../../src/protocol/methods.js';
import { defaultSettings } from '../../src/settings/index.js';
import { addEngineUsers, allButConnect, wardenCli } from '../support/console-harness.js';
import { startHttpsStandIn, TEST_CA } from '../support/stand-ins.js';

const CORP_V1 = `rules:
  - { name: allow-web, direction: outgoing, protocol: tcp, remotePorts: 443, action: allow }
  - { name: no-telnet, direction: outgoing, protocol: tcp, remotePorts: 23, action: deny }
`;

async function rejectsWith(p: Promise<unknown>, code: string, message: RegExp) {
  await assert.rejects(p, (e: unknown) => {
    assert.ok(e instanceof WardenError, String(e));
    assert.equal(e.code, code, e.message);
    assert.match(e.message, message);
    return true;
  });
}

test('an engine includes rules from a URL and a file: fetched, refreshed, read-only, disabled one by one, last good copy kept', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'warden-includes-'));
  const configDir = join(dir, 'etc');
  const stateDir = join(dir, 'state');
  mkdirSync(configDir);
  await addEngineUsers(configDir);
  let answer = { status: 200, text: CORP_V1 };
  const server = await startHttpsStandIn(() => answer);
  const localFile = join(dir, 'local.yaml');
  writeFileSync(
    localFile,
    'rules:\n  - { name: ssh-out, direction: outgoing, protocol: tcp, remotePorts: 22, action: allow }\n',
  );
  writeFileSync(
    join(configDir, 'policy.yaml'),
    `defaults: { outgoing: { action: deny } }
rules:
  - { name: mine, direction: outgoing, protocol: tcp, remotePorts: 8080, action: allow }
include:
  - { name: corp, url: "${server.url('/rules.yaml')}", refresh: 6h }
  - { name: local, file: ${localFile} }
`,
  );
  const logs: string[] = [];
  const start = () =>
    Engine.start({
      configDir,
      stateDir,
      port: 0,
      bindAddress: '127.0.0.1',
      services: { ca: TEST_CA, popupPort: 0 },
      log: (level, message) => logs.push(`${level} ${message}`),
    });
  let engine = await start();
  const connect = async () => {
    const client = await EngineClient.connect({
      host: '127.0.0.1',
      port: engine.server.port,
      verifyFingerprint: async (fp) => assert.equal(fp, engine.identity.fingerprint),
      timeoutMs: 5000,
    });
    await client.login({ localToken: readFileSync(join(stateDir, 'local-token'), 'utf8').trim() });
    return client;
  };
  const explainPort = async (c: EngineClient, port: number) =>
    (
      (
        await c.call(Methods.explain, {
          direction: 'outgoing',
          protocol: 'tcp',
          remoteAddress: '192.0.2.10',
          remotePort: port,
          hosts: [],
        } as never)
      ).decision as { ruleName: string }
    ).ruleName;
  let client = await connect();
  try {
    const corpState = async () =>
      (await client.call(Methods.status, {})).includes?.find((i) => i.name === 'corp');
    for (let until = Date.now() + 5000; (await corpState())?.copy !== 'network'; ) {
      assert.ok(Date.now() < until, 'the first fetch in engine.status');
      await new Promise((r) => setTimeout(r, 50));
    }
    const status = await client.call(Methods.status, {});
    const local = status.includes!.find((i) => i.name === 'local')!;
    // The rules in force (with the subscriptions' rules) have a hash of their own beside the policy's.
    assert.match(status.rulesHash ?? '', /^sha256:[0-9a-f]{64}$/);
    assert.notEqual(status.rulesHash, status.policyHash);
    assert.equal(local.copy, 'file');
    assert.equal(local.rules, 1);
    assert.equal((await corpState())!.rules, 2);

    // Named after the subscription, after the policy's own rules, in include order; marked read-only.
    const listed = (await client.call(Methods.rulesList, { internal: false })).rules as Record<
      string,
      unknown
    >[];
    assert.deepEqual(
      listed.map((r) => [r.name, r.subscription ?? null, r.readOnly ?? false]),
      [
        ['mine', null, false],
        ['corp/allow-web', 'corp', true],
        ['corp/no-telnet', 'corp', true],
        ['local/ssh-out', 'local', true],
      ],
    );
    assert.equal(await explainPort(client, 443), 'corp/allow-web');
    assert.equal(await explainPort(client, 22), 'local/ssh-out');

    // Read-only: remove, move and a real change are refused naming the subscription.
    await rejectsWith(
      client.call(Methods.rulesRemove, { name: 'corp/no-telnet' }),
      'WARDEN_E_RULE_INCLUDED',
      /subscription "corp".*cannot be removed/,
    );
    await rejectsWith(
      client.call(Methods.rulesMove, { name: 'corp/no-telnet', position: 0 }),
      'WARDEN_E_RULE_INCLUDED',
      /subscription "corp".*cannot be moved/,
    );
    await rejectsWith(
      client.call(Methods.rulesUpdate, {
        name: 'corp/no-telnet',
        rule: {
          name: 'corp/no-telnet',
          direction: 'outgoing',
          protocol: 'tcp',
          remotePorts: 23,
          action: 'allow',
        },
      }),
      'WARDEN_E_RULE_INCLUDED',
      /subscription "corp".*cannot be changed/,
    );
    // The console: `warden rules list` marks included rules; `warden rules disable` switches one off
    // (only enabled changes: it lands in the policy's disabled list); `remove` is refused naming corp.
    const warden = wardenCli(join(dir, 'home'), { toLab: allButConnect });
    const connected = await warden([
      'connect',
      `127.0.0.1:${engine.server.port}`,
      '--user',
      'alice',
      '--name',
      'lab',
      '--accept',
      engine.identity.fingerprint,
    ]);
    assert.equal(connected.code, 0, connected.stderr);
    const table = await warden(['rules', 'list']);
    assert.equal(table.code, 0, table.stderr);
    assert.match(table.stdout, /corp\/allow-web \(included: corp, read-only\)/);
    assert.match(table.stdout, /local\/ssh-out \(included: local, read-only\)/);
    assert.doesNotMatch(table.stdout, /mine \(included/);
    const removed = await warden(['rules', 'remove', 'corp/no-telnet']);
    assert.notEqual(removed.code, 0);
    assert.match(removed.stderr, /WARDEN_E_RULE_INCLUDED|subscription "corp"/);
    const disabled = await warden(['rules', 'disable', 'corp/allow-web']);
    assert.equal(disabled.code, 0, disabled.stderr);
    assert.deepEqual(engine.config.policy().disabled, ['corp/allow-web']);
    assert.match(readFileSync(join(configDir, 'policy.yaml'), 'utf8'), /disabled:\n\s+- corp\/allow-web/);
    assert.equal(await explainPort(client, 443), 'default outgoing');

    // A bad refresh: refused with located errors (URL, line, rule, field); the last good copy stays.
    answer = {
      status: 200,
      text: 'rules:\n  - { name: allow-web, direction: outgoing, action: allow }\n  - name: broken\n    direction: outgoing\n    acton: deny\n',
    };
    await engine.includes.refresh('corp');
    const failed = (await corpState())!;
    assert.equal(failed.copy, 'network');
    assert.equal(failed.rules, 2);
    assert.match(
      failed.lastError ?? '',
      new RegExp(
        `${server.url('/rules.yaml').replace(/[.?/]/g, '\\$&')}:5:12: rules\\[1\\]\\.acton \\(rule "broken"\\)`,
      ),
    );
    assert.match(failed.lastError ?? '', /acton/);
    assert.ok(
      logs.some((l) => /^warn include-corp: refused: .*rules\.yaml:5:12/.test(l)),
      logs.join('\n'),
    );
    assert.equal(await explainPort(client, 23), 'corp/no-telnet');
    const items = await client.call(Methods.logsQuery, { kind: 'system' } as never);
    assert.ok(
      JSON.stringify(items).includes('rule subscription include-corp: refused:'),
      'the refusal is a system log item',
    );
    // A file that tries to include further, or to bring lists, is refused as well.
    answer = { status: 200, text: `include:\n  - { name: x, file: /etc/x.yaml }\n${CORP_V1}` };
    await engine.includes.refresh('corp');
    assert.match(
      (await corpState())!.lastError ?? '',
      /rules\.yaml:2:3: include: an included file may not include further/,
    );
    assert.equal(readFileSync(join(stateDir, 'includes', 'include-corp.txt'), 'utf8'), CORP_V1);

    // A good refresh is taken; the administrator's choice to disable corp/allow-web stays.
    answer = {
      status: 200,
      text: `${CORP_V1}  - { name: no-smtp, direction: outgoing, protocol: tcp, remotePorts: 25, action: reject }\n`,
    };
    const beforeRefresh = await client.call(Methods.status, {});
    // Through the console: `warden includes refresh corp` (includes.refresh), then `warden includes`.
    const viaCli = await warden(['includes', 'refresh', 'corp']);
    assert.equal(viaCli.code, 0, viaCli.stdout + viaCli.stderr);
    assert.match(viaCli.stdout, /corp\s+3\s+network/);
    const shown = await warden(['includes']);
    assert.match(shown.stdout, /corp\s+3\s+network/);
    assert.match(shown.stdout, /local\s+1\s+file/);
    assert.equal((await corpState())!.lastError, undefined);
    assert.equal(await explainPort(client, 25), 'corp/no-smtp');
    // New subscription content: the same policy (hash), other rules in force (rulesHash).
    const afterRefresh = await client.call(Methods.status, {});
    assert.equal(afterRefresh.policyHash, beforeRefresh.policyHash);
    assert.notEqual(afterRefresh.rulesHash, beforeRefresh.rulesHash);
    const after = (await client.call(Methods.rulesList, { internal: false })).rules as Record<
      string,
      unknown
    >[];
    assert.equal(after.find((r) => r.name === 'corp/allow-web')!.enabled, false);

    // A restart with the server down starts from the last good copy on disk.
    client.close();
    await engine.stop();
    answer = { status: 503, text: '' };
    engine = await start();
    client = await connect();
    const restarted = (await corpState())!;
    assert.equal(restarted.copy, 'last good copy');
    assert.equal(restarted.rules, 3);
    assert.equal(await explainPort(client, 25), 'corp/no-smtp');
    assert.equal(await explainPort(client, 443), 'default outgoing');
  } finally {
    client.close();
    await engine.stop();
    await server.close();
    rmSync(dir, { recursive: true, force: true });
  }
});

test('included rules cannot cut a remote administrator off: the lockout guard runs on every refresh', async () => {
  // The internal remote-configuration rule is decided before any policy rule, so a subscription's
  // "deny incoming to the application port" leaves the administrator's console reachable; the guard
  // (the same lockoutRisk as rules.*) is asked before each new text is taken.
  const dir = mkdtempSync(join(tmpdir(), 'warden-includes-guard-'));
  const file = join(dir, 'corp.yaml');
  writeFileSync(file, CORP_V1);
  const base = defaultSettings();
  const settings = { ...base, remoteAdministration: { ...base.remoteAdministration, enabled: true } };
  const policy = parsePolicyText(`include:\n  - { name: corp, file: ${file} }\n`);
  const host = {
    executables: {
      engine: '/usr/lib/warden/wardend',
      console: '/usr/lib/warden/warden',
      assistant: '/usr/lib/warden/warden-assist',
    },
  };
  const asked: (string | null)[] = [];
  const includes = new PolicyIncludes({
    stateDir: join(dir, 'state'),
    route: () => ({ kind: 'direct', because: 'test' }),
    log: () => {},
    policy: () => policy,
    // The administrator's console is connected from 10.200.0.5.
    lockoutRisk: (next) => {
      const risk = lockoutRisk({ policy: next, settings }, '10.200.0.5', host as never, Date.now());
      asked.push(risk);
      return risk;
    },
    onChange: () => {},
  });
  try {
    await includes.follow(policy.include);
    assert.equal(includes.rules().get('corp')?.length, 2);
    writeFileSync(
      file,
      `rules:\n  - { name: lock, direction: incoming, protocol: tcp, localPorts: ${settings.applicationPort}, action: deny }\n`,
    );
    await includes.refresh('corp');
    assert.deepEqual(asked, [null, null], 'the guard was asked for both texts and found no risk');
    const effective = includes.effective(policy);
    assert.equal(effective.rules.at(-1)!.name, 'corp/lock');
    assert.equal(lockoutRisk({ policy: effective, settings }, '10.200.0.5', host as never, Date.now()), null);
  } finally {
    includes.stop();
    rmSync(dir, { recursive: true, force: true });
  }
});

test('warden policy check/explain of a file read its file subscriptions: located errors, included rules decide', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'warden-includes-cli-'));
  const inc = join(dir, 'lab.yaml');
  const policyFile = join(dir, 'policy.yaml');
  writeFileSync(policyFile, `include:\n  - { name: lab, file: ${inc} }\n`);
  const warden = wardenCli(join(dir, 'home'));
  try {
    writeFileSync(inc, 'rules:\n  - name: ssh\n    direction: outgoing\n    action: alow\n');
    const bad = await warden(['policy', 'check', policyFile]);
    assert.equal(bad.code, 1, bad.stdout);
    assert.match(
      bad.stderr,
      new RegExp(`${inc.replace(/[.]/g, '\\.')}:4:\\d+: .*rules\\[0\\]\\.action \\(rule "ssh"\\)`),
    );
    writeFileSync(
      inc,
      'rules:\n  - { name: ssh, direction: outgoing, protocol: tcp, remotePorts: 22, action: deny }\n',
    );
    const good = await warden(['policy', 'check', policyFile]);
    assert.equal(good.code, 0, good.stderr);
    const explained = await warden([
      'policy',
      'explain',
      policyFile,
      '--out',
      '--tcp',
      '--to',
      '192.0.2.1:22',
      '--json',
    ]);
    // Exit status 1: the connection would be blocked (by the included rule).
    assert.equal(explained.code, 1, explained.stderr);
    assert.match(explained.stdout, /"ruleName": "lab\/ssh"/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
