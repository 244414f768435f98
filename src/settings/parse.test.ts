import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { WardenError } from '../errors.js';
import { DEFAULT_SETTINGS } from './defaults.js';
import { defaultSettings, parseSettingsText, serializeSettings, validateSettings } from './parse.js';
import type { Settings } from './schema.js';
import { SETTING_PATHS, settingValue } from './schema.js';

/** Runs fn, expects a WardenError with the code, and returns it. */
function fails(fn: () => unknown, code: string): WardenError {
  try {
    fn();
  } catch (err) {
    assert.ok(err instanceof WardenError, `expected a WardenError, got ${String(err)}`);
    assert.equal(err.code, code, err.message);
    assert.ok(err.problems.length > 0);
    return err;
  }
  assert.fail('expected an error');
}

const invalid = (text: string, file?: string) =>
  fails(() => parseSettingsText(text, file === undefined ? {} : { file }), 'WARDEN_E_SETTINGS_INVALID');

describe('parseSettingsText: defaults', () => {
  test('an empty file gives all defaults', () => {
    assert.deepEqual(parseSettingsText(''), DEFAULT_SETTINGS);
    assert.deepEqual(parseSettingsText('# nothing changed\n'), DEFAULT_SETTINGS);
    assert.deepEqual(parseSettingsText('{}'), DEFAULT_SETTINGS);
    assert.deepEqual(defaultSettings(), DEFAULT_SETTINGS);
  });

  test('the result is frozen, deeply', () => {
    const s = parseSettingsText('');
    assert.ok(Object.isFrozen(s));
    assert.ok(Object.isFrozen(s.syslog));
    assert.ok(Object.isFrozen(s.dns.resolvers));
  });

  test('a partial file changes only the keys it names', () => {
    const s = parseSettingsText(
      [
        'applicationPort: 45000',
        'remoteAdministration:',
        '  enabled: true',
        'syslog:',
        '  host: logs.example.com',
        '',
      ].join('\n'),
    );
    assert.equal(s.applicationPort, 45000);
    assert.equal(s.remoteAdministration.enabled, true);
    assert.equal(s.syslog.host, 'logs.example.com');
    // Siblings of a changed key keep their defaults.
    assert.equal(s.syslog.enabled, DEFAULT_SETTINGS.syslog.enabled);
    assert.equal(s.syslog.port, DEFAULT_SETTINGS.syslog.port);
    assert.equal(s.syslog.transport, DEFAULT_SETTINGS.syslog.transport);
    assert.deepEqual(s.crashReports, DEFAULT_SETTINGS.crashReports);
    assert.deepEqual(s.proxy, DEFAULT_SETTINGS.proxy);
    assert.deepEqual(s.blockedPopups, DEFAULT_SETTINGS.blockedPopups);
  });

  test('an empty section takes its defaults', () => {
    const s = parseSettingsText('syslog: {}\ndns: {}\n');
    assert.deepEqual(s.syslog, DEFAULT_SETTINGS.syslog);
    assert.deepEqual(s.dns, DEFAULT_SETTINGS.dns);
  });

  test('every setting a rule condition can name exists with its default type', () => {
    const s = defaultSettings();
    assert.ok(SETTING_PATHS.length > 10);
    for (const p of SETTING_PATHS) assert.equal(typeof settingValue(s, p.path), p.type, p.path);
    assert.equal(settingValue(s, 'syslog.port'), 514);
    assert.equal(settingValue(s, 'no.such.setting'), undefined);
  });

  test('full values are accepted', () => {
    const s = parseSettingsText(
      [
        'dns:',
        '  resolvers: [9.9.9.9, "2620:fe::fe"]',
        'proxy:',
        '  mode: manual',
        '  url: http://proxy.example:3128',
        'syslog:',
        '  enabled: true',
        '  transport: tls',
        '  port: 6514',
        '  host: 192.0.2.10',
        'updates:',
        '  intervalHours: 1',
      ].join('\n'),
    );
    assert.deepEqual(s.dns.resolvers, ['9.9.9.9', '2620:fe::fe']);
    assert.deepEqual(s.proxy, { mode: 'manual', url: 'http://proxy.example:3128' });
    assert.equal(s.syslog.transport, 'tls');
    assert.equal(s.updates.intervalHours, 1);
  });
});

