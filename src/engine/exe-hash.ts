/**
 * SHA-256 of executables, for rules that pin one (`sha256:` beside `application`). A file version
 * (device, inode, size, mtime and ctime in nanoseconds) is hashed once: the answer is kept in a
 * bounded cache, and connections of the same version meanwhile share the one hashing. Hashing runs
 * on a worker thread (hash-worker.ts), never on the event loop that gives verdicts; the stat that
 * finds the version runs in the libuv pool.
 *
 * A process is hashed through /proc/PID/exe: the file it really runs, even when its path was replaced
 * or deleted since it started; the exe link is checked against the path attribution saw, so a process
 * that exec'd another program meanwhile is not taken for the one the rule names.
 */
import { readlink, stat } from 'node:fs/promises';
import { Worker } from 'node:worker_threads';
import { HASH_THREAD, type HashReply, type HashRequest, versionKey } from './hash-worker.js';

/** A hashed file version. */
export interface FileHash {
  readonly sha256: string;
  /** Only when asked for (to compare with a Debian package's md5sums: dpkg.ts). */
  readonly md5?: string;
  /** device:inode:size:mtimeNs:ctimeNs */
  readonly key: string;
}

export interface ExeHasherOptions {
  /** File versions remembered (least recently used first out); default 4096. */
  readonly cacheSize?: number;
  /** Larger files are not hashed (a pinned rule then never matches them); default 1 GiB. */
  readonly maxBytes?: number;
  /** Hashings waiting or running at most; more are refused at once (default 16). */
  readonly maxQueued?: number;
  /**
   * A hashing that takes longer (a file whose reads never return, e.g. on a FUSE mount a local user
   * serves) gives its thread up: its requests fail and a new thread takes the next ones (default 60 s).
   */
  readonly stallMs?: number;
}

/** Threads given up as stuck, at most: beyond it nothing more is hashed until one of them ends. */
const MAX_ABANDONED = 4;

/** Hashes files on a worker thread, once per file version. */
export class ExeHasher {
  readonly #cache = new Map<string, FileHash>();
  readonly #inFlight = new Map<string, Promise<FileHash>>();
  readonly #pending = new Map<number, { resolve: (r: HashReply) => void }>();
  readonly #cacheSize: number;
  readonly #maxQueued: number;
  /** The version of each program path being hashed now: one at a time per path. */
  readonly #byPath = new Map<string, string>();
  readonly maxBytes: number;
  #worker: Worker | undefined;
  readonly #stallMs: number;
  /** Threads given up as stuck that have not ended yet. */
  readonly #abandoned = new Set<Worker>();
  #nextId = 1;
  /** Worker hashings started (a cache hit starts none): tests and the bench count them. */
  hashed = 0;

  constructor(options: ExeHasherOptions = {}) {
    this.#cacheSize = options.cacheSize ?? 4096;
    this.#maxQueued = options.maxQueued ?? 16;
    this.maxBytes = options.maxBytes ?? 1024 * 1024 * 1024;
    this.#stallMs = options.stallMs ?? 60_000;
  }

  /**
   * The hash of the executable process `pid` runs. `expected` is the executable path attribution
   * saw: when the exe link names another file now, the process is not the one judged and this throws.
   */
  async ofProcess(pid: number, expected: string): Promise<FileHash> {
    const exe = `/proc/${pid}/exe`;
    const [link, st] = await Promise.all([readlink(exe), stat(exe, { bigint: true })]);
    if (link !== expected && link !== `${expected} (deleted)`)
      throw new Error(`process ${pid} runs ${link} now, not ${expected}`);
    return this.#hash(exe, versionKey(st), false, expected);
  }

  /** The hash of the file at an absolute path (for programs.hash and lint). */
  async ofPath(path: string, options: { md5?: boolean } = {}): Promise<FileHash> {
    const st = await stat(path, { bigint: true });
    if (!st.isFile()) throw new Error(`${path} is not a regular file`);
    return this.#hash(path, versionKey(st), options.md5 === true, path);
  }

  /** The cached hash of a file version, if it was hashed. */
  cached(key: string): FileHash | undefined {
    return this.#cache.get(key);
  }

  /** Stops the worker thread (it is started again on demand). */
  async close(): Promise<void> {
    const w = this.#worker;
    this.#worker = undefined;
    if (w !== undefined) await w.terminate();
  }

