/**
 * A new connection whose four-tuple is still held by an earlier one in TIME_WAIT (the server closed
 * first and the client reuses its source port, as clients that bind a port or cycle through few do)
 * belongs to the listener that takes it. sock_diag's exact lookup finds the TIME_WAIT socket, which
 * no process holds (inode 0): attribution used to fail and such connections fell to the default
 * (a served port denied). Real sockets in a network namespace.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { nativeAvailable } from '../../src/kernel/native.js';
import { CLIENT_ADDR, createNetnsPair, kernelTestsUnavailable, type NetnsPair } from './netns.js';

const skip = kernelTestsUnavailable() ?? (nativeAvailable() ? undefined : 'native addon not built');
const NATIVE = fileURLToPath(new URL('../../src/kernel/native.js', import.meta.url));

/** In one namespace: a server that closes first, a client from a fixed port, the lookups afterwards. */
const SCRIPT = `
import net from 'node:net';
import { lookupSocket } from ${JSON.stringify(NATIVE)};
const server = net.createServer((c) => c.end()).listen(7001, '::', async () => {
  await new Promise((done) => {
    const s = net.connect({ host: '${CLIENT_ADDR}', port: 7001, localAddress: '${CLIENT_ADDR}', localPort: 40001 });
    s.on('end', () => s.end());
    s.on('close', done);
    s.on('error', done);
  });
  await new Promise((r) => setTimeout(r, 200));
  const reused = lookupSocket('tcp', 4, '${CLIENT_ADDR}', 7001, '${CLIENT_ADDR}', 40001);
  const fresh = lookupSocket('tcp', 4, '${CLIENT_ADDR}', 7001, '${CLIENT_ADDR}', 40002);
  console.log(JSON.stringify({ reused, fresh }));
  server.close();
});`;

let pair: NetnsPair;
before(() => {
  if (skip === undefined) pair = createNetnsPair('tw');
});
after(() => pair?.close());

test('a SYN reusing the four-tuple of a connection in TIME_WAIT is owned by the listener', { skip }, () => {
  const out = pair.run(pair.client, process.execPath, ['--input-type=module', '-e', SCRIPT]);
  const { reused, fresh } = JSON.parse(out) as {
    reused: { inode: number; state: number } | null;
    fresh: { inode: number; state: number } | null;
  };
  assert.ok(fresh !== null && fresh.inode > 0 && fresh.state === 10, `the listener: ${out}`);
  assert.ok(reused !== null, 'a socket is found for the reused four-tuple');
  assert.notEqual(reused.inode, 0, `not the TIME_WAIT socket, which no process holds: ${out}`);
  assert.equal(reused.inode, fresh.inode, 'the listener, as for a fresh four-tuple');
});
