/**
 * Copies of files another uid (nobody, in the tests that run a program as another user) must read:
 * the checkout may be in a directory only root can enter (`/root/warden`, mode 0700), so nothing
 * such a process runs may be read from the checkout. The copies are in a fresh temporary directory
 * of mode 0755, each file 0644; they must need no file of the checkout (node built-ins only).
 */
import { chmodSync, copyFileSync, mkdtempSync, realpathSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';

export interface WorldReadable {
  /** The copy of each file given, by the file's base name. */
  readonly paths: Record<string, string>;
  /** Deletes the directory and the copies. */
  remove(): void;
}

/** Copies `files` into a new world-readable temporary directory. */
export function worldReadableCopies(files: readonly string[]): WorldReadable {
  const dir = realpathSync(mkdtempSync(join(tmpdir(), 'warden-other-uid-')));
  chmodSync(dir, 0o755);
  const paths: Record<string, string> = {};
  for (const file of files) {
    const to = join(dir, basename(file));
    copyFileSync(file, to);
    chmodSync(to, 0o644);
    paths[basename(file)] = to;
  }
  return { paths, remove: () => rmSync(dir, { recursive: true, force: true }) };
}
