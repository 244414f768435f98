/**
 * A text the engine keeps from a local file or an https URL (lists today, rule subscriptions
 * later): read with a size bound, fetched through the proxy settings with a deadline, refreshed on
 * an interval, and validated by its user before it is taken. A URL's last good copy is kept on
 * disk (atomic write under the state directory) and used at start and whenever a refresh fails, so
 * an unreachable server never empties what is in force. Its state (where the text in force came
 * from, when, the last error) is what engine.status shows.
 */
import { createHash, randomBytes } from 'node:crypto';
import { open, readdir, readFile, rename, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { ensureDirectory, syncDirectory, writeFileAtomic } from '../admin/private-file.js';
import { readListFiles } from '../list-files.js';
import type { ProxyRoute } from '../settings/proxy.js';
import { oneLine } from '../text.js';
import type { EngineLog } from './daemon.js';
import { httpRequest } from './services/http-client.js';

/** Where the text comes from. */
export type RemoteOrigin =
  | { readonly file: string }
  | { readonly url: string; readonly refreshSeconds: number };

/**
 * Reads one text as it streams in; `end` validates and returns the value, or throws to refuse it.
 * `quotable` says whether the chunk's content may be shown in problems (src/list-files.ts).
 */
export interface TextReader<T> {
  push(chunk: Buffer, quotable: boolean): void;
  end(): T;
}

export interface RemoteSourceOptions<T> {
  /** For messages and the file names of the last good copy (letters, digits, _ . -). */
  readonly name: string;
  readonly origin: RemoteOrigin;
  readonly maxBytes: number;
  /** Directory of last good copies (created owner-only). */
  readonly stateDir: string;
  readonly route: (url: string) => ProxyRoute;
  /** PEM CA certificate(s) trusted instead of the system CAs (tests, private CAs). */
  readonly ca?: string | Buffer;
  /** Deadline of one fetch (default 60 s). */
  readonly timeoutMs?: number;
  readonly reader: () => TextReader<T>;
  /** A new value was taken (from the network, the file or the last good copy). */
  readonly onValue: (value: T) => void;
  readonly log: EngineLog;
  readonly now?: () => number;
}

/** What engine.status reports of a source. */
export interface RemoteSourceState {
  /** The file path or the URL. */
  readonly source: string;
  /** Where the value in force came from: `file`, `network`, `last good copy` (on disk), or `none`. */
  readonly copy: 'file' | 'network' | 'last good copy' | 'none';
  /** When the value in force was read or fetched (ISO 8601). */
  readonly loadedAt?: string;
  /** When the last attempt ended, successful or not. */
  readonly lastAttempt?: string;
  /** Why the last attempt failed; absent after a success. */
  readonly lastError?: string;
  /** When the next fetch is due (URL sources). */
  readonly nextRefresh?: string;
  readonly bytes: number;
}

interface CopyMeta {
  readonly url: string;
  readonly fetchedAt: string;
}

/** Download files being written now, by any source (see #download). */
const downloading = new Set<string>();

/** A retry after a failure comes sooner than the interval, but not sooner than this. */
const RETRY_MIN_MS = 60_000;

export class RemoteSource<T> {
  readonly #o: RemoteSourceOptions<T>;
  #copy: RemoteSourceState['copy'] = 'none';
  #loadedAt: number | undefined;
  #lastAttempt: number | undefined;
  #lastError: string | undefined;
  #nextRefresh: number | undefined;
  #bytes = 0;
  /** SHA-256 of the text in force: the same text again (a refresh, a re-read) changes nothing in force. */
  #digest = '';
  #timer: NodeJS.Timeout | undefined;
  #stopped = false;
  #failures = 0;
  #running: Promise<void> | undefined;

  constructor(options: RemoteSourceOptions<T>) {
    // `list-` or `include-` and a name the policy schema allows (up to 64): up to 72, room for more.
    if (!/^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,127}$/.test(options.name))
      throw new Error(`internal: remote source name ${JSON.stringify(options.name)}`);
    this.#o = options;
  }

  get #now(): number {
    return (this.#o.now ?? Date.now)();
  }

  get #copyPath(): string {
    return join(this.#o.stateDir, `${this.#o.name}.txt`);
  }

  get #metaPath(): string {
    return join(this.#o.stateDir, `${this.#o.name}.json`);
  }

  /**
   * Takes what is at hand at once: a file is read; for a URL, the last good copy on disk (when it
   * was fetched from the same URL). A URL is then fetched in the background, and again on its interval.
   */
  async start(): Promise<void> {
    const origin = this.#o.origin;
    if ('file' in origin) {
      await this.reread();
      return;
    }
    await this.#loadCopy(origin.url);
    this.#schedule(0);
  }

  /** Reads a file source again (on a policy apply or SIGHUP); a URL source is fetched now. */
  reread(): Promise<void> {
    const origin = this.#o.origin;
    const run = this.#running ?? ('file' in origin ? this.#readFile(origin.file) : this.#fetch(origin.url));
    this.#running = run.finally(() => {
      this.#running = undefined;
    });
    return this.#running;
  }

  /** Stops refreshing; a fetch under way is left to finish, its value is dropped. */
  stop(): void {
    this.#stopped = true;
    if (this.#timer) clearTimeout(this.#timer);
  }

  state(): RemoteSourceState {
    const origin = this.#o.origin;
    const iso = (t: number | undefined) => (t === undefined ? undefined : new Date(t).toISOString());
    const at = {
      loadedAt: iso(this.#loadedAt),
      lastAttempt: iso(this.#lastAttempt),
      lastError: this.#lastError,
      nextRefresh: iso(this.#nextRefresh),
    };
    return {
      source: 'file' in origin ? origin.file : origin.url,
      copy: this.#copy,
      ...Object.fromEntries(Object.entries(at).filter(([, v]) => v !== undefined)),
      bytes: this.#bytes,
    };
  }

  #schedule(delayMs: number): void {
    if (this.#stopped) return;
    if (this.#timer) clearTimeout(this.#timer);
    this.#nextRefresh = this.#now + delayMs;
    this.#timer = setTimeout(() => {
      void this.reread();
    }, delayMs);
    this.#timer.unref();
  }

  /**
   * Puts a text's value in force, unless it is the text in force already (`digest`): then only the
   * state says where it came from and when, and nothing downstream (a recompile, a kernel reload, a
   * new verdict cache generation) runs for a refresh that brought nothing new.
   */
  #take(
    value: T | undefined,
    digest: string,
    copy: RemoteSourceState['copy'],
    bytes: number,
    at: number,
  ): void {
    if (this.#stopped) return;
    this.#copy = copy;
    this.#loadedAt = at;
    this.#bytes = bytes;
    if (digest === this.#digest) return;
    this.#digest = digest;
    this.#o.onValue(value as T); // parsed whenever the digest is new
  }

  #failed(reason: string): void {
    if (this.#stopped) return; // the engine may be gone (its log store closed): nothing to report to
    // Often a server's or a file's words: escaped, and short enough for engine.status and a log line.
    const why = oneLine(reason.length > 1000 ? `${reason.slice(0, 1000)}…` : reason);
    this.#lastAttempt = this.#now;
    this.#lastError = why;
    const kept =
      this.#copy === 'none'
        ? 'no copy is in force'
        : `the copy of ${new Date(this.#loadedAt!).toISOString()} (${this.#copy}) stays in force`;
    this.#o.log('warn', `${this.#o.name}: ${why}; ${kept}`);
  }

  async #readFile(path: string): Promise<void> {
    try {
      const { end, bytes, digest } = await this.#readBounded(path);
      // The same text again (every configuration change re-reads a file) is not validated again.
      const value = digest === this.#digest ? undefined : end();
      this.#lastAttempt = this.#now;
      this.#lastError = undefined;
      this.#take(value, digest, 'file', bytes, this.#now);
    } catch (e) {
      this.#failed(`cannot read ${path}: ${(e as Error).message}`);
    }
  }

  /**
   * Streams a file (or a directory's files) through a reader, refusing it past maxBytes; `end` gives
   * the reader's value (or throws to refuse it), to be called only for a text not in force yet.
   */
  async #readBounded(path: string): Promise<{ end: () => T; bytes: number; digest: string }> {
    const reader = this.#o.reader();
    const { bytes, digest } = await readListFiles(path, this.#o.maxBytes, (chunk, q) =>
      reader.push(chunk, q),
    );
    return { end: () => reader.end(), bytes, digest };
  }

  async #loadCopy(url: string): Promise<void> {
    let meta: CopyMeta;
    try {
      meta = JSON.parse(await readFile(this.#metaPath, 'utf8')) as CopyMeta;
    } catch {
      return; // no copy yet
    }
    if (meta.url !== url) return; // a copy of another URL is not this list
    try {
      const { end, bytes, digest } = await this.#readBounded(this.#copyPath);
      this.#take(end(), digest, 'last good copy', bytes, Date.parse(meta.fetchedAt));
    } catch (e) {
      this.#o.log(
        'warn',
        `${this.#o.name}: the last good copy ${this.#copyPath} is unusable: ${(e as Error).message}`,
      );
    }
  }

  async #fetch(url: string): Promise<void> {
    const origin = this.#o.origin as { refreshSeconds: number };
    const interval = origin.refreshSeconds * 1000;
    try {
      const { digest, bytes, part } = await this.#download(url);
      const at = this.#now;
      let kept = false;
      try {
        // A text the reader refuses fails here, before its copy is kept; parsed only when new.
        let value: T | undefined;
        if (digest !== this.#digest) value = (await this.#readBounded(part)).end();
        // A source stopped meanwhile (its definition changed) leaves the copy to its successor.
        if (this.#stopped) return;
        // The copy is in place before the value is taken: what is in force can always be found again.
        await rename(part, this.#copyPath);
        kept = true;
        await syncDirectory(this.#o.stateDir);
        await writeFileAtomic(
          this.#metaPath,
          `${JSON.stringify({ url, fetchedAt: new Date(at).toISOString() } satisfies CopyMeta)}\n`,
          0o600,
        );
        this.#lastAttempt = at;
        this.#lastError = undefined;
        // Nothing is awaited from here to the fetch's end: whoever sees the new value (engine.status,
        // a refresh asked for then) sees the next refresh scheduled and this fetch over, not joined.
        this.#failures = 0;
        this.#schedule(interval);
        this.#take(value, digest, 'network', bytes, at);
      } finally {
        if (!kept) await unlink(part).catch(() => undefined);
        downloading.delete(part);
      }
    } catch (e) {
      this.#failed((e as Error).message);
      // Soon at first (the engine's own rule to the server may be applied a moment after the
      // fetch), then backing off: 1, 2, 4, ... minutes, never longer than the interval.
      this.#failures++;
      this.#schedule(Math.min(interval, RETRY_MIN_MS * 2 ** Math.min(this.#failures - 1, 16)));
    }
  }

  /**
   * Fetches the URL into a new owner-only file beside the last good copy, as it arrives (a list of
   * hundreds of megabytes is never held in memory whole), hashed as #readBounded will read it back.
   */
  async #download(url: string): Promise<{ digest: string; bytes: number; part: string }> {
    await ensureDirectory(this.#o.stateDir, 0o700);
    // What a download cut short by a crash left (not one this engine is writing: a source replaced
    // while its download runs has a successor of the same name).
    const prefix = `.${this.#o.name}.`;
    for (const entry of await readdir(this.#o.stateDir)) {
      const path = join(this.#o.stateDir, entry);
      if (
        entry.startsWith(prefix) &&
        /^\d+\.[0-9a-f]{12}\.part$/.test(entry.slice(prefix.length)) &&
        !downloading.has(path)
      )
        await unlink(path).catch(() => undefined);
    }
    const part = join(
      this.#o.stateDir,
      `.${this.#o.name}.${process.pid}.${randomBytes(6).toString('hex')}.part`,
    );
    downloading.add(part);
    const hash = createHash('sha256');
    let bytes = 0;
    try {
      const file = await open(part, 'wx', 0o600);
      try {
        await httpRequest({
          url,
          route: this.#o.route(url),
          ...(this.#o.ca !== undefined ? { ca: this.#o.ca } : {}),
          timeoutMs: this.#o.timeoutMs ?? 60_000,
          maxBytes: this.#o.maxBytes,
          // Written off the event loop; the next chunk waits for the write.
          onChunk: async (chunk) => {
            hash.update(chunk);
            bytes += chunk.length;
            for (let off = 0; off < chunk.length; )
              off += (await file.write(chunk, off, chunk.length - off)).bytesWritten;
          },
        });
        await file.sync();
      } finally {
        await file.close();
      }
    } catch (e) {
      await unlink(part).catch(() => undefined);
      downloading.delete(part);
      throw e;
    }
    hash.update('\n');
    return { digest: hash.digest('hex'), bytes, part };
  }
}
