/**
 * One long-lived `nft -i` per network namespace, for rule changes. A change sent through `nft -f`
 * pays for a process start and, when it deletes anything (a set element, a rule), for closing its
 * netlink socket: the kernel then waits for an RCU grace period before the close returns (measured
 * 10-18 ms, more than the whole change). A session keeps its socket open: a one-rule change takes
 * about 0.5 ms.
 *
 * Each batch is written as one line (commands joined by `;`): nft makes one transaction of a line,
 * so the kernel takes all of it or none, as with `nft -f`. After the line comes `describe tcp dport`,
 * which prints a fixed line without touching the kernel: everything printed before it (stderr is
 * merged into stdout, in order) is what nft said about the batch, and nft says nothing on success.
 * A session that dies, answers something unexpected or takes too long is killed and forgotten; the
 * caller then loads the whole table, which does not depend on what the batch did.
 *
 * A listing (`list table ...`) goes the same way, and what nft printed before the sentinel is the
 * listing or its error. The session runs terse (`-t`): a listing leaves set elements out.
 */
import { type ChildProcess, type SpawnOptions, spawn } from 'node:child_process';

const SENTINEL_COMMAND = 'describe tcp dport';
/**
 * `nft -i` keeps a command history: it reads $HOME/.nft.history when it starts and writes all of it
 * back, its own lines added, when its input ends. Every batch of every session went into root's
 * history, which only grew (6.7 MB after a day of tests here), and each session start read it all
 * (240 ms instead of 20 at that size). /dev/null is no directory: nothing can be read or written under it.
 */
const SESSION_ENV = { ...process.env, HOME: '/dev/null' };
const SENTINEL = /^payload expression, datatype inet_service .*\n/m;
/** Far above a change's few milliseconds, well below anything a user would wait for. */
const TIMEOUT_MS = 5000;

export interface SessionResult {
  readonly ok: boolean;
  /** What nft printed about the batch: its error, or '' on success. */
  readonly output: string;
}

class NftSession {
  private readonly child: ChildProcess;
  private buffer = '';
  private pending: ((out: string | null) => void) | null = null;
  private queue: Promise<unknown> = Promise.resolve();
  dead = false;

  constructor(netns: string | undefined) {
    const argv = ['-c', 'exec nft -t -i 2>&1'];
    const options: SpawnOptions = { stdio: ['pipe', 'pipe', 'ignore'], env: SESSION_ENV };
    this.child =
      netns === undefined
        ? spawn('sh', argv, options)
        : spawn('nsenter', [`--net=${netns}`, 'sh', ...argv], options);
    // The engine's exit must not wait for the session: it ends with its stdin.
    this.child.unref();
    const end = () => this.kill();
    this.child.on('error', end);
    this.child.on('exit', end);
    this.child.stdin!.on('error', end);
    this.child.stdout!.on('error', end);
    this.child.stdout!.setEncoding('utf8').on('data', (d: string) => {
      this.buffer += d;
      const m = SENTINEL.exec(this.buffer);
      if (m === null) return;
      const out = this.buffer.slice(0, m.index);
      this.buffer = this.buffer.slice(m.index + m[0].length);
      const resolve = this.pending;
      this.pending = null;
      resolve?.(out);
    });
    (this.child.stdin as unknown as { unref?: () => void }).unref?.();
    (this.child.stdout as unknown as { unref?: () => void }).unref?.();
  }

  /** Runs one batch (one transaction); null when the session failed (it is then dead). */
  run(batch: string): Promise<SessionResult | null> {
    const next = this.queue.then(() => this.send(oneLine(batch)));
    this.queue = next.catch(() => {});
    return next;
  }

  private send(line: string): Promise<SessionResult | null> {
    if (this.dead) return Promise.resolve(null);
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.kill();
      }, TIMEOUT_MS);
      this.pending = (out) => {
        clearTimeout(timer);
        resolve(out === null ? null : { ok: out.trim() === '', output: out.trim() });
      };
      this.child.stdin!.write(`${line}\n${SENTINEL_COMMAND}\n`);
    });
  }

  kill(): void {
    if (!this.dead) {
      this.dead = true;
      if (this.child.exitCode === null && this.child.pid !== undefined) this.child.kill('SIGKILL');
    }
    const resolve = this.pending;
    this.pending = null;
    resolve?.(null);
  }
}

/**
 * An `nft -f` text as one line: statements and block lines are joined by `;` (nft's other statement
 * separator), lines that continue (after `{` opening a block or `,` inside an element list) by a
 * space; comments and empty lines go.
 */
export function oneLine(text: string): string {
  let out = '';
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) continue;
    if (out !== '') out += out.endsWith('{') || out.endsWith(',') ? ' ' : '; ';
    out += line;
  }
  return out;
}

/**
 * Texts up to this size go through the session, bigger ones through `nft -f`: nft reads its
 * interactive input one byte per read(2) (libedit without a terminal), about 1 us a byte, while a
 * process start and the wait on close cost ~5-15 ms. A one-rule change is a few hundred bytes.
 */
export const SESSION_MAX_TEXT = 8192;

const sessions = new Map<string, NftSession>();

/** The batch through the namespace's session (started on first use); null when the session failed. */
export async function runInSession(netns: string | undefined, batch: string): Promise<SessionResult | null> {
  const key = netns ?? '';
  let session = sessions.get(key);
  if (session === undefined || session.dead) {
    session = new NftSession(netns);
    sessions.set(key, session);
  }
  const result = await session.run(batch);
  if (result === null) sessions.delete(key);
  return result;
}

/** Ends the session of a namespace (all sessions when netns is null). */
export function closeNftSessions(netns: string | undefined | null = null): void {
  for (const [key, session] of sessions) {
    if (netns === null || key === (netns ?? '')) {
      session.kill();
      sessions.delete(key);
    }
  }
}
