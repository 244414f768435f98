/**
 * The engine's own TLS identity: an ECDSA P-256 key and a self-signed
 * certificate, made on first start and kept in a directory (key.pem 0600,
 * cert.pem 0644). Consoles pin the certificate's SHA-256 fingerprint on first
 * use, like SSH host keys, so the identity must stay the same across starts:
 * later starts load the files unchanged.
 */
import {
  createPrivateKey,
  createPublicKey,
  KeyObject,
  randomBytes,
  webcrypto,
  X509Certificate,
} from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { hostname as osHostname } from 'node:os';
import { join } from 'node:path';
import type * as X509 from '@peculiar/x509';
import { ErrorCode, WardenError } from '../errors.js';
import { fingerprintOfDer } from '../protocol/fingerprint.js';
import { assertPrivateFile, ensureDirectory, statIfExists, writeFileAtomic } from './private-file.js';

export interface TlsIdentity {
  /** PKCS#8 private key, PEM. */
  readonly key: string;
  /** Self-signed X.509 certificate, PEM. */
  readonly cert: string;
  /** SHA-256 of the certificate's DER: "SHA256:AB:CD:…". */
  readonly fingerprint: string;
}

export interface IdentityOptions {
  /** Subject CN of a new certificate; default 'warden-engine'. */
  readonly commonName?: string;
  /** Clock for the validity period of a new certificate. */
  readonly now?: () => Date;
  /** Host name put in the certificate's SAN besides localhost; default os.hostname(). */
  readonly hostname?: string;
}

export const KEY_FILE = 'key.pem';
export const CERT_FILE = 'cert.pem';
const VALIDITY_YEARS = 10;
/** A new certificate is valid from a little before now, so a console whose clock is behind accepts it. */
const BACKDATE_MS = 60 * 60 * 1000;

const ECDSA_P256 = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' } as const;

/** The fingerprint of a certificate given as PEM text or DER bytes: "SHA256:" and the SHA-256 of its DER. */
export function fingerprintOfCert(pemOrDer: string | Uint8Array): string {
  let cert: X509Certificate;
  try {
    cert = new X509Certificate(typeof pemOrDer === 'string' ? pemOrDer : Buffer.from(pemOrDer));
  } catch (e) {
    throw new WardenError(ErrorCode.PARAMS_INVALID, `not an X.509 certificate: ${(e as Error).message}`, {
      cause: e,
    });
  }
  return fingerprintOfDer(cert.raw);
}

/**
 * Loads the identity from `dir`, or makes one on first start. A key without a
 * certificate (a crash between the two writes) gets a new certificate; a
 * certificate without its key, a key that does not match the certificate, or
 * a key file that group or others may read is refused with WARDEN_E_FILE_IO.
 */
export async function loadOrCreateIdentity(dir: string, options: IdentityOptions = {}): Promise<TlsIdentity> {
  const keyPath = join(dir, KEY_FILE);
  const certPath = join(dir, CERT_FILE);
  await ensureDirectory(dir, 0o700);
  const keyStats = await statIfExists(keyPath);
  const certStats = await statIfExists(certPath);

  if (keyStats === undefined) {
    if (certStats !== undefined) {
      throw new WardenError(
        ErrorCode.FILE_IO,
        `${certPath} exists but its private key ${keyPath} is missing`,
        {
          suggestion: `restore ${keyPath} from a backup, or remove ${certPath} to make a new identity (consoles will then see a changed fingerprint)`,
        },
      );
    }
    const keys = (await webcrypto.subtle.generateKey(ECDSA_P256, true, [
      'sign',
      'verify',
    ])) as webcrypto.CryptoKeyPair;
    const key = KeyObject.from(keys.privateKey).export({ type: 'pkcs8', format: 'pem' }).toString();
    await writeFileAtomic(keyPath, key, 0o600);
    const cert = await selfSign(keys, options);
    await writeFileAtomic(certPath, cert, 0o644);
    return { key, cert, fingerprint: fingerprintOfCert(cert) };
  }

  assertPrivateFile(keyPath, keyStats, 'TLS private key');
  const key = await readText(keyPath);
  let privateKey: KeyObject;
  try {
    privateKey = createPrivateKey(key);
  } catch (e) {
    throw new WardenError(
      ErrorCode.FILE_IO,
      `${keyPath} does not hold a private key: ${(e as Error).message}`,
      {
        cause: e,
      },
    );
  }

  if (certStats === undefined) {
    const cert = await selfSign(await cryptoKeyPairOf(privateKey), options);
    await writeFileAtomic(certPath, cert, 0o644);
    return { key, cert, fingerprint: fingerprintOfCert(cert) };
  }

  const cert = await readText(certPath);
  let parsed: X509Certificate;
  try {
    parsed = new X509Certificate(cert);
  } catch (e) {
    throw new WardenError(
      ErrorCode.FILE_IO,
      `${certPath} does not hold a certificate: ${(e as Error).message}`,
      {
        cause: e,
      },
    );
  }
  if (!parsed.checkPrivateKey(privateKey)) {
    throw new WardenError(
      ErrorCode.FILE_IO,
      `the key ${keyPath} does not belong to the certificate ${certPath}`,
      {
        suggestion: `restore the matching pair, or remove both files to make a new identity (consoles will then see a changed fingerprint)`,
      },
    );
  }
  return { key, cert, fingerprint: fingerprintOfDer(parsed.raw) };
}

