/** The fleet's pure parts and the engines file's groups (its atomic writes, its checks). */
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { EngineList } from './engines.js';
import { fleetTargets } from './fleet.js';
import { planWaves } from './fleet-rollout.js';

test('waves: the canary first, then waves of --wave, or a quarter of the rest by default', () => {
  const names = Array.from({ length: 10 }, (_, i) => `e${i + 1}`);
  assert.deepEqual(planWaves(names, 1, 3), [
    ['e1'],
    ['e2', 'e3', 'e4'],
    ['e5', 'e6', 'e7'],
    ['e8', 'e9', 'e10'],
  ]);
  assert.deepEqual(
    planWaves(names, 2, undefined).map((w) => w.length),
    [2, 2, 2, 2, 2],
  );
  assert.deepEqual(planWaves(['a'], 1, undefined), [['a']]);
  assert.deepEqual(planWaves([], 1, undefined), []);
  assert.deepEqual(planWaves(['a', 'b'], 5, 1), [['a', 'b']], 'a canary larger than the group is all of it');
});

test('groups: members must be remembered engines, kept in order, written atomically; forget leaves every group', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'warden-groups-'));
  try {
    const path = join(dir, 'engines.json');
    const list = await EngineList.open(path);
    for (const n of ['a', 'b', 'c']) await list.save(n, { host: '192.0.2.1', port: 44334 });
    assert.deepEqual(await list.addToGroup('web', ['c', 'a', 'c']), ['c', 'a']);
    assert.deepEqual(await list.addToGroup('web', ['a', 'b']), ['b']);
    await assert.rejects(list.addToGroup('web', ['zz']), /no engine is named "zz"/);
    await assert.rejects(list.addToGroup('-x', ['a']), /not a group name/);
    const again = await EngineList.open(path);
    assert.deepEqual(again.group('web'), ['c', 'a', 'b']);
    assert.deepEqual(fleetTargets(again, 'web'), ['c', 'a', 'b']);
    assert.deepEqual(fleetTargets(again, undefined), ['a', 'b', 'c']);
    assert.throws(() => again.group('db'), /no engine group is named "db".*|web/);
    await assert.rejects(again.removeFromGroup('web', ['zz']), /has no member "zz"/);
    await again.remove('a');
    assert.deepEqual((await EngineList.open(path)).group('web'), ['c', 'b']);
    await again.removeFromGroup('web', []);
    assert.deepEqual((await EngineList.open(path)).groups(), {});
    assert.deepEqual(
      readdirSync(dir).filter((f) => f.endsWith('.tmp')),
      [],
      'no temporary file left',
    );
    assert.equal(JSON.parse(readFileSync(path, 'utf8')).version, 1);
    // A hand-edited file whose group names an engine the console does not remember.
    writeFileSync(path, JSON.stringify({ version: 1, engines: {}, groups: { web: ['zz'] } }));
    const edited = await EngineList.open(path);
    assert.throws(() => fleetTargets(edited, 'web'), /names "zz", which this console does not remember/);
    writeFileSync(path, JSON.stringify({ version: 1, engines: {}, groups: { web: 'a' } }));
    await assert.rejects(EngineList.open(path), /"groups" must map each group name to a list/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