describe('parseSettingsText: errors', () => {
  test('an unknown key names the key and the line', () => {
    const err = invalid('applicationPort: 44334\ncolour: blue\n', 'settings.yaml');
    const p = err.problems[0]!;
    assert.equal(p.line, 2);
    assert.deepEqual(p.path, ['colour']);
    assert.equal(p.file, 'settings.yaml');
    assert.match(p.message, /unknown field "colour"/);
    assert.match(err.message, /settings\.yaml:2/);
  });

  test('an unknown nested key names its path and line', () => {
    const err = invalid('syslog:\n  enabled: true\n  hots: logs.example\n');
    const p = err.problems[0]!;
    assert.deepEqual(p.path, ['syslog', 'hots']);
    assert.equal(p.line, 3);
    assert.match(p.message, /unknown field "hots"/);
  });

  test('a bad port is refused at its line', () => {
    for (const [text, line] of [
      ['applicationPort: 70000\n', 1],
      ['applicationPort: 0\n', 1],
      ['syslog:\n  port: 65536\n', 2],
      ['blockedPopups:\n  port: -1\n', 2],
    ] as const) {
      const p = invalid(text).problems[0]!;
      assert.match(p.message, /port must be 1-65535/, text);
      assert.equal(p.line, line, text);
    }
    const frac = invalid('applicationPort: 80.5\n').problems[0]!;
    assert.deepEqual(frac.path, ['applicationPort']);
    const text = invalid('applicationPort: "80"\n').problems[0]!;
    assert.deepEqual(text.path, ['applicationPort']);
  });

  test('proxy.mode manual without a url is refused', () => {
    const err = invalid('proxy:\n  mode: manual\n');
    const p = err.problems[0]!;
    assert.deepEqual(p.path, ['proxy', 'url']);
    assert.match(p.message, /manual but proxy\.url is empty/);
    assert.equal(typeof p.line, 'number');
  });

  test('bad values of every kind are refused with their path', () => {
    const cases: [string, readonly (string | number)[]][] = [
      ['remoteAdministration:\n  enabled: yes\n', ['remoteAdministration', 'enabled']],
      ['dns:\n  resolvers: [dns.example]\n', ['dns', 'resolvers', 0]],
      ['crashReports:\n  server: ftp://crash.example\n', ['crashReports', 'server']],
      ['updates:\n  feedUrl: not a url\n', ['updates', 'feedUrl']],
      ['updates:\n  intervalHours: 0\n', ['updates', 'intervalHours']],
      ['syslog:\n  transport: relp\n', ['syslog', 'transport']],
      ['syslog:\n  host: "bad_host!"\n', ['syslog', 'host']],
      ['syslog:\n  host: "*.example.com"\n', ['syslog', 'host']],
      ['proxy:\n  mode: pac\n', ['proxy', 'mode']],
      ['proxy:\n  url: socks5://proxy:1080\n', ['proxy', 'url']],
      ['applicationPort: 44501\n', ['applicationPort']],
    ];
    for (const [text, path] of cases) {
      const err = invalid(text);
      assert.ok(
        err.problems.some((p) => JSON.stringify(p.path) === JSON.stringify(path)),
        `${JSON.stringify(text)}: ${JSON.stringify(err.problems)}`,
      );
      assert.ok(
        err.problems.every((p) => typeof p.line === 'number'),
        text,
      );
    }
  });

  test('a document that is not a mapping is refused', () => {
    invalid('- a\n- b\n');
    invalid('just text\n');
    fails(() => validateSettings(null), 'WARDEN_E_SETTINGS_INVALID');
    fails(() => validateSettings([]), 'WARDEN_E_SETTINGS_INVALID');
  });

  test('every problem is reported, not just the first', () => {
    const err = invalid('applicationPort: 0\ncolour: blue\nsyslog:\n  port: 99999\n');
    assert.equal(err.problems.length, 3);
    assert.match(err.message, /3 problems/);
  });

  test('a YAML syntax error gives WARDEN_E_YAML_SYNTAX with a line', () => {
    for (const [text, line] of [
      ['applicationPort: 44334\nsyslog: [1, 2\n', 3],
      ['syslog:\n\tenabled: true\n', 2],
      ['applicationPort: 1\napplicationPort: 2\n', 2],
    ] as const) {
      const err = fails(() => parseSettingsText(text, { file: 's.yaml' }), 'WARDEN_E_YAML_SYNTAX');
      const p = err.problems[0]!;
      assert.equal(typeof p.line, 'number', text);
      assert.ok(p.line! >= 1 && p.line! <= line, `${JSON.stringify(text)}: line ${p.line}`);
      assert.equal(p.file, 's.yaml');
      assert.ok(err.suggestion !== undefined);
    }
  });
});

const host = fc.oneof(
  fc.ipV4(),
  fc.domain().filter((d) => !/^[0-9.]+$/.test(d)),
);
const port = fc.integer({ min: 1, max: 65535 });
const httpsUrl = fc
  .tuple(fc.domain(), fc.option(port, { nil: undefined }))
  .map(([h, p]) => `https://${h.toLowerCase()}${p === undefined ? '' : `:${p}`}/x`);

/** Random settings values, as a plain object for validateSettings. */
const settingsInput = fc
  .record({
    applicationPort: port,
    remoteAdministration: fc.record({ enabled: fc.boolean() }),
    dns: fc.record({
      resolvers: fc.array(fc.oneof(fc.ipV4(), fc.constant('2001:db8::53')), { maxLength: 3 }),
    }),
    crashReports: fc.record({ sendingAllowed: fc.boolean(), server: httpsUrl }),
    updates: fc.record({
      enabled: fc.boolean(),
      feedUrl: httpsUrl,
      intervalHours: fc.integer({ min: 1, max: 720 }),
    }),
    registration: fc.record({ enabled: fc.boolean(), server: httpsUrl }),
    syslog: fc.record({ enabled: fc.boolean(), host, port, transport: fc.constantFrom('udp', 'tcp', 'tls') }),
    proxy: fc.oneof(
      fc.record({ mode: fc.constantFrom('auto', 'direct'), url: fc.constant('') }),
      fc.record({ mode: fc.constant('manual'), url: fc.constant('http://proxy.example:3128') }),
    ),
    blockedPopups: fc.record({ port }),
  })
  .filter((s) => s.applicationPort !== s.blockedPopups.port);

describe('serializeSettings', () => {
  test('defaults round-trip', () => {
    const text = serializeSettings(defaultSettings());
    assert.match(text, /^# Warden engine settings/);
    assert.deepEqual(parseSettingsText(text), DEFAULT_SETTINGS);
  });

  test('parse(serialize(s)) deep-equals s for random settings', () => {
    fc.assert(
      fc.property(settingsInput, (input) => {
        const s: Settings = validateSettings(input);
        assert.deepEqual(parseSettingsText(serializeSettings(s)), s);
      }),
      { numRuns: 300 },
    );
  });
});
