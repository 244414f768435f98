import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ConnectionCounter, sourceKey } from './source-limits.js';

test('sourceKey: IPv4 (also mapped) is the address, IPv6 counts per /64', () => {
  assert.equal(sourceKey('10.1.2.3'), '10.1.2.3');
  assert.equal(sourceKey('::ffff:10.1.2.3'), '10.1.2.3');
  assert.equal(sourceKey('2001:db8:1:2:aaaa::1'), '2001:db8:1:2::/64');
  assert.equal(sourceKey('2001:db8:1:2:ffff:ffff:ffff:ffff'), '2001:db8:1:2::/64');
  assert.notEqual(sourceKey('2001:db8:1:3::1'), sourceKey('2001:db8:1:2::1'));
  assert.equal(sourceKey(undefined), 'unknown');
});

test('ConnectionCounter: caps per source and in total; release frees once', () => {
  const c = new ConnectionCounter({ perSource: 2, total: 3 });
  const a1 = c.admit('10.0.0.1');
  const a2 = c.admit('10.0.0.1');
  assert.ok('release' in a1 && 'release' in a2);
  assert.match((c.admit('10.0.0.1') as { refused: string }).refused, /per source/);
  const b1 = c.admit('10.0.0.2');
  assert.ok('release' in b1);
  assert.match((c.admit('10.0.0.3') as { refused: string }).refused, /in total|most allowed/);
  a1.release();
  a1.release();
  assert.equal(c.total, 2);
  assert.ok('release' in c.admit('10.0.0.1'));
  assert.throws(() => new ConnectionCounter({ perSource: 0, total: 1 }), /perSource must be an integer/);
});
