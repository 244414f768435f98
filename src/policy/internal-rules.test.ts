import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { parseIp } from '../ip/index.js';
import { validateSettings } from '../settings/parse.js';
import type { Settings } from '../settings/schema.js';
import {
  type AddressSpec,
  type ConnectionFacts,
  compilePolicy,
  type Decision,
  decide,
  type HostEnvironment,
  type InternalRule,
  internalRules as internalRulesOf,
  type Policy,
  parseAddressSpec,
  parsePolicyText,
  ruleToPlain,
  validateRule,
} from './index.js';

/** The internal rules of settings and host; the policy (what it makes the engine fetch) only where a test gives one. */
const internalRules = (s: Settings, h: HostEnvironment, p?: Pick<Policy, 'lists' | 'include'>) =>
  internalRulesOf(s, h, p);

const ENGINE = '/usr/sbin/wardend';
const CONSOLE = '/usr/bin/warden';
const ASSISTANT = '/usr/libexec/warden/warden-assist';

function hostEnv(environment: Record<string, string> = {}, etcEnvironment = ''): HostEnvironment {
  return {
    environment,
    etcEnvironment,
    executables: { engine: ENGINE, console: CONSOLE, assistant: ASSISTANT },
  };
}

/** Settings from a partial plain object, validated and defaulted like a settings file. */
const settings = (partial: Record<string, unknown> = {}): Settings => validateSettings(partial);

function rule(rules: readonly InternalRule[], id: string): InternalRule {
  const r = rules.find((x) => x.id === id);
  if (r === undefined) assert.fail(`no internal rule ${id}; have ${rules.map((x) => x.id).join(', ')}`);
  return r;
}

const ids = (rules: readonly InternalRule[]) => rules.map((r) => r.id);
const port = (p: number) => [{ from: p, to: p }];
const LOCALHOST: AddressSpec[] = [{ kind: 'localhost' }];

function addr(text: string): AddressSpec {
  const r = parseAddressSpec(text);
  if (!r.ok) assert.fail(r.message);
  return r.value;
}

/** The rule's shape, without the explanatory fields, for deepEqual. */
function shape(r: InternalRule) {
  return {
    application: r.application,
    direction: r.direction,
    protocol: r.protocol,
    localPorts: r.localPorts,
    remotePorts: r.remotePorts,
    remote: r.remote,
  };
}

const BASE_IDS = [
  'internal.remote-configuration',
  'internal.console-to-engine',
  'internal.engine-to-console',
  'internal.dns.engine',
  'internal.dns.console',
  'internal.blocked-popups',
];

