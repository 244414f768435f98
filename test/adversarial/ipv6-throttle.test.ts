/**
 * A remote IPv6 peer rotates source addresses within its /64 to get fresh login counters (issue 11
 * item 12): a real engine with remote administration on, in a namespace; the attacker's namespace
 * holds ten addresses of one /64 and tries a wrong password from each, each for another user name
 * (so only the per-source counter can stop it). The /64 is one source.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { createNetnsPair, kernelTestsUnavailable, SERVER_ADDR6 } from '../kernel/netns.js';
import { NODE, startWardend, useFixtureIdentity } from '../kernel/wardend.js';

/** Logs in once from each address at the same moment; prints each answer's error code (or "ok"). */
const ROTATOR = `
import tls from 'node:tls';
const { host, port, sources } = JSON.parse(process.argv[2]);
function frame(o) { const b = Buffer.from(JSON.stringify(o)); const h = Buffer.alloc(4); h.writeUInt32BE(b.length); return Buffer.concat([h, b]); }
const sockets = await Promise.all(sources.map((localAddress) => new Promise((resolve, reject) => {
  const s = tls.connect({ host, port, localAddress, rejectUnauthorized: false }, () => resolve(s));
  s.on('error', reject);
})));
const answers = await Promise.all(sockets.map((s, i) => new Promise((resolve) => {
  let buf = Buffer.alloc(0);
  s.on('data', (d) => {
    buf = Buffer.concat([buf, d]);
    if (buf.length >= 4 && buf.length >= 4 + buf.readUInt32BE(0)) {
      const m = JSON.parse(buf.subarray(4, 4 + buf.readUInt32BE(0)).toString());
      resolve(m.error ? m.error.data.code : 'ok');
      s.destroy();
    }
  });
  s.write(frame({ jsonrpc: '2.0', id: 1, method: 'session.login', params: { user: 'user' + i, password: 'wrong password' } }));
})));
console.log(JSON.stringify(answers));
`;

test('ten addresses of one IPv6 /64 share one login counter', {
  skip: kernelTestsUnavailable(),
}, async () => {
  const pair = createNetnsPair('v6');
  const dir = mkdtempSync(join(tmpdir(), 'warden-v6-'));
  try {
    mkdirSync(join(dir, 'etc'));
    writeFileSync(join(dir, 'etc/settings.yaml'), 'remoteAdministration:\n  enabled: true\n');
    useFixtureIdentity(join(dir, 'state'));
    const sources = Array.from({ length: 10 }, (_, i) => `fd00:200::${(i + 16).toString(16)}`);
    for (const a of sources)
      execFileSync('ip', ['-n', pair.client, 'addr', 'add', `${a}/64`, 'dev', 'wd0', 'nodad']);
    await startWardend(pair, pair.server, dir, 44334, ['--no-kernel']);
    writeFileSync(join(dir, 'rotate.mjs'), ROTATOR);
    const answers = JSON.parse(
      pair.run(pair.client, NODE, [
        join(dir, 'rotate.mjs'),
        JSON.stringify({ host: SERVER_ADDR6, port: 44334, sources }),
      ]),
    ) as string[];
    const failed = answers.filter((a) => a === 'WARDEN_E_AUTH_FAILED').length;
    const throttled = answers.filter((a) => a === 'WARDEN_E_AUTH_THROTTLED').length;
    assert.equal(failed, 2, `answers: ${answers.join(' ')}`);
    assert.equal(throttled, 8);
  } finally {
    pair.close();
    rmSync(dir, { recursive: true, force: true });
  }
});
