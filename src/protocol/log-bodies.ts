/**
 * Bodies of LOGS datagrams: `{"items":[...]}` holding as many whole log items
 * as fit, in order. An item is JSON-encoded once (EncodedLogItem) however
 * many consoles it goes to; packing only adds up cached sizes and joins
 * cached strings. Pure: no sockets, no crypto.
 */
import type { LogItem } from './log-item.js';

const PREFIX = '{"items":[';
const SUFFIX = ']}';
/** Bytes of `{"items":[]}` minus one: every item then counts its JSON plus one comma. */
const EMPTY_BODY_BYTES = PREFIX.length + SUFFIX.length - 1;

/** A log item and its JSON text, encoded on first use and then shared. */
export class EncodedLogItem {
  #json: string | undefined;
  #bytes = 0;

  constructor(readonly item: LogItem) {}

  /** `JSON.stringify(item)`, computed once. */
  get json(): string {
    if (this.#json === undefined) {
      this.#json = JSON.stringify(this.item);
      this.#bytes = Buffer.byteLength(this.#json);
    }
    return this.#json;
  }

  /** UTF-8 length of `json`. */
  get bytes(): number {
    if (this.#json === undefined) void this.json;
    return this.#bytes;
  }
}

/** LOGS bodies and the items left out because no body could hold them. */
export interface PackedLogBodies {
  readonly bodies: Buffer[];
  readonly tooLarge: number;
}

/**
 * Packs items, in order, into bodies of at most `bodyLimit` bytes; a body is
 * closed when the next item does not fit. Items larger than an empty body
 * allows are skipped (the console backfills them over TCP).
 */
export function packLogBodies(items: readonly EncodedLogItem[], bodyLimit: number): PackedLogBodies {
  const bodies: Buffer[] = [];
  let tooLarge = 0;
  let text = '';
  let size = EMPTY_BODY_BYTES;
  for (const item of items) {
    const bytes = item.bytes + 1;
    if (EMPTY_BODY_BYTES + bytes > bodyLimit) {
      tooLarge++;
      continue;
    }
    if (size + bytes > bodyLimit) {
      bodies.push(Buffer.from(`${PREFIX}${text}${SUFFIX}`));
      text = '';
      size = EMPTY_BODY_BYTES;
    }
    text = size === EMPTY_BODY_BYTES ? item.json : `${text},${item.json}`;
    size += bytes;
  }
  if (size !== EMPTY_BODY_BYTES) bodies.push(Buffer.from(`${PREFIX}${text}${SUFFIX}`));
  return { bodies, tooLarge };
}