describe('internalRules: the table of SPEC section 2', () => {
  test('defaults: only the rows that are always there, in order', () => {
    const rules = internalRules(settings(), hostEnv());
    assert.deepEqual(ids(rules), BASE_IDS);
    for (const r of rules) {
      assert.equal(r.action, 'allow', r.id);
      assert.equal(r.enabled, true, r.id);
      assert.equal(r.log, false, r.id);
      assert.ok(r.name.startsWith('internal: '), r.name);
      assert.ok(r.purpose.length > 0 && r.because.length > 0, r.id);
      assert.equal(r.condition, undefined);
      assert.equal(r.expires, undefined);
    }
    assert.equal(new Set(rules.map((r) => r.name)).size, rules.length, 'names are unique');
  });

  test('every row enabled at once, in evaluation order', () => {
    const all = settings({
      crashReports: { sendingAllowed: true },
      updates: { enabled: true },
      registration: { enabled: true },
      syslog: { enabled: true },
    });
    assert.deepEqual(ids(internalRules(all, hostEnv())), [
      ...BASE_IDS.slice(0, 5),
      'internal.crash-reports',
      'internal.blocked-popups',
      'internal.update-checker',
      'internal.registration',
      'internal.syslog',
    ]);
  });

  test('remote configuration: engine, incoming, TCP+UDP, application port, any host / localhost', () => {
    const off = rule(internalRules(settings(), hostEnv()), 'internal.remote-configuration');
    assert.deepEqual(shape(off), {
      application: ENGINE,
      direction: 'incoming',
      protocol: 'tcp+udp',
      localPorts: port(44334),
      remotePorts: undefined,
      remote: LOCALHOST,
    });
    assert.equal(off.purpose, 'remote configuration');
    assert.match(off.because, /remote administration disabled: localhost only/);

    const on = rule(
      internalRules(settings({ remoteAdministration: { enabled: true } }), hostEnv()),
      'internal.remote-configuration',
    );
    assert.deepEqual(shape(on), { ...shape(off), remote: undefined });
    assert.match(on.because, /remote administration enabled: any host/);
  });

  test('console to engine: console, outgoing, TCP+UDP, to the application port, any host, always', () => {
    for (const enabled of [false, true]) {
      const r = rule(
        internalRules(settings({ remoteAdministration: { enabled } }), hostEnv()),
        'internal.console-to-engine',
      );
      assert.deepEqual(shape(r), {
        application: CONSOLE,
        direction: 'outgoing',
        protocol: 'tcp+udp',
        localPorts: undefined,
        remotePorts: port(44334),
        remote: undefined,
      });
    }
  });

  test('engine to console: engine, outgoing, TCP+UDP, any remote port, any host / localhost', () => {
    const off = rule(internalRules(settings(), hostEnv()), 'internal.engine-to-console');
    assert.deepEqual(shape(off), {
      application: ENGINE,
      direction: 'outgoing',
      protocol: 'tcp+udp',
      localPorts: port(44334),
      remotePorts: undefined,
      remote: LOCALHOST,
    });
    const on = rule(
      internalRules(settings({ remoteAdministration: { enabled: true } }), hostEnv()),
      'internal.engine-to-console',
    );
    assert.deepEqual(shape(on), { ...shape(off), remote: undefined });
  });

  test('the application port setting moves every admin rule', () => {
    const rules = internalRules(settings({ applicationPort: 50000 }), hostEnv());
    assert.deepEqual(rule(rules, 'internal.remote-configuration').localPorts, port(50000));
    assert.deepEqual(rule(rules, 'internal.console-to-engine').remotePorts, port(50000));
    assert.deepEqual(rule(rules, 'internal.engine-to-console').localPorts, port(50000));
  });

  test('DNS queries: engine and console, both directions, UDP and TCP, port 53, any server', () => {
    const rules = internalRules(settings(), hostEnv());
    for (const [id, app] of [
      ['internal.dns.engine', ENGINE],
      ['internal.dns.console', CONSOLE],
    ] as const) {
      const r = rule(rules, id);
      assert.deepEqual(shape(r), {
        application: app,
        direction: 'both',
        protocol: 'tcp+udp',
        localPorts: undefined,
        remotePorts: port(53),
        remote: undefined,
      });
      assert.equal(r.purpose, 'DNS queries');
    }
    assert.match(rule(rules, 'internal.dns.engine').name, /\(engine\)$/);
    assert.match(rule(rules, 'internal.dns.console').name, /\(console\)$/);
  });

  test('DNS queries: dns.resolvers restricts both DNS rules to the resolvers', () => {
    const rules = internalRules(settings({ dns: { resolvers: ['9.9.9.9', '2620:fe::fe'] } }), hostEnv());
    for (const id of ['internal.dns.engine', 'internal.dns.console']) {
      const r = rule(rules, id);
      assert.deepEqual(r.remote, [addr('9.9.9.9'), addr('2620:fe::fe')]);
      assert.deepEqual(r.remotePorts, port(53));
      assert.match(r.because, /9\.9\.9\.9, 2620:fe::fe/);
    }
  });

  test('crash reports: only when sending is allowed; assistant, outgoing TCP to the crash server on 443', () => {
    assert.ok(
      !ids(internalRules(settings({ crashReports: { sendingAllowed: false } }), hostEnv())).includes(
        'internal.crash-reports',
      ),
    );
    const r = rule(
      internalRules(settings({ crashReports: { sendingAllowed: true } }), hostEnv()),
      'internal.crash-reports',
    );
    assert.deepEqual(shape(r), {
      application: ASSISTANT,
      direction: 'outgoing',
      protocol: 'tcp',
      localPorts: undefined,
      remotePorts: port(443),
      remote: [{ kind: 'host', name: 'crashes.warden.example' }],
    });
    assert.equal(r.purpose, 'crash reports');
  });

  test('crash reports: the server URL decides host (name or IP) and port', () => {
    const byIp = rule(
      internalRules(
        settings({ crashReports: { sendingAllowed: true, server: 'https://192.0.2.7:8443/r' } }),
        hostEnv(),
      ),
      'internal.crash-reports',
    );
    assert.deepEqual(byIp.remote, [addr('192.0.2.7')]);
    assert.deepEqual(byIp.remotePorts, port(8443));
    const v6 = rule(
      internalRules(
        settings({ crashReports: { sendingAllowed: true, server: 'http://[2001:db8::7]/r' } }),
        hostEnv(),
      ),
      'internal.crash-reports',
    );
    assert.deepEqual(v6.remote, [addr('2001:db8::7')]);
    assert.deepEqual(v6.remotePorts, port(80));
  });

  test('crash reports go through the proxy when the OS configures one', () => {
    const r = rule(
      internalRules(
        settings({ crashReports: { sendingAllowed: true } }),
        hostEnv({ https_proxy: 'http://proxy.lan:3128' }),
      ),
      'internal.crash-reports',
    );
    assert.deepEqual(r.remote, [{ kind: 'host', name: 'proxy.lan' }]);
    assert.deepEqual(r.remotePorts, port(3128));
    assert.match(r.because, /through proxy proxy\.lan:3128/);
  });

  test('blocked pop-up reports: any application, outgoing TCP to localhost 44501, always', () => {
    const r = rule(internalRules(settings(), hostEnv()), 'internal.blocked-popups');
    assert.deepEqual(shape(r), {
      application: 'any',
      direction: 'outgoing',
      protocol: 'tcp',
      localPorts: undefined,
      remotePorts: port(44501),
      remote: LOCALHOST,
    });
    const moved = rule(
      internalRules(settings({ blockedPopups: { port: 45000 } }), hostEnv()),
      'internal.blocked-popups',
    );
    assert.deepEqual(moved.remotePorts, port(45000));
  });

  test('update checker: only when enabled; direct means any host on any port', () => {
    assert.ok(!ids(internalRules(settings(), hostEnv())).includes('internal.update-checker'));
    const r = rule(
      internalRules(settings({ updates: { enabled: true } }), hostEnv()),
      'internal.update-checker',
    );
    assert.deepEqual(shape(r), {
      application: ENGINE,
      direction: 'outgoing',
      protocol: 'tcp',
      localPorts: undefined,
      remotePorts: undefined,
      remote: undefined,
    });
    assert.match(r.because, /directly/);
  });

  test('update checker through the proxy from the OS configuration: proxy host and port only', () => {
    const s = settings({ updates: { enabled: true } });
    const env = rule(
      internalRules(s, hostEnv({ HTTPS_PROXY: 'http://10.0.0.8:8080' })),
      'internal.update-checker',
    );
    assert.deepEqual(env.remote, [addr('10.0.0.8')]);
    assert.deepEqual(env.remotePorts, port(8080));
    assert.match(env.because, /HTTPS_PROXY in the process environment/);

    const etc = rule(
      internalRules(s, hostEnv({}, 'https_proxy="http://proxy.lan:3128"\n')),
      'internal.update-checker',
    );
    assert.deepEqual(etc.remote, [{ kind: 'host', name: 'proxy.lan' }]);
    assert.deepEqual(etc.remotePorts, port(3128));
    assert.match(etc.because, /\/etc\/environment/);

    // no_proxy covering the feed host: direct again.
    const excluded = rule(
      internalRules(s, hostEnv({ https_proxy: 'http://proxy.lan:3128', no_proxy: '.warden.example' })),
      'internal.update-checker',
    );
    assert.equal(excluded.remote, undefined);
    assert.equal(excluded.remotePorts, undefined);
  });

  test('update checker with proxy.mode manual and direct', () => {
    const env = hostEnv({ https_proxy: 'http://env.proxy:1111' });
    const manual = rule(
      internalRules(
        settings({ updates: { enabled: true }, proxy: { mode: 'manual', url: 'http://manual.proxy:3128' } }),
        env,
      ),
      'internal.update-checker',
    );
    assert.deepEqual(manual.remote, [{ kind: 'host', name: 'manual.proxy' }]);
    assert.deepEqual(manual.remotePorts, port(3128));
    const directMode = rule(
      internalRules(settings({ updates: { enabled: true }, proxy: { mode: 'direct' } }), env),
      'internal.update-checker',
    );
    assert.equal(directMode.remote, undefined);
    assert.equal(directMode.remotePorts, undefined);
  });

  test('product registration: only when enabled; direct to the registration host on 443, or via the proxy', () => {
    assert.ok(!ids(internalRules(settings(), hostEnv())).includes('internal.registration'));
    const s = settings({ registration: { enabled: true } });
    const r = rule(internalRules(s, hostEnv()), 'internal.registration');
    assert.deepEqual(shape(r), {
      application: ENGINE,
      direction: 'outgoing',
      protocol: 'tcp',
      localPorts: undefined,
      remotePorts: port(443),
      remote: [{ kind: 'host', name: 'register.warden.example' }],
    });
    assert.equal(r.purpose, 'product registration');
    const viaProxy = rule(
      internalRules(s, hostEnv({ https_proxy: 'http://[2001:db8::3]:3128' })),
      'internal.registration',
    );
    assert.deepEqual(viaProxy.remote, [addr('2001:db8::3')]);
    assert.deepEqual(viaProxy.remotePorts, port(3128));
    const other = rule(
      internalRules(
        settings({ registration: { enabled: true, server: 'https://enrol.corp.example:9443/api' } }),
        hostEnv(),
      ),
      'internal.registration',
    );
    assert.deepEqual(other.remote, [{ kind: 'host', name: 'enrol.corp.example' }]);
    assert.deepEqual(other.remotePorts, port(9443));
  });

  test('syslog: only when enabled; engine, outgoing, UDP to host and port', () => {
    assert.ok(!ids(internalRules(settings(), hostEnv())).includes('internal.syslog'));
    const r = rule(internalRules(settings({ syslog: { enabled: true } }), hostEnv()), 'internal.syslog');
    assert.deepEqual(shape(r), {
      application: ENGINE,
      direction: 'outgoing',
      protocol: 'udp',
      localPorts: undefined,
      remotePorts: port(514),
      remote: [addr('127.0.0.1')],
    });
    assert.match(r.because, /UDP to 127\.0\.0\.1:514/);
  });

  test('syslog: TCP and TLS are TCP; host as IP or name; the port follows the setting', () => {
    const tcp = rule(
      internalRules(
        settings({ syslog: { enabled: true, transport: 'tcp', host: 'Logs.Example.com', port: 1514 } }),
        hostEnv(),
      ),
      'internal.syslog',
    );
    assert.equal(tcp.protocol, 'tcp');
    assert.deepEqual(tcp.remote, [{ kind: 'host', name: 'logs.example.com' }]);
    assert.deepEqual(tcp.remotePorts, port(1514));
    const tls = rule(
      internalRules(
        settings({ syslog: { enabled: true, transport: 'tls', host: '2001:db8::514', port: 6514 } }),
        hostEnv(),
      ),
      'internal.syslog',
    );
    assert.equal(tls.protocol, 'tcp');
    assert.deepEqual(tls.remote, [addr('2001:db8::514')]);
    assert.deepEqual(tls.remotePorts, port(6514));
    assert.match(tls.because, /TLS/);
  });
});

