/**
 * The Debian re-pin: when a pinned program's file changed and the new file is the one its package
 * installed (the package's md5sums say so), a package update keeps its rules: the engine re-pins
 * them itself, as a versioned change of the policy audited under the user "engine" (as rules.update
 * would). A file that matches no package checksum is never re-pinned: the rules stay pinned to the
 * old file, and a security log item says so once.
 */
import type { Policy, Rule } from '../policy/index.js';
import { policyToPlain, validatePolicy } from '../policy/index.js';
import { shortHash } from '../policy/match.js';
import type { NewLogItem } from '../protocol/log-item.js';
import type { DpkgDatabase, PackageFile } from './dpkg.js';
import type { FileHash } from './exe-hash.js';
import type { PinChange } from './pins.js';

/** What the re-pin decision knows. */
export interface RepinInput {
  readonly application: string;
  readonly sha256: string;
  readonly md5: string;
  /** The package file of the application's path, or null when no package installed it. */
  readonly owner: PackageFile | null;
  readonly rules: readonly Rule[];
}

export type RepinDecision =
  | { readonly repin: true; readonly rules: readonly string[]; readonly because: string }
  | { readonly repin: false; readonly because: string };

/** Pure: re-pin the rules pinning `application` to another hash only when the package vouches for the new file. */
export function repinDecision(i: RepinInput): RepinDecision {
  const rules = i.rules
    .filter((r) => r.application === i.application && r.sha256 !== undefined && r.sha256 !== i.sha256)
    .map((r) => r.name);
  const now = `${i.application} is now sha256 ${shortHash(i.sha256)}`;
  if (rules.length === 0) return { repin: false, because: `no rule pins ${i.application} to another hash` };
  if (i.owner === null) return { repin: false, because: `${now} and belongs to no Debian package` };
  const pkg = `${i.owner.package}${i.owner.version !== undefined ? ` ${i.owner.version}` : ''}`;
  if (i.owner.md5 === undefined)
    return { repin: false, because: `${now}; package ${pkg} records no checksum for it` };
  if (i.owner.md5 !== i.md5)
    return {
      repin: false,
      because: `${now}, which is NOT the file package ${pkg} installed (md5 ${i.md5} where the package has ${i.owner.md5})`,
    };
  return { repin: true, rules, because: `${now}, the file of package ${pkg} (its md5sums match)` };
}

/** The policy with those rules pinned to the new hash. */
export function repinned(policy: Policy, names: readonly string[], sha256: string): Policy {
  const wanted = new Set(names);
  return { ...policy, rules: policy.rules.map((r) => (wanted.has(r.name) ? { ...r, sha256 } : r)) };
}

export interface RepinnerOptions {
  readonly dpkg: DpkgDatabase;
  /** Hashes the file at the application path with its MD5 (the engine's ExeHasher). */
  readonly hasher: { ofPath(path: string, options: { md5: true }): Promise<FileHash> };
  readonly policy: () => Policy;
  readonly setPolicy: (policy: Policy, meta: { user: string; source: string }) => Promise<number>;
  readonly log: (item: NewLogItem) => void;
  readonly fail: (message: string) => void;
}

/**
 * Looks at each changed pin once per (application, new hash) and state of the dpkg database, off the
 * verdict path: a file refused before its package's checksums were written (dpkg unpacks, then
 * records) is looked at again once the database changed.
 */
export class Repinner {
  readonly #o: RepinnerOptions;
  /** Looks waiting or running, by application and hash: one at a time per key, whatever the connection rate. */
  readonly #queued = new Map<string, Promise<void>>();
  /** Looked at, with the dpkg stamp of that look. */
  readonly #looked = new Map<string, string>();
  #work: Promise<void> = Promise.resolve();

  constructor(options: RepinnerOptions) {
    this.#o = options;
  }

  /**
   * Queues a look at a changed pin; changes are looked at one after the other. Resolves when this
   * change's look is over (re-pinned and in force, or not), never rejects: a connection may wait
   * for it, bounded, so that the first connection after a package update is decided by its rules.
   */
  consider(change: PinChange): Promise<void> {
    const key = `${change.application}\n${change.hash.sha256}`;
    const queued = this.#queued.get(key);
    if (queued !== undefined) return queued;
    const look = this.#work
      .then(() => this.#look(change, key))
      .catch((e: Error) => {
        this.#looked.delete(key); // looked at again on the next connection
        this.#o.fail(`re-pin of ${change.application} failed: ${e.message}`);
      })
      .finally(() => this.#queued.delete(key));
    this.#queued.set(key, look);
    this.#work = look;
    return look;
  }

  /** Resolves when every queued look is done (tests). */
  settled(): Promise<void> {
    return this.#work;
  }

  async #look(change: PinChange, key: string): Promise<void> {
    const stamp = await this.#o.dpkg.stamp();
    if (this.#looked.get(key) === stamp) return;
    if (this.#looked.size >= 4096) this.#looked.clear();
    this.#looked.set(key, stamp);
    const owner = await this.#o.dpkg.fileOf(change.application);
    // The MD5 (costly, so not taken for every pin) only when a package has a checksum to compare it with,
    // of the file at the path: it must be the one the connection ran (the same SHA-256).
    let md5 = change.hash.md5 ?? '';
    if (owner?.md5 !== undefined && change.hash.md5 === undefined) {
      const atPath = await this.#o.hasher.ofPath(change.application, { md5: true });
      if (atPath.sha256 !== change.hash.sha256) {
        this.#looked.delete(key); // the file changed again: the next connection brings its hash
        return;
      }
      md5 = atPath.md5!;
    }
    const policy = this.#o.policy();
    const d = repinDecision({
      application: change.application,
      sha256: change.hash.sha256,
      md5,
      owner,
      rules: policy.rules,
    });
    if (!d.repin) {
      if (d.because.startsWith('no rule')) return;
      this.#o.log({
        kind: 'security',
        message: `pinned rules of ${change.application} not re-pinned: ${d.because}`,
      });
      return;
    }
    const old = [...new Set(policy.rules.filter((r) => d.rules.includes(r.name)).map((r) => r.sha256!))];
    const next = validatePolicy(policyToPlain(repinned(policy, d.rules, change.hash.sha256)));
    const version = await this.#o.setPolicy(next, { user: 'engine', source: 'dpkg re-pin' });
    this.#o.log({
      kind: 'admin',
      user: 'engine',
      source: 'dpkg re-pin',
      message: `rule${d.rules.length > 1 ? 's' : ''} ${d.rules.map((n) => `"${n}"`).join(', ')} re-pinned from sha256 ${old.map(shortHash).join(', ')} as version ${version}: ${d.because}`,
    });
  }
}
