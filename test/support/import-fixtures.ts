/** The import fixtures (test/fixtures/import/<dir>) as source files named <dir>/<file>. */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { SourceFile } from '../../src/policy/import/index.js';
import { repoRoot } from '../repo-root.js';

export function fixtures(dir: string): SourceFile[] {
  const path = join(repoRoot(import.meta.url), 'test/fixtures/import', dir);
  return readdirSync(path)
    .sort()
    .map((n) => ({ name: `${dir}/${n}`, text: readFileSync(join(path, n), 'utf8') }));
}