const settingsInput = fc.record({
  applicationPort: fc.integer({ min: 1, max: 44000 }),
  remoteAdministration: fc.record({ enabled: fc.boolean() }),
  dns: fc.record({ resolvers: fc.array(fc.ipV4(), { maxLength: 3 }) }),
  crashReports: fc.record({ sendingAllowed: fc.boolean() }),
  updates: fc.record({ enabled: fc.boolean() }),
  registration: fc.record({ enabled: fc.boolean() }),
  syslog: fc.record({
    enabled: fc.boolean(),
    host: fc.oneof(fc.ipV4(), fc.constant('logs.example.com')),
    transport: fc.constantFrom('udp', 'tcp', 'tls'),
  }),
  proxy: fc.record({ mode: fc.constantFrom('auto', 'direct') }),
});
const environment = fc.oneof(
  fc.constant({}),
  fc.constant({ https_proxy: 'http://proxy.lan:3128' }),
  fc.constant({ HTTPS_PROXY: 'http://10.0.0.8:8080', no_proxy: '.warden.example' }),
);

describe('internalRules: properties', () => {
  test('for any settings: valid rules, unique ids, blocked pop-ups always, admin rules follow remote administration', () => {
    fc.assert(
      fc.property(settingsInput, environment, (input, env) => {
        const s = settings(input);
        const rules = internalRules(s, hostEnv(env));
        assert.equal(new Set(ids(rules)).size, rules.length);
        assert.deepEqual(internalRules(s, hostEnv(env)), rules, 'pure');
        for (const r of rules) {
          // Every internal rule is a rule a user could have written.
          assert.deepEqual(ruleToPlain(validateRule(ruleToPlain(r))), ruleToPlain(r));
        }
        const popup = rule(rules, 'internal.blocked-popups');
        assert.deepEqual(popup.remote, LOCALHOST);
        assert.equal(popup.application, 'any');
        const peers = s.remoteAdministration.enabled ? undefined : LOCALHOST;
        assert.deepEqual(rule(rules, 'internal.remote-configuration').remote, peers);
        assert.deepEqual(rule(rules, 'internal.engine-to-console').remote, peers);
        assert.equal(ids(rules).includes('internal.crash-reports'), s.crashReports.sendingAllowed);
        assert.equal(ids(rules).includes('internal.update-checker'), s.updates.enabled);
        assert.equal(ids(rules).includes('internal.registration'), s.registration.enabled);
        assert.equal(ids(rules).includes('internal.syslog'), s.syslog.enabled);
      }),
      { numRuns: 200 },
    );
  });
});