async function readText(path: string): Promise<string> {
  try {
    return await readFile(path, 'utf8');
  } catch (e) {
    throw new WardenError(ErrorCode.FILE_IO, `cannot read ${path}: ${(e as Error).message}`, { cause: e });
  }
}

/** The WebCrypto key pair of an existing P-256 private key. */
async function cryptoKeyPairOf(privateKey: KeyObject): Promise<webcrypto.CryptoKeyPair> {
  const details = privateKey.asymmetricKeyDetails;
  if (privateKey.asymmetricKeyType !== 'ec' || details?.namedCurve !== 'prime256v1') {
    throw new WardenError(ErrorCode.FILE_IO, 'the TLS private key is not an ECDSA P-256 key', {
      suggestion: 'remove key.pem and cert.pem to make a new identity',
    });
  }
  const pkcs8 = privateKey.export({ type: 'pkcs8', format: 'der' });
  const spki = createPublicKey(privateKey).export({ type: 'spki', format: 'der' });
  return {
    privateKey: await webcrypto.subtle.importKey('pkcs8', pkcs8, ECDSA_P256, true, ['sign']),
    publicKey: await webcrypto.subtle.importKey('spki', spki, ECDSA_P256, true, ['verify']),
  } as webcrypto.CryptoKeyPair;
}

/**
 * @peculiar/x509 resolves its algorithms through tsyringe, which needs the
 * reflect-metadata polyfill loaded first. The library is loaded on first use
 * only: it is needed once, when the engine makes its certificate.
 */
let x509Module: Promise<typeof X509> | undefined;
function loadX509(): Promise<typeof X509> {
  x509Module ??= (async () => {
    await import('reflect-metadata');
    const x509 = await import('@peculiar/x509');
    x509.cryptoProvider.set(webcrypto as unknown as Parameters<typeof x509.cryptoProvider.set>[0]);
    return x509;
  })();
  return x509Module;
}

/** SAN entries: the host name (when it is a DNS name), localhost and the loopback addresses. */
function subjectAltNames(host: string): X509.JsonGeneralNames {
  const names: X509.JsonGeneralNames = [];
  const h = host.trim().toLowerCase();
  if (
    h !== '' &&
    h !== 'localhost' &&
    /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*$/.test(h)
  )
    names.push({ type: 'dns', value: h });
  names.push(
    { type: 'dns', value: 'localhost' },
    { type: 'ip', value: '127.0.0.1' },
    { type: 'ip', value: '::1' },
  );
  return names;
}

/** A self-signed certificate for `keys`: CN, SAN, server-auth usage, valid 10 years. */
async function selfSign(keys: webcrypto.CryptoKeyPair, options: IdentityOptions): Promise<string> {
  const x509 = await loadX509();
  const now = (options.now ?? (() => new Date()))();
  const notAfter = new Date(now.getTime());
  notAfter.setUTCFullYear(notAfter.getUTCFullYear() + VALIDITY_YEARS);
  const serial = randomBytes(16);
  serial[0] = (serial[0]! & 0x7f) | 0x01; // positive, and no leading zero byte
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: serial.toString('hex'),
    name: [{ CN: [options.commonName ?? 'warden-engine'] }],
    notBefore: new Date(now.getTime() - BACKDATE_MS),
    notAfter,
    signingAlgorithm: ECDSA_P256,
    keys,
    extensions: [
      new x509.BasicConstraintsExtension(false, undefined, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
      new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth], false),
      new x509.SubjectAlternativeNameExtension(subjectAltNames(options.hostname ?? osHostname()), false),
      await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
    ],
  });
  return cert.toString('pem').replace(/\r\n/g, '\n').replace(/\n?$/, '\n');
}
