import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { parseRfc5424, splitOctetFrames } from '../../test/support/rfc5424.js';
import { MemoryLogStore } from '../admin/log-store.js';
import { LOG_KINDS, type LogItem } from '../protocol/log-item.js';
import {
  escapeParamValue,
  formatSyslog,
  forwardLogs,
  octetFrame,
  SYSLOG_SD_ID,
  syslogPri,
} from './syslog.js';

const text = fc.string({ unit: 'grapheme', maxLength: 40 });
const headerText = fc.string({
  unit: fc.integer({ min: 0x21, max: 0x7e }).map((c) => String.fromCharCode(c)),
  minLength: 1,
  maxLength: 30,
});

const item: fc.Arbitrary<LogItem> = fc.record(
  {
    seq: fc.integer({ min: 1, max: Number.MAX_SAFE_INTEGER }),
    time: fc
      .date({
        min: new Date('1970-01-01T00:00:00Z'),
        max: new Date('9999-12-31T23:59:59Z'),
        noInvalidDate: true,
      })
      .map((d) => d.toISOString()),
    kind: fc.constantFrom(...LOG_KINDS),
    verdict: fc.constantFrom('allow', 'deny', 'reject', 'ask'),
    direction: fc.constantFrom('incoming', 'outgoing'),
    protocol: text,
    application: text,
    local: text,
    remote: text,
    host: text,
    rule: text,
    user: text,
    source: text,
    message: text,
  },
  { requiredKeys: ['seq', 'time', 'kind', 'message'] },
) as fc.Arbitrary<LogItem>;

const PARAMS: [string, keyof LogItem][] = [
  ['seq', 'seq'],
  ['verdict', 'verdict'],
  ['direction', 'direction'],
  ['protocol', 'protocol'],
  ['app', 'application'],
  ['local', 'local'],
  ['remote', 'remote'],
  ['host', 'host'],
  ['rule', 'rule'],
  ['user', 'user'],
  ['source', 'source'],
];

test('formatSyslog: any item gives an RFC 5424 line that parses back to the same values', () => {
  fc.assert(
    fc.property(item, headerText, headerText, (it, hostname, procId) => {
      const line = formatSyslog(it, { hostname, appName: 'wardend', procId });
      const p = parseRfc5424(line);
      assert.equal(p.pri, syslogPri(it));
      assert.equal(p.version, 1);
      assert.equal(p.timestamp, it.time);
      assert.equal(p.hostname, hostname);
      assert.equal(p.appName, 'wardend');
      assert.equal(p.procId, procId);
      assert.equal(p.msgId, it.kind);
      const expected = PARAMS.filter(([, f]) => it[f] !== undefined).map(([n, f]) => [n, String(it[f])]);
      assert.deepEqual(p.sd.get(SYSLOG_SD_ID), expected);
      assert.equal(p.msg ?? '', it.message);
      // Octet counting counts UTF-8 bytes.
      assert.deepEqual(splitOctetFrames(octetFrame(line)).frames, [line]);
    }),
    { numRuns: 500 },
  );
});

test('formatSyslog: an exact line, PRI by kind and verdict, escaping and header sanitizing', () => {
  const line = formatSyslog(
    {
      seq: 7,
      time: '2025-01-02T03:04:05.678+01:00',
      kind: 'connection',
      verdict: 'deny',
      application: '/usr/bin/cu"rl',
      remote: '[::1]:443',
      rule: 'a\\b]c',
      message: 'denied héllo',
    },
    { hostname: 'my host', appName: 'wardend', procId: '42' },
  );
  assert.equal(
    line,
    '<133>1 2025-01-02T02:04:05.678Z my_host wardend 42 connection ' +
      '[warden@32473 seq="7" verdict="deny" app="/usr/bin/cu\\"rl" remote="[::1\\]:443" rule="a\\\\b\\]c"] denied héllo',
  );
  assert.equal(syslogPri({ kind: 'connection', verdict: 'allow' }), 16 * 8 + 6);
  assert.equal(syslogPri({ kind: 'connection', verdict: 'reject' }), 16 * 8 + 5);
  assert.equal(syslogPri({ kind: 'security' }), 10 * 8 + 4);
  assert.equal(syslogPri({ kind: 'admin' }), 10 * 8 + 5);
  assert.equal(syslogPri({ kind: 'system' }), 16 * 8 + 6);
  assert.equal(escapeParamValue('"\\]'), '\\"\\\\\\]');
  const nil = formatSyslog(
    { seq: 1, time: 'not a time', kind: 'system', message: '' },
    {
      hostname: '',
      appName: 'wardend',
      procId: '1',
    },
  );
  assert.equal(nil, `<134>1 - - wardend 1 system [${SYSLOG_SD_ID} seq="1"]`);
});

test('forwardLogs: nothing when syslog is disabled', async () => {
  const store = new MemoryLogStore({ capacity: 10 });
  const f = forwardLogs(store, { syslog: { enabled: false, host: '127.0.0.1', port: 9, transport: 'udp' } });
  assert.equal(f.forwarder, undefined);
  store.append({ kind: 'system', message: 'x' });
  await f.stop();
});