// ---------------------------------------------------------------------------
// Compiled and decided: the internal rules in front of a default policy.

const NOW = Date.parse('2026-01-15T12:00:00Z');

function facts(f: Partial<ConnectionFacts> & { remote?: string }): ConnectionFacts {
  const { remote, ...rest } = f;
  return {
    direction: 'incoming',
    protocol: 'tcp',
    application: ENGINE,
    uid: 0,
    user: 'root',
    localAddress: parseIp('192.0.2.1'),
    localPort: 44334,
    remoteAddress: parseIp(remote ?? '203.0.113.5'),
    remotePort: 51000,
    remoteHosts: [],
    now: NOW,
    ...rest,
  };
}

/** Decides with both evaluators, checks they agree, and returns the decision. */
function decideBoth(policy: ReturnType<typeof compilePolicy>, f: ConnectionFacts): Decision {
  const indexed = decide(policy, f, 'indexed');
  assert.deepEqual(decide(policy, f, 'linear'), indexed);
  return indexed;
}

function compiled(partial: Record<string, unknown>, policyText = '', env: HostEnvironment = hostEnv()) {
  const s = settings(partial);
  const policy: Policy = parsePolicyText(policyText);
  return compilePolicy(policy, { settings: s, internalRules: internalRules(s, env) });
}

