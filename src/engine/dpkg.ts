/**
 * The parts of the Debian package database a re-pin needs (repin.ts), read directly (no dpkg
 * process): which package installed a path (`dpkg -S`: the info/*.list files), the MD5 the package
 * records for it (info/PKG.md5sums) and the package's version (status). Answers are kept until the
 * info directory changes (dpkg rewrites it on every install or removal).
 *
 * The database root is /var/lib/dpkg; WARDEN_DPKG_ADMINDIR names another one (tests use a fake
 * database in a temporary directory; docs/policy.md).
 */
import { readdir, readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';

/** The default database root, or WARDEN_DPKG_ADMINDIR. */
export function dpkgAdminDir(): string {
  return process.env.WARDEN_DPKG_ADMINDIR || '/var/lib/dpkg';
}

/** Larger list or md5sums files are not read (a damaged database must not cost the engine its memory). */
const MAX_FILE_BYTES = 32 * 1024 * 1024;

/** The same file under the other spelling of a merged-/usr system (/bin/x is /usr/bin/x). */
function aliases(path: string): string[] {
  const out = [path];
  const m = /^\/usr(\/(?:s?bin|lib\w*)\/.*)$/.exec(path);
  if (m) out.push(m[1]!);
  else if (/^\/(?:s?bin|lib\w*)\//.test(path)) out.push(`/usr${path}`);
  return out;
}

/** A package's installed file as the database records it. */
export interface PackageFile {
  /** The package as dpkg names it, with :arch for multi-arch packages (the info file stem). */
  readonly package: string;
  /** The installed version (from status), if recorded. */
  readonly version?: string;
  /** The MD5 the package records for the file (md5sums), if it does. */
  readonly md5?: string;
}

/** Reads a dpkg database. */
export class DpkgDatabase {
  readonly root: string;
  #stamp = '';
  readonly #owners = new Map<string, PackageFile | null>();

  constructor(root: string = dpkgAdminDir()) {
    this.root = root;
  }

  /** Changes whenever dpkg changes its info directory (an install, upgrade or removal); '' without a database. */
  async stamp(): Promise<string> {
    const st = await stat(join(this.root, 'info')).catch(() => undefined);
    return st === undefined ? '' : `${st.mtimeMs}:${st.ino}`;
  }

  /** The package that installed `path` (its version and recorded MD5); null when none did. */
  async fileOf(path: string): Promise<PackageFile | null> {
    const info = join(this.root, 'info');
    const stamp = await this.stamp();
    if (stamp === '') return null; // no database: not a Debian system
    if (stamp !== this.#stamp) {
      this.#owners.clear();
      this.#stamp = stamp;
    }
    const known = this.#owners.get(path);
    if (known !== undefined) return known;
    const found = await this.#lookup(info, path);
    if (this.#owners.size >= 1024) this.#owners.clear();
    this.#owners.set(path, found);
    return found;
  }

  async #lookup(info: string, path: string): Promise<PackageFile | null> {
    const names = aliases(path);
    const lists = (await readdir(info)).filter((f) => f.endsWith('.list')).sort();
    for (const list of lists) {
      const text = await readBounded(join(info, list));
      if (text === undefined) continue;
      const lines = `\n${text}\n`;
      const hit = names.find((n) => lines.includes(`\n${n}\n`));
      if (hit === undefined) continue;
      const pkg = list.slice(0, -'.list'.length);
      const md5 = await this.#md5(info, pkg, names);
      const version = await this.#version(pkg);
      return {
        package: pkg,
        ...(version !== undefined ? { version } : {}),
        ...(md5 !== undefined ? { md5 } : {}),
      };
    }
    return null;
  }

  async #md5(info: string, pkg: string, names: readonly string[]): Promise<string | undefined> {
    const text = await readBounded(join(info, `${pkg}.md5sums`));
    if (text === undefined) return undefined;
    const wanted = new Set(names.map((n) => n.slice(1))); // md5sums paths have no leading slash
    for (const line of text.split('\n')) {
      const m = /^([0-9a-f]{32}) {2}(.+)$/.exec(line);
      if (m && wanted.has(m[2]!)) return m[1];
    }
    return undefined;
  }

  async #version(pkg: string): Promise<string | undefined> {
    const [name, arch] = pkg.split(':');
    const text = await readBounded(join(this.root, 'status'));
    if (text === undefined) return undefined;
    for (const stanza of text.split(/\n\n+/)) {
      const field = (f: string) => new RegExp(`^${f}: *(.*)$`, 'm').exec(stanza)?.[1]?.trim();
      if (field('Package') !== name) continue;
      if (arch !== undefined && field('Architecture') !== arch) continue;
      return field('Version');
    }
    return undefined;
  }
}

async function readBounded(path: string): Promise<string | undefined> {
  try {
    const st = await stat(path);
    if (!st.isFile() || st.size > MAX_FILE_BYTES) return undefined;
    return await readFile(path, 'utf8');
  } catch {
    return undefined;
  }
}
