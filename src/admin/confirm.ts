/**
 * Confirmed apply, against locking oneself out: whether a configuration would
 * cut a remote administrator off (lockoutRisk), and the changes applied on
 * probation that are undone unless confirmed in time (Confirmations), kept
 * in the state directory so a restart does not forget them.
 */
import { readFile } from 'node:fs/promises';
import { parseIp } from '../ip/index.js';
import { compilePolicy, decide, type HostEnvironment, internalRules, type Policy } from '../policy/index.js';
import type { Settings } from '../settings/index.js';
import { writeFileAtomic } from './private-file.js';

/** Whether an address is the engine's own host (loopback). */
export function isLoopback(address: string): boolean {
  const a = address.startsWith('::ffff:') ? address.slice(7) : address;
  return a === '::1' || a.startsWith('127.');
}

/**
 * Why this configuration would cut off an administrator calling from `source`, or null when it would not:
 * remote administration off, or an incoming TCP connection from `source` to the engine's application port
 * not allowed. A caller on the engine's host is never at risk.
 */
export function lockoutRisk(
  config: { policy: Policy; settings: Settings },
  source: string,
  host: HostEnvironment,
  now: number,
): string | null {
  if (isLoopback(source)) return null;
  const { settings } = config;
  if (!settings.remoteAdministration.enabled) return 'remote administration would be disabled';
  const remote = parseIp(source.startsWith('::ffff:') ? source.slice(7) : source);
  const compiled = compilePolicy(config.policy, {
    settings,
    internalRules: internalRules(settings, host, config.policy),
  });
  const d = decide(compiled, {
    direction: 'incoming',
    protocol: 'tcp',
    application: host.executables.engine,
    uid: 0,
    user: 'root',
    localAddress: null,
    localPort: host.servedPort ?? settings.applicationPort,
    remoteAddress: remote,
    remotePort: null,
    remoteHosts: [],
    now,
  });
  if (d.verdict === 'allow') return null;
  return `a connection from ${source} to the application port ${host.servedPort ?? settings.applicationPort} would be ${d.verdict === 'ask' ? 'held (ask)' : 'blocked'} by ${d.ruleName}`;
}

/** A change applied on probation. */
export interface PendingChange {
  readonly version: number;
  /** The version it is rolled back to. */
  readonly previous: number;
  /** ISO 8601. */
  readonly deadline: string;
}

/** A pending change as kept on disk: also who made it and from where (for the audit item of its expiry). */
export interface PendingRecord extends PendingChange {
  readonly user: string;
  readonly source: string;
}

/**
 * What to do with a change whose deadline passed (the handlers undo it), or that config.undo asks to
 * undo before it (`early`: who asked). Throws when the change could not be undone.
 */
export type Expire = (c: PendingRecord, early?: { user: string; source: string }) => Promise<void>;

function readRecords(text: string): PendingRecord[] {
  const list = JSON.parse(text) as unknown;
  if (!Array.isArray(list)) return [];
  return list.filter(
    (r): r is PendingRecord =>
      Number.isInteger(r?.version) &&
      Number.isInteger(r?.previous) &&
      !Number.isNaN(Date.parse(r?.deadline)) &&
      typeof r?.user === 'string' &&
      typeof r?.source === 'string',
  );
}

/**
 * Changes waiting for config.confirm; each is undone by itself at its deadline. With a file (in the
 * engine's state directory) the waiting changes survive a restart: written atomically before the change
 * is acknowledged, and re-armed on start, where a change past its deadline is undone at once.
 */
export class Confirmations {
  readonly #waiting = new Map<number, { record: PendingRecord; timer?: NodeJS.Timeout }>();
  readonly #file: string | undefined;
  #expire: Expire | undefined;
  #closed = false;
  /** Versions config.undo is undoing right now (a second undo of one answers "none waits"). */
  readonly #undoing = new Set<number>();
  /** File writes in order, so the file never goes back to an older list. */
  #saving: Promise<void> = Promise.resolve();

  constructor(options: { file?: string } = {}) {
    this.#file = options.file;
  }

