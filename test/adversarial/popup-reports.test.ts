/**
 * A local user floods the blocked pop-up port (issue 11 item 14b): reports as large as a line allows,
 * as fast as the socket takes them. What is logged is marked as an unverified report and bounded in
 * bytes (per second and per day, besides the count), and each message is bounded in length.
 */
import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { test } from 'node:test';
import { Methods } from '../../src/protocol/methods.js';
import { runAsNobody, startEngine } from './engine-process.js';

const FLOODER = `
import net from 'node:net';
const { port, seconds } = JSON.parse(process.argv[2]);
const report = JSON.stringify({
  application: '/usr/bin/' + 'a'.repeat(3900),
  url: 'https://ads.example/' + 'p'.repeat(3400),
  reason: 'r'.repeat(500),
}) + '\\n';
const s = net.connect(port, '127.0.0.1');
s.on('error', () => {});
let answers = '';
s.on('data', (d) => (answers += d));
await new Promise((r) => s.once('connect', r));
const end = Date.now() + seconds * 1000;
let sent = 0;
while (Date.now() < end) {
  if (!s.write(report)) await new Promise((r) => s.once('drain', r));
  sent++;
  if (sent % 20 === 0) await new Promise((r) => setTimeout(r, 5));
}
await new Promise((r) => setTimeout(r, 500));
s.destroy();
const lines = answers.trim().split('\\n').map((l) => JSON.parse(l));
console.log(JSON.stringify({ sent, bytes: sent * report.length, logged: lines.filter((l) => l.ok).length }));
`;

test('a flood of the largest reports as nobody is cut to the byte budget, marked, and each message is bounded', async () => {
  const engine = await startEngine();
  try {
    const seconds = 3;
    const done = (await runAsNobody(FLOODER, { port: engine.popupPort, seconds })) as {
      sent: number;
      bytes: number;
      logged: number;
    };
    const c = await engine.console();
    try {
      const r = await c.call(Methods.logsQuery, { kind: 'security', text: 'blocked pop-up', limit: 10_000 });
      const bytes = r.items.reduce((n, i) => n + Buffer.byteLength(JSON.stringify(i)), 0);
      // 256 KiB burst + 32 KiB per second (and a second of slack for a loaded machine).
      const budget = 256 * 1024 + (seconds + 1) * 32 * 1024;
      assert.ok(done.bytes > 4 * budget, `the flood sent ${done.bytes} bytes`);
      assert.ok(
        bytes <= budget,
        `${r.items.length} reports logged, ${bytes} bytes, over the ${budget}-byte budget`,
      );
      assert.ok(r.items.length > 0 && r.items.length === done.logged);
      for (const i of r.items) {
        assert.ok(i.message.length <= 1100, `a message of ${i.message.length} characters`);
        assert.match(i.message, /\[unverified report from a local program\]$/);
      }
    } finally {
      c.close();
    }
    assert.ok(engine.alive());
  } finally {
    await engine.stop();
    rmSync(engine.dir, { recursive: true, force: true });
  }
});
