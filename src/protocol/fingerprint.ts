/** The certificate fingerprint consoles pin (docs/protocol.md): "SHA256:" and the SHA-256 of the DER, as AB:CD:… */
import { createHash } from 'node:crypto';

export function fingerprintOfDer(der: Uint8Array): string {
  const hex = createHash('sha256').update(der).digest('hex').toUpperCase();
  return `SHA256:${(hex.match(/../g) ?? []).join(':')}`;
}
