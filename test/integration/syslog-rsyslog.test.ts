/**
 * SyslogForwarder against a real rsyslogd (its own process, config, work directory and ports; never the system's
 * service): items sent over UDP, octet-counted TCP and, when rsyslog-openssl is installed, TLS arrive and their
 * raw messages (%rawmsg%) parse back as RFC 5424 with the same values.
 */
import assert from 'node:assert/strict';
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { SYSLOG_SD_ID, SyslogForwarder } from '../../src/engine/syslog.js';
import type { LogItem } from '../../src/protocol/log-item.js';
import { repoRoot } from '../repo-root.js';
import { parseRfc5424 } from '../support/rfc5424.js';

const tlsDir = join(repoRoot(import.meta.url), 'test/fixtures/tls');
const hasRsyslog = spawnSync('rsyslogd', ['-v']).status === 0;
const hasOssl = readdirSync('/usr/lib', { withFileTypes: true }).some(
  (d) => d.isDirectory() && existsSync(join('/usr/lib', d.name, 'rsyslog/lmnsd_ossl.so')),
);

async function freePort(): Promise<number> {
  const s = net.createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const { port } = s.address() as net.AddressInfo;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

async function until(cond: () => boolean, what: string, ms = 8000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

test('rsyslogd receives items over UDP, TCP (octet counting) and TLS and they parse back', {
  skip: hasRsyslog ? false : 'rsyslogd not installed (Debian package rsyslog)',
}, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'warden-rsyslog-'));
  const out = join(dir, 'out.log');
  const [udp, tcp, tlsPort] = [await freePort(), await freePort(), await freePort()];
  const tlsInput = hasOssl
    ? `input(type="imtcp" address="127.0.0.1" port="${tlsPort}" streamDriver.name="ossl" streamDriver.mode="1"
  streamDriver.authMode="anon" streamDriver.keyFile="${join(tlsDir, 'engine-key.pem')}"
  streamDriver.certFile="${join(tlsDir, 'engine-cert.pem')}" streamDriver.caFile="${join(tlsDir, 'engine-cert.pem')}")`
    : '';
  writeFileSync(
    join(dir, 'rsyslog.conf'),
    `global(workDirectory="${dir}")
module(load="imudp")
module(load="imtcp")
input(type="imudp" address="127.0.0.1" port="${udp}")
input(type="imtcp" address="127.0.0.1" port="${tcp}")
${tlsInput}
template(name="raw" type="string" string="%rawmsg%\\n")
*.* action(type="omfile" file="${out}" template="raw")
`,
  );
  let stderr = '';
  const rsyslogd: ChildProcess = spawn(
    'rsyslogd',
    ['-n', '-f', join(dir, 'rsyslog.conf'), '-i', join(dir, 'rsyslogd.pid')],
    { stdio: ['ignore', 'ignore', 'pipe'] },
  );
  rsyslogd.stderr?.on('data', (d) => {
    stderr += String(d);
  });
  const forwarders: SyslogForwarder[] = [];
  const lines = (): string[] =>
    existsSync(out) ? readFileSync(out, 'utf8').split('\n').filter(Boolean) : [];
  try {
    const opts = { hostname: 'warden-test', procId: '77', minBackoffMs: 50, maxBackoffMs: 200 };
    const viaUdp = new SyslogForwarder({ host: '127.0.0.1', port: udp, transport: 'udp' }, opts);
    const viaTcp = new SyslogForwarder({ host: '127.0.0.1', port: tcp, transport: 'tcp' }, opts);
    forwarders.push(viaUdp, viaTcp);
    // TCP queues until rsyslogd listens; once TCP is up, probe UDP until a datagram lands.
    await until(() => viaTcp.connected || rsyslogd.exitCode !== null, 'rsyslogd to listen');
    assert.equal(rsyslogd.exitCode, null, `rsyslogd exited: ${stderr}`);
    let probe = 0;
    await until(() => {
      viaUdp.send({ seq: ++probe, time: new Date().toISOString(), kind: 'system', message: 'probe' });
      return lines().length > 0;
    }, 'a UDP probe in the output file');
    const before = lines().length;
    const sent: LogItem[] = [];
    const make = (seq: number, transport: string): LogItem => ({
      seq,
      time: new Date(Date.UTC(2025, 0, 2, 3, 4, 5, seq)).toISOString(),
      kind: seq % 2 ? 'connection' : 'security',
      verdict: seq % 2 ? 'deny' : undefined,
      application: '/usr/bin/cu"rl',
      remote: '[2001:db8::1]:443',
      rule: 'r]\\1',
      message: `over ${transport} #${seq} héllo`,
    });
    for (let i = 1; i <= 5; i++) {
      const a = make(1000 + i, 'udp');
      const b = make(2000 + i, 'tcp');
      sent.push(a, b);
      viaUdp.send(a);
      viaTcp.send(b);
    }
    if (hasOssl) {
      const viaTls = new SyslogForwarder(
        { host: '127.0.0.1', port: tlsPort, transport: 'tls' },
        { ...opts, ca: join(tlsDir, 'engine-cert.pem') },
      );
      forwarders.push(viaTls);
      for (let i = 1; i <= 5; i++) {
        const c = make(3000 + i, 'tls');
        sent.push(c);
        viaTls.send(c);
      }
    }
    await until(() => lines().length - before >= sent.length, `${sent.length} forwarded lines`);
    const got = new Map(
      lines()
        .map(parseRfc5424)
        .filter((p) => p.msg !== 'probe')
        .map((p) => [p.msg, p]),
    );
    for (const it of sent) {
      const p = got.get(it.message);
      assert.ok(p, `missing: ${it.message}`);
      assert.equal(p.version, 1);
      assert.equal(p.hostname, 'warden-test');
      assert.equal(p.appName, 'wardend');
      assert.equal(p.procId, '77');
      assert.equal(p.msgId, it.kind);
      assert.equal(p.timestamp, it.time);
      const sd = new Map(p.sd.get(SYSLOG_SD_ID));
      assert.equal(sd.get('seq'), String(it.seq));
      assert.equal(sd.get('app'), it.application);
      assert.equal(sd.get('rule'), it.rule);
      assert.equal(sd.get('verdict'), it.verdict);
    }
  } finally {
    await Promise.all(forwarders.map((f) => f.close()));
    if (rsyslogd.exitCode === null && rsyslogd.pid !== undefined) {
      const exited = new Promise((r) => rsyslogd.once('exit', r));
      process.kill(rsyslogd.pid, 'SIGTERM');
      await exited;
    }
    rmSync(dir, { recursive: true, force: true });
  }
});
