/** The namespace harness itself: two namespaces that reach each other and nothing else. */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { test } from 'node:test';
import { CLIENT_ADDR, createNetnsPair, kernelTestsUnavailable, SERVER_ADDR, SERVER_ADDR6 } from './netns.js';

const skip = kernelTestsUnavailable();

test('a namespace pair connects over IPv4 and IPv6 and is deleted on close', { skip }, async () => {
  const pair = createNetnsPair('h');
  try {
    const server = pair.spawn(pair.server, process.execPath, [
      '-e',
      `const s = require('node:net').createServer((c) => c.end('hi ' + c.remoteAddress));
       s.listen(8000, '::', () => console.log('ready'));`,
    ]);
    await once(server.stdout!, 'data');
    const connect = (host: string) =>
      pair.run(pair.client, process.execPath, [
        '-e',
        `require('node:net').connect(8000, '${host}').on('data', (d) => process.stdout.write(d));`,
      ]);
    assert.equal(connect(SERVER_ADDR), `hi ::ffff:${CLIENT_ADDR}`);
    assert.match(connect(SERVER_ADDR6), /^hi fd00:200::1$/);
  } finally {
    pair.close();
  }
  const left = pair.client;
  assert.doesNotMatch(
    (await import('node:child_process')).execFileSync('ip', ['netns', 'list'], { encoding: 'utf8' }),
    new RegExp(left),
  );
});