function allowedBy(d: Decision, ruleName: string): void {
  assert.equal(d.verdict, 'allow', JSON.stringify(d));
  assert.equal(d.source, 'internal');
  assert.equal(d.ruleName, ruleName);
}

function deniedByDefault(d: Decision, direction: 'incoming' | 'outgoing'): void {
  assert.equal(d.verdict, 'deny', JSON.stringify(d));
  assert.equal(d.source, 'default');
  assert.equal(d.ruleName, `default ${direction}`);
  assert.equal(d.ruleIndex, -1);
  assert.equal(d.log, true, 'every block is a log item');
}

describe('internal rules, compiled and decided', () => {
  test('remote administration enabled: the engine accepts a remote console on the application port', () => {
    const p = compiled({ remoteAdministration: { enabled: true } });
    allowedBy(decideBoth(p, facts({})), 'internal: remote configuration');
    allowedBy(decideBoth(p, facts({ protocol: 'udp' })), 'internal: remote configuration');
    allowedBy(decideBoth(p, facts({ remote: '2001:db8::99' })), 'internal: remote configuration');
  });

  test('remote administration disabled: the same connection falls to the default deny', () => {
    const p = compiled({});
    deniedByDefault(decideBoth(p, facts({})), 'incoming');
    deniedByDefault(decideBoth(p, facts({ protocol: 'udp' })), 'incoming');
    deniedByDefault(decideBoth(p, facts({ remote: '2001:db8::99' })), 'incoming');
  });

  test('from localhost the engine is reachable either way', () => {
    for (const enabled of [false, true]) {
      const p = compiled({ remoteAdministration: { enabled } });
      for (const remote of ['127.0.0.1', '127.1.2.3', '::1', '::ffff:127.0.0.1']) {
        allowedBy(
          decideBoth(p, facts({ remote, localAddress: parseIp('127.0.0.1') })),
          'internal: remote configuration',
        );
      }
    }
  });

  test('only the engine, only on the application port', () => {
    const p = compiled({ remoteAdministration: { enabled: true }, applicationPort: 45000 });
    allowedBy(decideBoth(p, facts({ localPort: 45000 })), 'internal: remote configuration');
    deniedByDefault(decideBoth(p, facts({ localPort: 44334 })), 'incoming');
    deniedByDefault(decideBoth(p, facts({ localPort: 45000, application: '/usr/bin/nc' })), 'incoming');
    deniedByDefault(decideBoth(p, facts({ localPort: 45000, protocol: 'icmp' })), 'incoming');
  });

  test('the engine answers consoles from the application port: any host / localhost', () => {
    const out = facts({ direction: 'outgoing', localPort: 44334, remotePort: 51000 });
    const on = compiled(
      { remoteAdministration: { enabled: true } },
      'defaults:\n  outgoing:\n    action: deny\n',
    );
    allowedBy(decideBoth(on, { ...out, protocol: 'udp' }), 'internal: engine to console');
    const off = compiled({}, 'defaults:\n  outgoing:\n    action: deny\n');
    deniedByDefault(decideBoth(off, { ...out, protocol: 'udp' }), 'outgoing');
    allowedBy(
      decideBoth(off, { ...out, remoteAddress: parseIp('127.0.0.1') }),
      'internal: engine to console',
    );
  });

  test('internal rules come before user rules: a user deny-all does not cut Warden off', () => {
    const denyAll = [
      'rules:',
      '  - name: deny everything',
      '    direction: both',
      '    action: deny',
      '',
    ].join('\n');
    const p = compiled({ syslog: { enabled: true, host: '192.0.2.10' } }, denyAll);
    // The console reaches a remote engine.
    allowedBy(
      decideBoth(
        p,
        facts({ direction: 'outgoing', application: CONSOLE, localPort: 50123, remotePort: 44334 }),
      ),
      'internal: console to engine',
    );
    // DNS from the engine.
    allowedBy(
      decideBoth(
        p,
        facts({
          direction: 'outgoing',
          protocol: 'udp',
          localPort: 40000,
          remotePort: 53,
          remote: '9.9.9.9',
        }),
      ),
      'internal: DNS queries (engine)',
    );
    // Any application reports a blocked pop-up to localhost.
    allowedBy(
      decideBoth(
        p,
        facts({
          direction: 'outgoing',
          application: '/usr/bin/firefox',
          uid: 1000,
          user: 'ann',
          localPort: 40001,
          remotePort: 44501,
          remote: '127.0.0.1',
        }),
      ),
      'internal: blocked pop-up reports',
    );
    // Syslog to the receiver.
    allowedBy(
      decideBoth(
        p,
        facts({
          direction: 'outgoing',
          protocol: 'udp',
          localPort: 40002,
          remotePort: 514,
          remote: '192.0.2.10',
        }),
      ),
      'internal: syslog',
    );
    // But the same port elsewhere, or another port, is the user's business.
    const popupElsewhere = decideBoth(
      p,
      facts({
        direction: 'outgoing',
        application: '/usr/bin/firefox',
        localPort: 40001,
        remotePort: 44501,
        remote: '203.0.113.5',
      }),
    );
    assert.equal(popupElsewhere.source, 'user');
    assert.equal(popupElsewhere.verdict, 'deny');
    const syslogTcp = decideBoth(
      p,
      facts({
        direction: 'outgoing',
        protocol: 'tcp',
        localPort: 40002,
        remotePort: 514,
        remote: '192.0.2.10',
      }),
    );
    assert.equal(syslogTcp.ruleName, 'deny everything');
  });

  test('DNS restricted to the configured resolvers', () => {
    const p = compiled({ dns: { resolvers: ['9.9.9.9'] } }, 'defaults:\n  outgoing:\n    action: deny\n');
    const q = (remote: string) =>
      facts({ direction: 'outgoing', protocol: 'udp', localPort: 40000, remotePort: 53, remote });
    allowedBy(decideBoth(p, q('9.9.9.9')), 'internal: DNS queries (engine)');
    allowedBy(decideBoth(p, { ...q('9.9.9.9'), application: CONSOLE }), 'internal: DNS queries (console)');
    deniedByDefault(decideBoth(p, q('8.8.8.8')), 'outgoing');
  });

  test('update checks and registration through the proxy: only the proxy is allowed', () => {
    const env = hostEnv({ https_proxy: 'http://10.0.0.8:3128' });
    const p = compiled(
      { updates: { enabled: true }, registration: { enabled: true } },
      'defaults:\n  outgoing:\n    action: deny\n',
      env,
    );
    const out = (remote: string, remotePort: number) =>
      facts({ direction: 'outgoing', localPort: 40000, remote, remotePort });
    allowedBy(decideBoth(p, out('10.0.0.8', 3128)), 'internal: update checker');
    deniedByDefault(decideBoth(p, out('198.51.100.20', 443)), 'outgoing');
    deniedByDefault(decideBoth(p, out('10.0.0.8', 443)), 'outgoing');

    const directP = compiled({ updates: { enabled: true } }, 'defaults:\n  outgoing:\n    action: deny\n');
    allowedBy(decideBoth(directP, out('198.51.100.20', 443)), 'internal: update checker');
  });

  test('crash reports: the assistant reaches the crash server only when sending is allowed', () => {
    const report = facts({
      direction: 'outgoing',
      application: ASSISTANT,
      localPort: 40000,
      remotePort: 443,
      remote: '198.51.100.7',
      remoteHosts: ['crashes.warden.example'],
    });
    const deny = 'defaults:\n  outgoing:\n    action: deny\n';
    allowedBy(
      decideBoth(compiled({ crashReports: { sendingAllowed: true } }, deny), report),
      'internal: crash reports',
    );
    deniedByDefault(
      decideBoth(compiled({ crashReports: { sendingAllowed: false } }, deny), report),
      'outgoing',
    );
  });
});
