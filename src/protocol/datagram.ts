/**
 * The UDP log channel's datagrams. Every datagram is authenticated and
 * encrypted with AES-256-GCM under the per-connection key the engine gave the
 * console at login; the header is authenticated as associated data.
 *
 *   offset  size  field
 *   0       1     version (1)
 *   1       1     type: 1 REGISTER (console -> engine), 2 REGISTERED (engine -> console),
 *                       3 LOGS (engine -> console)
 *   2       16    connection identifier
 *   18      8     sequence number, unsigned big-endian, per connection and direction, from 1
 *   26      n     ciphertext of the JSON body
 *   26+n    16    GCM tag
 *
 * The 12-byte nonce is 4 bytes of direction ("C2E\0" or "E2C\0") and the
 * 8-byte sequence number, so no nonce repeats under one key. Pure apart from
 * node:crypto.
 */
import { createCipheriv, createDecipheriv } from 'node:crypto';

export const DATAGRAM_VERSION = 1;
export const HEADER_BYTES = 26;
export const TAG_BYTES = 16;
export const CONNECTION_ID_BYTES = 16;
export const KEY_BYTES = 32;
/** Largest datagram either side sends: fits an IPv6 minimum-MTU path with room for tunnels. */
export const MAX_DATAGRAM_BYTES = 1232;

export const DatagramType = { REGISTER: 1, REGISTERED: 2, LOGS: 3 } as const;
export type DatagramType = (typeof DatagramType)[keyof typeof DatagramType];

const FROM_CONSOLE = Buffer.from('C2E\0', 'latin1');
const FROM_ENGINE = Buffer.from('E2C\0', 'latin1');

function direction(type: DatagramType): Buffer {
  return type === DatagramType.REGISTER ? FROM_CONSOLE : FROM_ENGINE;
}

/**
 * Writes a sequence number as 8 bytes, unsigned big-endian. A number (below 2 ** 53, which no
 * connection reaches) is written without making the BigInts a bigint's write makes: the engine
 * seals thousands of datagrams a second.
 */
function writeSeq(out: Buffer, seq: bigint | number, offset: number): void {
  if (typeof seq === 'bigint') {
    out.writeBigUInt64BE(seq, offset);
    return;
  }
  if (!Number.isSafeInteger(seq) || seq < 0)
    throw new RangeError(`sequence number ${seq} is not a safe unsigned integer`);
  out.writeUInt32BE(Math.floor(seq / 2 ** 32), offset);
  out.writeUInt32BE(seq >>> 0, offset + 4);
}

function nonceFor(type: DatagramType, seq: bigint | number): Buffer {
  const nonce = Buffer.allocUnsafe(12);
  direction(type).copy(nonce, 0);
  writeSeq(nonce, seq, 4);
  return nonce;
}

/** Seals a datagram: header in clear (authenticated), body encrypted. */
export function sealDatagram(
  type: DatagramType,
  connectionId: Buffer,
  seq: bigint | number,
  key: Buffer,
  body: Buffer,
): Buffer {
  const out = Buffer.allocUnsafe(HEADER_BYTES + body.length + TAG_BYTES);
  out[0] = DATAGRAM_VERSION;
  out[1] = type;
  connectionId.copy(out, 2, 0, CONNECTION_ID_BYTES);
  writeSeq(out, seq, 18);
  const cipher = createCipheriv('aes-256-gcm', key, nonceFor(type, seq));
  cipher.setAAD(out.subarray(0, HEADER_BYTES));
  const n1 = cipher.update(body).copy(out, HEADER_BYTES);
  const n2 = cipher.final().copy(out, HEADER_BYTES + n1);
  cipher.getAuthTag().copy(out, HEADER_BYTES + n1 + n2);
  return out;
}

/** The clear header of a datagram, read before the key is known. */
export interface DatagramHeader {
  readonly type: DatagramType;
  readonly connectionId: Buffer;
  readonly seq: bigint;
}

/** Reads the header, or returns null for anything that is not a well-formed Warden datagram. */
export function readHeader(datagram: Buffer): DatagramHeader | null {
  if (datagram.length < HEADER_BYTES + TAG_BYTES || datagram.length > 65507) return null;
  if (datagram[0] !== DATAGRAM_VERSION) return null;
  const type = datagram[1];
  if (type !== DatagramType.REGISTER && type !== DatagramType.REGISTERED && type !== DatagramType.LOGS)
    return null;
  const seq = datagram.readBigUInt64BE(18);
  if (seq === 0n) return null;
  return { type, connectionId: datagram.subarray(2, 2 + CONNECTION_ID_BYTES), seq };
}

/** Decrypts and authenticates a datagram's body; null when the key does not fit or anything was changed. */
export function openDatagram(datagram: Buffer, header: DatagramHeader, key: Buffer): Buffer | null {
  try {
    const decipher = createDecipheriv('aes-256-gcm', key, nonceFor(header.type, header.seq));
    decipher.setAAD(datagram.subarray(0, HEADER_BYTES));
    decipher.setAuthTag(datagram.subarray(datagram.length - TAG_BYTES));
    const body = decipher.update(datagram.subarray(HEADER_BYTES, datagram.length - TAG_BYTES));
    return Buffer.concat([body, decipher.final()]);
  } catch {
    return null;
  }
}

/**
 * Accepts each sequence number once: numbers at or below the highest seen
 * minus the window, and numbers already seen inside it, are replays.
 */
export class ReplayWindow {
  #highest = 0n;
  #seen = 0n;
  readonly #size: bigint;

  constructor(size = 64) {
    this.#size = BigInt(size);
  }

  get highest(): bigint {
    return this.#highest;
  }

  /** True (and remembered) when `seq` is new; false for a replay or a number too old to judge. */
  accept(seq: bigint): boolean {
    if (seq > this.#highest) {
      const shift = seq - this.#highest;
      this.#seen = shift >= this.#size ? 1n : ((this.#seen << shift) | 1n) & ((1n << this.#size) - 1n);
      this.#highest = seq;
      return true;
    }
    const age = this.#highest - seq;
    if (age >= this.#size) return false;
    const bit = 1n << age;
    if ((this.#seen & bit) !== 0n) return false;
    this.#seen |= bit;
    return true;
  }
}
