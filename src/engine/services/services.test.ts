/** The services' pure parts: version order, feed parsing, report lines, loopback peers. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { ErrorCode, WardenError } from '../../errors.js';
import { isLoopback, MAX_REPORT_LINE, parseReportLine } from './popup-reports.js';
import { compareVersions, parseReleaseFeed } from './update-check.js';

test('compareVersions follows semantic versioning precedence', () => {
  const ordered = [
    '0.1.0',
    '0.1.1',
    '0.2.0-alpha',
    '0.2.0-alpha.1',
    '0.2.0-alpha.beta',
    '0.2.0-beta.2',
    '0.2.0-beta.11',
    '0.2.0-rc.1',
    '0.2.0',
    '1.0.0',
    '10.0.0',
  ];
  for (let i = 0; i < ordered.length; i++) {
    for (let j = 0; j < ordered.length; j++) {
      assert.equal(
        compareVersions(ordered[i]!, ordered[j]!),
        Math.sign(i - j),
        `${ordered[i]} vs ${ordered[j]}`,
      );
    }
  }
  assert.equal(compareVersions('v1.2.3', '1.2.3+build.5'), 0);
  assert.equal(compareVersions('1.2', '1.2.0'), undefined);
});

test('compareVersions is antisymmetric on generated versions', () => {
  const part = fc.integer({ min: 0, max: 50 });
  const version = fc
    .tuple(part, part, part, fc.option(fc.constantFrom('alpha', 'beta.1', 'rc.2', '1'), { nil: undefined }))
    .map(([a, b, c, p]) => `${a}.${b}.${c}${p === undefined ? '' : `-${p}`}`);
  fc.assert(
    fc.property(version, version, (a, b) => {
      assert.equal(compareVersions(a, b), -(compareVersions(b, a) ?? 0) || 0);
    }),
  );
});

test('parseReleaseFeed names the bad field', () => {
  assert.deepEqual(parseReleaseFeed('{"latest":"1.2.3","url":"https://x.example/1.2.3"}', 'F'), {
    latest: '1.2.3',
    url: 'https://x.example/1.2.3',
  });
  const bad = (text: string, pattern: RegExp) =>
    assert.throws(
      () => parseReleaseFeed(text, 'https://feed.example/r.json'),
      (e: unknown) =>
        e instanceof WardenError && e.code === ErrorCode.SERVICE_ANSWER_INVALID && pattern.test(e.message),
    );
  bad('<html>', /feed\.example\/r\.json is not JSON/);
  bad('{"latest":"soon"}', /latest: is not a version such as 1\.2\.3/);
  bad('{"latest":"1.0.0","url":"nope"}', /url:/);
});

test('parseReportLine accepts a report and turns it into a security log item', () => {
  const r = parseReportLine(
    '{"application":"/usr/bin/firefox","url":"https://[2001:db8::1]/x","time":"2026-11-23T10:00:00+01:00"}',
    '127.0.0.1:5000',
  );
  assert.ok(r.ok);
  assert.deepEqual(r.item, {
    kind: 'security',
    application: '/usr/bin/firefox',
    host: '2001:db8::1',
    source: 'blocked pop-up report from 127.0.0.1:5000',
    time: '2026-11-23T09:00:00.000Z',
    message:
      'blocked pop-up: https://[2001:db8::1]/x in /usr/bin/firefox [unverified report from a local program]',
  });
});

test('parseReportLine never throws and always answers with a code and message', () => {
  fc.assert(
    fc.property(fc.oneof(fc.string({ maxLength: 200 }), fc.json({ maxDepth: 3 })), (line) => {
      const r = parseReportLine(line, 'x');
      if (!r.ok) {
        assert.equal(r.answer.ok, false);
        if (!r.answer.ok) {
          assert.equal(r.answer.error.code, ErrorCode.POPUP_REPORT_INVALID);
          assert.ok(r.answer.error.message.length > 0);
        }
      }
    }),
  );
  assert.equal(MAX_REPORT_LINE, 8192);
});

test('isLoopback: 127/8, ::1 and IPv4-mapped loopback only', () => {
  for (const a of ['127.0.0.1', '127.1.2.3', '::1', '::ffff:127.0.0.1']) assert.equal(isLoopback(a), true, a);
  for (const a of ['10.0.0.1', '::ffff:10.0.0.1', 'fe80::1', '0.0.0.0', '::', undefined, '128.0.0.1'])
    assert.equal(isLoopback(a), false, String(a));
});
