/**
 * Issue 13: a denied TCP connection is retried by the kernel (SYN retransmits), and each retry
 * is judged and logged again. The engine's store (as wardend opens it) keeps one item per
 * connection attempt with a count, shows the first attempt live at once, and keeps the count
 * across a restart.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { formatItem } from '../../src/console/commands/logs.js';
import { Engine } from '../../src/engine/daemon.js';
import type { LogItem, NewLogItem } from '../../src/protocol/log-item.js';

test('the engine logs the retransmits of one connection attempt as one item with a count', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'warden-repeats-'));
  const options = {
    configDir: join(dir, 'etc'),
    stateDir: join(dir, 'state'),
    port: 0,
    bindAddress: '127.0.0.1',
  };
  try {
    const engine = await Engine.start(options);
    const live: LogItem[] = [];
    engine.logs.subscribe((i) => live.push(i));
    // What the enforcer logs for each SYN of one attempt (the kernel backend hands it to logs.append).
    const syn: NewLogItem = {
      kind: 'connection',
      verdict: 'deny',
      direction: 'outgoing',
      protocol: 'tcp',
      application: '/usr/bin/curl',
      local: '10.200.0.1:41000',
      remote: '10.200.0.2:443',
      rule: 'no-web',
      user: 'alice',
      message: 'deny by rule "no-web" (pid 4242)',
    };
    const before = engine.logs.lastSeq;
    for (let retry = 0; retry < 3; retry++) engine.logs.append(syn);
    engine.logs.append({ ...syn, local: '10.200.0.1:41001' }); // the program's next attempt: a new port
    assert.deepEqual(
      live.filter((i) => i.kind === 'connection').map((i) => i.local),
      ['10.200.0.1:41000', '10.200.0.1:41001'],
      'each attempt is pushed live once, at its first packet',
    );
    const items = () => engine.logs.query({ limit: 10, kind: 'connection', fromSeq: before + 1 }).items;
    assert.deepEqual(
      items().map((i) => [i.local, i.count]),
      [
        ['10.200.0.1:41000', 3],
        ['10.200.0.1:41001', undefined],
      ],
    );
    assert.match(formatItem(items()[0]!), /\(pid 4242\) {2}x3$/, 'warden logs shows the count');
    await engine.stop();
    const again = await Engine.start(options);
    try {
      assert.equal(again.logs.query({ limit: 10, kind: 'connection' }).items[0]?.count, 3);
    } finally {
      await again.stop();
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
