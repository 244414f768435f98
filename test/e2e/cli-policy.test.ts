/** End-to-end: the built `warden` binary, spawned as a user would run it. */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { repoRoot } from '../repo-root.js';

const root = repoRoot(import.meta.url);
const bin = join(root, 'dist/src/console/bin.js');
const examplePolicy = join(root, 'examples/policy.yaml');
const exampleSettings = join(root, 'examples/settings.yaml');
const work = mkdtempSync(join(tmpdir(), 'warden-cli-'));
after(() => rmSync(work, { recursive: true, force: true }));

function warden(args: string[], env: Record<string, string> = {}) {
  const r = spawnSync(process.execPath, [bin, ...args], {
    encoding: 'utf8',
    env: { PATH: process.env.PATH ?? '', NO_COLOR: '1', FORCE_COLOR: '0', ...env },
  });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

function file(name: string, text: string): string {
  const path = join(work, name);
  writeFileSync(path, text);
  return path;
}

describe('warden policy check', () => {
  test('a valid policy and settings: exit 0 and a summary on stdout', () => {
    const r = warden(['policy', 'check', examplePolicy, '--settings', exampleSettings]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /OK: 6 rules \(6 enabled\)/);
    // Only warnings: the example's programs (sshd, firefox) need not be installed on the test host.
    for (const line of r.stderr.split('\n').filter(Boolean)) {
      assert.match(line, /^warning: rule "[^"]+": application "[^"]+" does not exist on this host/);
    }
  });

  test('an invalid policy: exit 1, every problem with file:line, rule and field on stderr', () => {
    const bad = file(
      'bad.yaml',
      `rules:
  - name: web
    direction: outgoing
    protocol: tcp
    remotePorts: 70000
    action: allow
  - name: lan
    direction: outgoing
    remote: 10.0.0.1/8
    action: deny
    colour: red
`,
    );
    const r = warden(['policy', 'check', bad]);
    assert.equal(r.code, 1);
    assert.equal(r.stdout, '');
    assert.match(
      r.stderr,
      /bad\.yaml:5:\d+: rules\[0\]\.remotePorts \(rule "web"\): port 70000 is out of range 1-65535/,
    );
    assert.match(
      r.stderr,
      /bad\.yaml:9:\d+: rules\[1\]\.remote \(rule "lan"\): .*did you mean 10\.0\.0\.0\/8\?/,
    );
    assert.match(r.stderr, /bad\.yaml:11:\d+: rules\[1\]\.colour \(rule "lan"\): unknown field "colour"/);
  });

  test('YAML syntax errors name the line', () => {
    const r = warden(['policy', 'check', file('syntax.yaml', 'rules:\n  - name: a\n   direction: in\n')]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /not valid YAML/);
    assert.match(r.stderr, /syntax\.yaml:3/);
  });

  test('a missing file: exit 1 with a clear message', () => {
    const r = warden(['policy', 'check', join(work, 'nope.yaml')]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /policy file .*nope\.yaml does not exist/);
  });

  test('--json prints the parsed policy', () => {
    const r = warden(['policy', 'check', examplePolicy, '--json']);
    assert.equal(r.code, 0);
    const out = JSON.parse(r.stdout);
    assert.equal(out.ok, true);
    assert.equal(out.policy.rules[0].name, 'ssh from the LAN');
  });
});

describe('warden policy explain', () => {
  test('an allowed connection: exit 0, names the deciding rule and earlier mismatches', () => {
    const r = warden([
      'policy',
      'explain',
      examplePolicy,
      '--app',
      '/usr/bin/firefox',
      '--to',
      '93.184.215.14:443',
    ]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /verdict: +ALLOW by "browser on the web"/);
    assert.match(r.stdout, /"ssh from the LAN": direction/);
  });

  test('a blocked connection: exit 1', () => {
    const r = warden([
      'policy',
      'explain',
      examplePolicy,
      '--app',
      '/usr/bin/curl',
      '--to',
      'stats.g.doubleclick.net:443',
    ]);
    assert.equal(r.code, 1);
    assert.match(r.stdout, /REJECT by "no trackers"/);
  });

  test('incoming traffic falls to the default deny unless a rule allows it', () => {
    const ssh = [
      'policy',
      'explain',
      examplePolicy,
      '--in',
      '--tcp',
      '--app',
      '/usr/sbin/sshd',
      '--local-port',
      '22',
    ];
    assert.equal(warden([...ssh, '--from', '192.168.1.20']).code, 0);
    const r = warden([...ssh, '--from', '203.0.113.9']);
    assert.equal(r.code, 1);
    assert.match(r.stdout, /DENY by "default incoming"/);
  });

  test('internal rules decide before user rules and are named', () => {
    const r = warden([
      'policy',
      'explain',
      examplePolicy,
      '--settings',
      exampleSettings,
      '--app',
      '/usr/lib/warden/wardend',
      '--in',
      '--from',
      '198.51.100.4:50000',
      '--local-port',
      '44334',
      '--json',
    ]);
    assert.equal(r.code, 0, r.stderr);
    const out = JSON.parse(r.stdout);
    assert.equal(out.decision.source, 'internal');
    assert.equal(out.internal.id, 'internal.remote-configuration');
    assert.match(out.internal.because, /remote administration enabled/);
  });

  test('usage errors exit 2 with a hint', () => {
    const r = warden(['policy', 'explain', examplePolicy, '--to', 'a.example:443', '--from', '10.0.0.1']);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /--to \(outgoing\) and --from \(incoming\) exclude each other/);
    const noDir = warden(['policy', 'explain', examplePolicy, '--app', '/usr/bin/curl']);
    assert.equal(noDir.code, 2);
    assert.match(noDir.stderr, /hint: Add --out --to HOST:PORT/);
  });
});

