import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { once } from 'node:events';
import { chmod, mkdtemp, readFile, rm, stat, unlink, writeFile } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import * as tls from 'node:tls';
import { fingerprintOfDer } from '../client/known-hosts.js';
import { ErrorCode, WardenError } from '../errors.js';
import { fingerprintOfCert, loadOrCreateIdentity } from './tls-identity.js';

let root: string;
let n = 0;
const fresh = () => join(root, `case-${++n}`, 'tls');

before(async () => {
  root = await mkdtemp(join(tmpdir(), 'warden-tls-'));
});
after(async () => {
  await rm(root, { recursive: true, force: true });
});

const FINGERPRINT = /^SHA256:[0-9A-F]{2}(:[0-9A-F]{2}){31}$/;

function isFileIo(match: RegExp) {
  return (e: unknown) => {
    assert.ok(e instanceof WardenError);
    assert.equal(e.code, ErrorCode.FILE_IO);
    assert.match(e.message, match);
    return true;
  };
}

describe('TLS identity', () => {
  test('a TLS 1.3 server with the identity presents the certificate whose fingerprint was stored', async () => {
    const dir = fresh();
    const id = await loadOrCreateIdentity(dir);
    assert.match(id.fingerprint, FINGERPRINT);
    const server = tls.createServer({ key: id.key, cert: id.cert, minVersion: 'TLSv1.3' }, (s) => s.end());
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    try {
      const { port } = server.address() as AddressInfo;
      const socket = tls.connect({ host: '127.0.0.1', port, rejectUnauthorized: false });
      await once(socket, 'secureConnect');
      const peer = socket.getPeerCertificate(true);
      assert.equal(socket.getProtocol(), 'TLSv1.3');
      assert.equal(fingerprintOfDer(peer.raw), id.fingerprint);
      assert.equal(fingerprintOfCert(peer.raw), id.fingerprint);
      socket.destroy();
    } finally {
      server.close();
      await once(server, 'close');
    }
  });

  test('files: dir 0700, key.pem 0600, cert.pem 0644; a second load returns the same identity', async () => {
    const dir = fresh();
    const first = await loadOrCreateIdentity(dir);
    assert.equal((await stat(dir)).mode & 0o777, 0o700);
    assert.equal((await stat(join(dir, 'key.pem'))).mode & 0o777, 0o600);
    assert.equal((await stat(join(dir, 'cert.pem'))).mode & 0o777, 0o644);
    assert.equal(await readFile(join(dir, 'key.pem'), 'utf8'), first.key);
    assert.equal(await readFile(join(dir, 'cert.pem'), 'utf8'), first.cert);
    const second = await loadOrCreateIdentity(dir);
    assert.deepEqual(second, first);
  });

  test('the certificate: ECDSA P-256, CN, SAN with host name and loopback, self-signed, 10 years', async () => {
    const now = new Date('2030-01-02T03:04:05Z');
    const id = await loadOrCreateIdentity(fresh(), {
      commonName: 'fw1',
      now: () => now,
      hostname: 'fw1.example',
    });
    const cert = new X509Certificate(id.cert);
    assert.equal(cert.subject, 'CN=fw1');
    assert.equal(cert.issuer, 'CN=fw1');
    assert.equal(cert.publicKey.asymmetricKeyType, 'ec');
    assert.equal(cert.publicKey.asymmetricKeyDetails?.namedCurve, 'prime256v1');
    assert.ok(cert.verify(cert.publicKey), 'self-signed');
    assert.equal(cert.ca, false);
    const san = cert.subjectAltName ?? '';
    for (const name of [
      'DNS:fw1.example',
      'DNS:localhost',
      'IP Address:127.0.0.1',
      'IP Address:0:0:0:0:0:0:0:1',
    ]) {
      assert.ok(san.includes(name), `${name} in ${san}`);
    }
    const from = new Date(cert.validFrom).getTime();
    const to = new Date(cert.validTo).getTime();
    assert.ok(from <= now.getTime() && from >= now.getTime() - 2 * 3600_000);
    assert.equal(new Date(to).toISOString(), '2040-01-02T03:04:05.000Z');
    assert.ok(cert.checkHost('fw1.example'));
    assert.ok(cert.checkIP('127.0.0.1'));
  });

  test('the default CN is warden-engine', async () => {
    const id = await loadOrCreateIdentity(fresh());
    assert.equal(new X509Certificate(id.cert).subject, 'CN=warden-engine');
  });

  test('a key without its certificate (crash on first start) gets a new certificate for the same key', async () => {
    const dir = fresh();
    const first = await loadOrCreateIdentity(dir);
    await unlink(join(dir, 'cert.pem'));
    const second = await loadOrCreateIdentity(dir);
    assert.equal(second.key, first.key);
    assert.ok(
      new X509Certificate(second.cert).checkPrivateKey(
        (await import('node:crypto')).createPrivateKey(first.key),
      ),
    );
    assert.deepEqual(await loadOrCreateIdentity(dir), second);
  });

  test('a certificate without its key, or with another key, is refused; nothing is overwritten', async () => {
    const dir = fresh();
    const first = await loadOrCreateIdentity(dir);
    await unlink(join(dir, 'key.pem'));
    await assert.rejects(loadOrCreateIdentity(dir), isFileIo(/key\.pem is missing/));
    assert.equal(await readFile(join(dir, 'cert.pem'), 'utf8'), first.cert);

    const other = await loadOrCreateIdentity(fresh());
    await writeFile(join(dir, 'key.pem'), other.key, { mode: 0o600 });
    await assert.rejects(loadOrCreateIdentity(dir), isFileIo(/does not belong/));
  });

  test('a key file group or others may read is refused', async () => {
    const dir = fresh();
    await loadOrCreateIdentity(dir);
    await chmod(join(dir, 'key.pem'), 0o644);
    await assert.rejects(loadOrCreateIdentity(dir), isFileIo(/0644/));
  });

  test('fingerprintOfCert: PEM and DER agree, as does the console side; garbage is refused', async () => {
    const id = await loadOrCreateIdentity(fresh());
    const der = new X509Certificate(id.cert).raw;
    assert.equal(fingerprintOfCert(id.cert), id.fingerprint);
    assert.equal(fingerprintOfCert(der), id.fingerprint);
    assert.equal(fingerprintOfCert(new Uint8Array(der)), id.fingerprint);
    assert.equal(fingerprintOfDer(der), id.fingerprint);
    assert.throws(
      () => fingerprintOfCert('not a certificate'),
      (e) => e instanceof WardenError && e.code === ErrorCode.PARAMS_INVALID,
    );
  });
});