  /**
   * Reads the waiting changes kept in `file` (none when it is missing). A damaged file is reported through
   * `onDamaged` and treated as empty: what it held can still be undone by hand (config.history, rollback).
   */
  static async open(file: string, onDamaged: (message: string) => void = () => {}): Promise<Confirmations> {
    const c = new Confirmations({ file });
    let text: string | undefined;
    try {
      text = await readFile(file, 'utf8');
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT')
        onDamaged(`cannot read ${file}: ${(e as Error).message}`);
    }
    if (text !== undefined) {
      try {
        for (const record of readRecords(text)) c.#waiting.set(record.version, { record });
      } catch (e) {
        onDamaged(`${file} is not valid JSON: ${(e as Error).message}`);
      }
    }
    return c;
  }

  /**
   * Sets what happens at a deadline and starts the clocks of the changes already waiting (loaded from the
   * file). `written`: whether a version exists; a loaded change that was recorded but never written (the
   * engine stopped in between) is forgotten, so a later change with its number is not undone in its place.
   */
  onExpire(expire: Expire, written: (version: number) => boolean = () => true): void {
    this.#expire = expire;
    let forgot = false;
    for (const [version, w] of this.#waiting) {
      if (written(version)) this.#arm(w.record);
      else {
        this.#waiting.delete(version);
        forgot = true;
      }
    }
    if (forgot) void this.#save().catch(() => {});
  }

  /** Starts the clock: the change is undone after `seconds` unless `confirm(version)` comes first. */
  async add(version: number, previous: number, seconds: number, by: { user: string; source: string }) {
    const deadline = new Date(Date.now() + seconds * 1000).toISOString();
    const record: PendingRecord = { version, previous, deadline, user: by.user, source: by.source };
    this.#waiting.set(version, { record });
    await this.#save();
    this.#arm(record);
    return { version, previous, deadline } satisfies PendingChange;
  }

  /** Keeps a pending change; false when no change of that version is pending. */
  async confirm(version: number): Promise<boolean> {
    const w = this.#waiting.get(version);
    if (!w || this.#undoing.has(version)) return false;
    clearTimeout(w.timer);
    this.#waiting.delete(version);
    await this.#save();
    return true;
  }

  /**
   * Undoes a pending change now, as its deadline would (config.undo); false when no change of that
   * version waits. The expiry's error (nothing could be undone) goes to the caller, and the change
   * is forgotten either way, as at the deadline.
   */
  async undoNow(version: number, by: { user: string; source: string }): Promise<boolean> {
    const w = this.#waiting.get(version);
    if (!w || this.#expire === undefined || this.#undoing.has(version)) return false;
    clearTimeout(w.timer);
    this.#undoing.add(version);
    try {
      // Undone first, forgotten after (as at the deadline): a crash in between undoes it again on start.
      await this.#expire(w.record, by);
    } finally {
      this.#undoing.delete(version);
      if (this.#waiting.get(version) === w) {
        this.#waiting.delete(version);
        if (!this.#closed) await this.#save();
      }
    }
    return true;
  }

  pending(): PendingChange[] {
    return [...this.#waiting.values()].map(({ record: r }) => ({
      version: r.version,
      previous: r.previous,
      deadline: r.deadline,
    }));
  }

  /** Stops every clock (the server closes); nothing is undone, and the file keeps them for the next start. */
  close(): void {
    this.#closed = true;
    for (const w of this.#waiting.values()) clearTimeout(w.timer);
  }

  #arm(record: PendingRecord): void {
    const w = this.#waiting.get(record.version);
    if (!w || this.#expire === undefined || this.#closed) return;
    clearTimeout(w.timer);
    const expire = this.#expire;
    // setTimeout takes at most 2^31-1 ms; deadlines are at most an hour away.
    w.timer = setTimeout(
      () => {
        if (this.#undoing.has(record.version)) return;
        // Undone first, forgotten after: a crash in between undoes it again on start (undo is idempotent).
        void expire(record)
          .catch(() => {})
          .then(async () => {
            if (this.#waiting.get(record.version)?.record !== record) return;
            this.#waiting.delete(record.version);
            if (!this.#closed) await this.#save();
          })
          .catch(() => {});
      },
      Math.max(0, Date.parse(record.deadline) - Date.now()),
    );
    w.timer.unref();
  }

  #save(): Promise<void> {
    const file = this.#file;
    if (file === undefined) return Promise.resolve();
    const text = `${JSON.stringify([...this.#waiting.values()].map((w) => w.record))}\n`;
    this.#saving = this.#saving.catch(() => {}).then(() => writeFileAtomic(file, text, 0o600));
    return this.#saving;
  }
}
