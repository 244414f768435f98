/** The repository root, found from a compiled test file's location (dist/test/... or dist/src/...). */
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** Walks up from `importMetaUrl` to the directory holding package.json. */
export function repoRoot(importMetaUrl: string): string {
  let dir = dirname(fileURLToPath(importMetaUrl));
  while (!existsSync(join(dir, 'package.json'))) {
    const up = dirname(dir);
    if (up === dir) throw new Error('package.json not found above the test file');
    dir = up;
  }
  return dir;
}
