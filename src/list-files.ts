/**
 * Reads what a list or rule subscription names on this host: a file, or a directory whose regular
 * files (not hidden ones) are read in name order as one text (OpenSnitch keeps its lists so). One
 * reader for the engine (src/engine/remote-source.ts) and the console's explain and lint of a policy
 * file (src/console/files.ts), so both see the same text.
 */
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';

/**
 * Streams the file (or the directory's files, each followed by a newline so a last line without one
 * does not run into the next file's first) to `push`, refusing it past `maxBytes`. Returns its size
 * and the SHA-256 of what was pushed (hex).
 */
export async function readListFiles(
  path: string,
  maxBytes: number,
  push: (chunk: Buffer) => void,
): Promise<{ bytes: number; digest: string }> {
  const s = await stat(path);
  let files: string[];
  if (s.isDirectory()) {
    const entries = await readdir(path, { withFileTypes: true });
    files = entries
      .filter((e) => e.isFile() && !e.name.startsWith('.'))
      .map((e) => join(path, e.name))
      .sort();
  } else if (s.isFile()) files = [path];
  else throw new Error('not a regular file or a directory');
  const hash = createHash('sha256');
  const newline = Buffer.from('\n');
  let bytes = 0;
  for (const file of files) {
    const stream = createReadStream(file, { highWaterMark: 1 << 20 });
    for await (const chunk of stream as AsyncIterable<Buffer>) {
      bytes += chunk.length;
      if (bytes > maxBytes) {
        stream.destroy();
        throw new Error(`more than its bound of ${maxBytes} bytes`);
      }
      push(chunk);
      hash.update(chunk);
    }
    push(newline);
    hash.update(newline);
  }
  return { bytes, digest: hash.digest('hex') };
}
