import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { readStartTime, startTimeOf } from './proc-stat.js';

test('startTimeOf counts the fields after the last parenthesis, whatever the command name holds', () => {
  const rest = 'S 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 424242 20 21 22\n';
  assert.equal(startTimeOf(`123 (a) b (c d) ${rest}`), '424242');
  assert.equal(startTimeOf(`123 (plain) ${rest}`), '424242');
  assert.equal(startTimeOf('123 (short) S 1 2'), null);
  assert.equal(startTimeOf('no parenthesis'), null);
});

test('readStartTime reads this process and gives null for a process that is gone', () => {
  const own = readFileSync('/proc/self/stat', 'latin1');
  assert.equal(readStartTime(`/proc/${process.pid}/stat`), startTimeOf(own));
  assert.match(readStartTime(`/proc/${process.pid}/stat`) ?? '', /^\d+$/);
  assert.equal(readStartTime('/proc/2147483647/stat'), null);
});
