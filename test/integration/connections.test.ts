/**
 * connections.list over the real protocol: a real process (a child Node) holding a real TCP
 * connection shows with its pid, executable, command line and both ends; the answer is bounded
 * and one listing serves the calls that arrive while it runs.
 */
import assert from 'node:assert/strict';
import { realpathSync } from 'node:fs';
import { after, before, describe, test } from 'node:test';
import { ConnectionLister } from '../../src/kernel/open-connections.js';
import { Methods } from '../../src/protocol/methods.js';
import { type ConnectedChild, startConnectedChild } from '../support/console-harness.js';
import { type Harness, startHarness } from './admin-harness.js';

describe('connections.list', () => {
  let h: Harness;
  // A program of its own that connects and waits: its socket is what the engine must find.
  let held: ConnectedChild;
  before(async () => {
    h = await startHarness({ connections: new ConnectionLister() });
    held = await startConnectedChild('connections-list-marker');
  });
  after(async () => {
    held?.close();
    await h?.close();
  });

  test('an auditor sees the child process with its connection, pid, program and command line', async () => {
    const bob = await h.login('bob');
    const { connections, truncated } = await bob.call(Methods.connectionsList, {});
    assert.equal(truncated, false);
    const { child, port } = held;
    const mine = connections.find((c) => c.pid === child.pid);
    assert.ok(mine, `no connection of pid ${child.pid} among ${connections.length}`);
    assert.equal(mine.protocol, 'tcp');
    assert.equal(mine.state, 'established');
    assert.equal(mine.remote, `127.0.0.1:${port}`);
    assert.match(mine.local, /^127\.0\.0\.1:\d+$/);
    assert.equal(mine.application, realpathSync(process.execPath));
    assert.ok(mine.commandLine?.includes('connections-list-marker'), String(mine.commandLine));
    assert.equal(mine.uid, process.getuid!());
    // The listening socket is not a connection; the accepted end (this process) is one.
    assert.ok(!connections.some((c) => c.local === `127.0.0.1:${port}` && c.remote.endsWith(':0')));
    assert.ok(connections.some((c) => c.local === `127.0.0.1:${port}` && c.pid === process.pid));
  });

  test('the answer is bounded, and calls during a listing share it', async () => {
    const small = new ConnectionLister({ max: 1 });
    const a = small.list();
    assert.equal(small.list(), a, 'a second call while the first runs gets the same listing');
    const r = await a;
    assert.equal(r.connections.length, 1);
    assert.equal(r.truncated, true);
    assert.notEqual(small.list(), a, 'a call after it ends lists again');
  });
});
