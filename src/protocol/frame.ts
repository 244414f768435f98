/**
 * Framing of the TCP (TLS) channel: each message is a 4-byte big-endian
 * length followed by that many bytes of UTF-8 JSON. FrameDecoder is a
 * partial-read state machine with an explicit maximum frame size; it owns no
 * socket.
 */

/** Default largest frame either side accepts: 1 MiB. */
export const DEFAULT_MAX_FRAME_BYTES = 1024 * 1024;

/** Encodes one message as a frame. */
export function encodeFrame(payload: string | Uint8Array): Buffer {
  const body = typeof payload === 'string' ? Buffer.from(payload, 'utf8') : Buffer.from(payload);
  const frame = Buffer.allocUnsafe(4 + body.length);
  frame.writeUInt32BE(body.length, 0);
  body.copy(frame, 4);
  return frame;
}

/** Why a stream of frames cannot go on. */
export class FrameError extends Error {
  constructor(
    message: string,
    readonly declaredBytes: number,
  ) {
    super(message);
    this.name = 'FrameError';
  }
}

/** Turns a byte stream into frame payloads. Feed it chunks as they arrive. */
export class FrameDecoder {
  readonly #maxBytes: number;
  #chunks: Buffer[] = [];
  #buffered = 0;

  constructor(options: { maxFrameBytes?: number } = {}) {
    this.#maxBytes = options.maxFrameBytes ?? DEFAULT_MAX_FRAME_BYTES;
  }

  /** Bytes received but not yet returned as frames. */
  get buffered(): number {
    return this.#buffered;
  }

  /**
   * Adds a chunk and returns every complete frame payload it finished.
   * Throws FrameError when a frame declares a length of 0 or above the maximum;
   * the stream cannot be resynchronised after that and must be closed.
   */
  push(chunk: Buffer): Buffer[] {
    this.#chunks.push(chunk);
    this.#buffered += chunk.length;
    const out: Buffer[] = [];
    for (;;) {
      if (this.#buffered < 4) return out;
      const head = this.#peek(4);
      const length = head.readUInt32BE(0);
      if (length === 0) throw new FrameError('empty frame (length 0)', 0);
      if (length > this.#maxBytes) {
        throw new FrameError(`frame of ${length} bytes exceeds the ${this.#maxBytes}-byte limit`, length);
      }
      if (this.#buffered < 4 + length) return out;
      const all = this.#take(4 + length);
      out.push(all.subarray(4));
    }
  }

  #peek(n: number): Buffer {
    if (this.#chunks[0]!.length >= n) return this.#chunks[0]!;
    this.#chunks = [Buffer.concat(this.#chunks)];
    return this.#chunks[0]!;
  }

  #take(n: number): Buffer {
    const joined = this.#chunks.length === 1 ? this.#chunks[0]! : Buffer.concat(this.#chunks);
    const taken = joined.subarray(0, n);
    const rest = joined.subarray(n);
    this.#chunks = rest.length > 0 ? [rest] : [];
    this.#buffered = rest.length;
    return taken;
  }
}