describe('warden policy lint', () => {
  test('findings name both rules and exit 1', () => {
    const p = file(
      'lint.yaml',
      `rules:
  - { name: all web, direction: outgoing, protocol: tcp, remotePorts: [80, 443], action: allow }
  - { name: no https, direction: outgoing, protocol: tcp, remotePorts: 443, action: deny }
  - { name: gone, direction: outgoing, action: deny, expires: "2020-01-01T00:00:00Z" }
`,
    );
    const r = warden(['policy', 'lint', p, '--json']);
    assert.equal(r.code, 1);
    const { findings } = JSON.parse(r.stdout);
    assert.deepEqual(
      findings.map((f: { kind: string; rule: string; other?: string }) => [f.kind, f.rule, f.other ?? null]),
      [
        ['shadowed', 'no https', 'all web'],
        ['never-matches', 'gone', null],
      ],
    );
  });

  test('a clean policy: exit 0', () => {
    const r = warden([
      'policy',
      'lint',
      file(
        'clean.yaml',
        'rules:\n  - { name: ssh, direction: incoming, protocol: tcp, localPorts: 22, action: allow }\n',
      ),
    ]);
    assert.equal(r.code, 0, r.stdout);
    assert.match(r.stdout, /no findings/);
  });
});

describe('warden policy internal', () => {
  test('prints every internal rule; the proxy comes from the environment', () => {
    const settings = file(
      'settings.yaml',
      'updates: { enabled: true }\nregistration: { enabled: true }\ncrashReports: { sendingAllowed: true }\nsyslog: { enabled: true, host: logs.example.net, port: 6514, transport: tls }\n',
    );
    const r = warden(['policy', 'internal', settings, '--json'], {
      https_proxy: 'http://proxy.lan:3128',
      no_proxy: 'crashes.warden.example',
    });
    assert.equal(r.code, 0, r.stderr);
    const rules = JSON.parse(r.stdout) as {
      id: string;
      remote?: string;
      remotePorts?: number;
      protocol: string;
    }[];
    const byId = new Map(rules.map((x) => [x.id, x]));
    assert.deepEqual(
      [...byId.keys()],
      [
        'internal.remote-configuration',
        'internal.console-to-engine',
        'internal.engine-to-console',
        'internal.dns.engine',
        'internal.dns.console',
        'internal.crash-reports',
        'internal.blocked-popups',
        'internal.update-checker',
        'internal.registration',
        'internal.syslog',
      ],
    );
    assert.equal(byId.get('internal.update-checker')?.remote, 'proxy.lan');
    assert.equal(byId.get('internal.update-checker')?.remotePorts, 3128);
    assert.equal(byId.get('internal.crash-reports')?.remote, 'crashes.warden.example');
    assert.equal(byId.get('internal.syslog')?.protocol, 'tcp');
  });

  test('human output is a table', () => {
    const r = warden(['policy', 'internal']);
    assert.equal(r.code, 0);
    assert.match(r.stdout, /internal\.remote-configuration .* localhost +remote administration disabled/);
  });
});

describe('warden', () => {
  test('--help exits 0; an unknown command exits 2 with a suggestion', () => {
    assert.equal(warden(['--help']).code, 0);
    const r = warden(['policy', 'chek']);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /^hint: did you mean check\?/m);
  });
});

describe('errors with --json', () => {
  test('are one JSON object on stderr with the code and located problems', () => {
    const bad = file('bad-json.yaml', 'rules:\n  - { name: x, direction: sideways, action: allow }\n');
    const r = warden(['policy', 'check', bad, '--json']);
    assert.equal(r.code, 1);
    const { error } = JSON.parse(r.stderr);
    assert.equal(error.code, 'WARDEN_E_POLICY_INVALID');
    assert.equal(error.problems[0].line, 2);
    assert.equal(error.problems[0].rule, 'x');
    assert.deepEqual(error.problems[0].path, ['rules', 0, 'direction']);
  });
});

describe('warden policy explain with lists', () => {
  test('a file list of the policy is read, so explain decides with its content', () => {
    const nets = file('nets.txt', '# bad networks\n198.51.100.0/24\n');
    const policy = file(
      'listed.yaml',
      `lists:\n  nets: { file: ${nets}, format: ips }\nrules:\n  - { name: no nets, direction: outgoing, remote: "list:nets", action: deny }\n`,
    );
    const explain = (to: string) =>
      warden(['policy', 'explain', policy, '--app', '/usr/bin/curl', '--out', '--tcp', '--to', to]);
    assert.match(explain('198.51.100.7:443').stdout, /verdict: +DENY by "no nets"/);
    assert.match(explain('192.0.2.7:443').stdout, /verdict: +ALLOW by "default outgoing"/);
  });
});
