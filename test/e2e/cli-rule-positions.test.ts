/**
 * End-to-end: `warden rules move` and `warden rules add --position` refuse positions outside the
 * rule list (1..N for move, 1..N+1 for add) with the valid range and the command to run, instead of
 * quietly moving the rule to the end; run against a real administration server on 127.0.0.1.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { allButConnect, cliAgainstHarness } from '../support/console-harness.js';

describe('warden rules: positions outside the list are refused', () => {
  const cli = cliAgainstHarness({ toLab: allButConnect });
  const warden = (...args: string[]) => cli.warden(args);
  const names = async () => {
    const r = await warden('rules', 'list', '--json');
    assert.equal(r.code, 0, r.stderr);
    const parsed = JSON.parse(r.stdout) as { rules?: { name: string }[] } | { name: string }[];
    return (Array.isArray(parsed) ? parsed : (parsed.rules ?? [])).map((x) => x.name);
  };

  test('move to 99 with 3 rules, to 0, and add --position 99 are refused; the order is unchanged', async () => {
    await cli.connectLab();
    for (const [name, port] of [
      ['a', 1001],
      ['b', 1002],
      ['c', 1003],
    ] as const) {
      const r = await warden(
        'rules',
        'add',
        `{ name: ${name}, direction: outgoing, protocol: tcp, remotePorts: ${port}, action: allow }`,
      );
      assert.equal(r.code, 0, r.stderr);
    }
    const before = await names();
    assert.deepEqual(before.slice(-3), ['a', 'b', 'c']);
    const n = before.length;

    const far = await warden('rules', 'move', 'a', '99');
    assert.notEqual(far.code, 0, far.stdout);
    assert.match(far.stderr, new RegExp(`position 99 is out of range: valid positions are 1\\.\\.${n}\\b`));
    assert.match(far.stderr, new RegExp(`warden rules move a ${n}`));
    assert.deepEqual(await names(), before);

    const zero = await warden('rules', 'move', 'a', '0');
    assert.notEqual(zero.code, 0);
    assert.match(zero.stderr, /position 0 is out of range: positions count from 1/);
    assert.deepEqual(await names(), before);

    const add = await warden(
      'rules',
      'add',
      '--position',
      '99',
      '{ name: d, direction: outgoing, protocol: tcp, remotePorts: 1004, action: allow }',
    );
    assert.notEqual(add.code, 0, add.stdout);
    assert.match(
      add.stderr,
      new RegExp(`position 99 is out of range: valid positions are 1\\.\\.${n + 1}\\b`),
    );
    assert.match(add.stderr, new RegExp(`--position ${n + 1}`));
    assert.deepEqual(await names(), before);

    const last = await warden('rules', 'move', 'a', String(n));
    assert.equal(last.code, 0, last.stderr);
    assert.match(last.stdout, new RegExp(`Moved "a" to position ${n}\\.`));
    const end = await warden(
      'rules',
      'add',
      '--position',
      String(n + 1),
      '{ name: d, direction: outgoing, protocol: tcp, remotePorts: 1004, action: allow }',
    );
    assert.equal(end.code, 0, end.stderr);
    assert.deepEqual((await names()).slice(-3), ['c', 'a', 'd']);
  });
});
