import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { NewLogItem } from '../protocol/log-item.js';
import { AfterVerdicts } from './after-verdicts.js';

const item = (message: string): NewLogItem => ({ kind: 'system', message });

test('log items wait for the turn after the verdicts, then go in order; flush sends them at once', async () => {
  const appended: string[] = [];
  const after = new AfterVerdicts((i) => appended.push(i.message));
  after.push(item('a'));
  after.push(item('b'));
  await Promise.resolve(); // a judgement's promise settling: the verdict is given here
  assert.deepEqual(appended, [], 'nothing appended before the verdicts of this turn');
  await new Promise((r) => setImmediate(r));
  assert.deepEqual(appended, ['a', 'b']);
  after.push(item('c'));
  after.flush(); // on stop, before the store closes
  assert.deepEqual(appended, ['a', 'b', 'c']);
  await new Promise((r) => setImmediate(r));
  assert.deepEqual(appended, ['a', 'b', 'c'], 'the scheduled turn finds nothing left');
});

test('tasks wait for the same turn as log items and run in order with them', async () => {
  const done: string[] = [];
  const after = new AfterVerdicts((i) => done.push(i.message));
  after.push(item('log a'));
  after.run(() => done.push('cache insert'));
  after.push(item('log b'));
  await Promise.resolve();
  assert.deepEqual(done, [], 'nothing done before the verdicts of this turn');
  await new Promise((r) => setImmediate(r));
  assert.deepEqual(done, ['log a', 'cache insert', 'log b']);
});