  /**
   * Hashes `path` (its version `key`) unless cached or running already. Whoever can rewrite a pinned
   * program could make it a new version for every connection: one version per program path is hashed
   * at a time and at most maxQueued overall, so other programs' hashes never queue behind theirs.
   */
  #hash(path: string, key: string, md5: boolean, program: string): Promise<FileHash> {
    const hit = this.#cache.get(key);
    if (hit !== undefined && (!md5 || hit.md5 !== undefined)) {
      // Most recently used last: Map keeps insertion order, so the first key is the one to drop.
      this.#cache.delete(key);
      this.#cache.set(key, hit);
      return Promise.resolve(hit);
    }
    const flight = md5 ? `${key}+md5` : key;
    let running = this.#inFlight.get(flight);
    if (running === undefined) {
      const busy = this.#byPath.get(program);
      if (busy !== undefined && busy !== key)
        return Promise.reject(new Error(`another version of ${program} is being hashed; this one is not`));
      if (this.#inFlight.size >= this.#maxQueued)
        return Promise.reject(
          new Error(`${this.#maxQueued} files are waiting to be hashed; ${program} is not`),
        );
      this.#byPath.set(program, key);
      running = this.#run(path, key, md5).finally(() => {
        this.#inFlight.delete(flight);
        if (this.#byPath.get(program) === key) this.#byPath.delete(program);
      });
      this.#inFlight.set(flight, running);
    }
    return running;
  }

  async #run(path: string, key: string, md5: boolean): Promise<FileHash> {
    this.hashed++;
    const reply = await this.#ask({ id: this.#nextId++, path, maxBytes: this.maxBytes, md5 });
    if (!reply.ok) throw new Error(reply.error);
    // The version read is the version stat'ed: else the file changed in between (hash it again later).
    if (reply.key !== key) throw new Error(`${path} changed while it was hashed`);
    const h: FileHash = { sha256: reply.sha256, ...(reply.md5 !== undefined ? { md5: reply.md5 } : {}), key };
    this.#cache.delete(key);
    this.#cache.set(key, h);
    if (this.#cache.size > this.#cacheSize) this.#cache.delete(this.#cache.keys().next().value!);
    return h;
  }

  #ask(req: HashRequest): Promise<HashReply> {
    return new Promise((resolve) => {
      if (this.#abandoned.size >= MAX_ABANDONED) {
        resolve({ id: req.id, ok: false, error: `${MAX_ABANDONED} hash threads are stuck reading files` });
        return;
      }
      const w = this.#workerFor();
      const timer = setTimeout(() => this.#abandon(w, req.path), this.#stallMs);
      timer.unref();
      this.#pending.set(req.id, {
        resolve: (r) => {
          clearTimeout(timer);
          resolve(r);
        },
      });
      w.postMessage(req);
    });
  }

  /**
   * Gives a stuck thread up (a blocked read cannot be interrupted, not even by terminate): what waits
   * on it fails now, the next request starts a new thread, and the stuck one ends when its read does.
   */
  #abandon(w: Worker, path: string): void {
    if (this.#worker !== w) return;
    this.#worker = undefined;
    this.#abandoned.add(w);
    const why = `hashing ${path} took longer than ${this.#stallMs} ms: its thread was given up`;
    for (const [id, p] of this.#pending) p.resolve({ id, ok: false, error: why });
    this.#pending.clear();
    void w.terminate().catch(() => {});
  }

  #workerFor(): Worker {
    if (this.#worker !== undefined) return this.#worker;
    const w = new Worker(new URL('./hash-worker.js', import.meta.url), { workerData: { role: HASH_THREAD } });
    w.unref(); // the engine stops when it is done, whatever this thread does
    w.on('message', (r: HashReply) => {
      const p = this.#pending.get(r.id);
      this.#pending.delete(r.id);
      p?.resolve(r);
    });
    const fail = (why: string) => {
      // A thread given up ends later: its requests failed then, the current thread's are not its own.
      if (this.#abandoned.delete(w) || this.#worker !== w) return;
      this.#worker = undefined;
      for (const [id, p] of this.#pending) p.resolve({ id, ok: false, error: why });
      this.#pending.clear();
    };
    w.on('error', (e) => fail(`hash thread failed: ${e.message}`));
    w.on('exit', (code) => fail(`hash thread exited (code ${code})`));
    this.#worker = w;
    return w;
  }
}

/** Resolves to the promise's value, or rejects after `ms` (the work goes on, and is cached when done). */
export function withDeadline<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} took longer than ${ms} ms`)), ms);
  });
  p.catch(() => {}); // a late failure is nobody's unhandled rejection
  return Promise.race([p, late]).finally(() => clearTimeout(timer));
}
