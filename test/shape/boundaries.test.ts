/**
 * The project's shape: the policy core stays pure (no node: imports, no I/O
 * layers), layers import only downwards, and no source file grows past 600
 * lines (split it by concern instead).
 */
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { test } from 'node:test';
import { repoRoot } from '../repo-root.js';

const root = repoRoot(import.meta.url);
const src = join(root, 'src');

function sourceFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) return sourceFiles(path);
    return name.endsWith('.ts') && !name.endsWith('.test.ts') ? [path] : [];
  });
}

function importsOf(path: string): string[] {
  const text = readFileSync(path, 'utf8');
  return [...text.matchAll(/^\s*(?:import|export)\s[^'"]*?from\s+['"]([^'"]+)['"]/gm)].map((m) => m[1]!);
}

/** Top-level folder (or file) of a path under src/. */
function layerOf(path: string): string {
  return relative(src, path)
    .split('/')[0]!
    .replace(/\.(ts|js)$/, '');
}

/** Which layers each layer may import from (besides itself and npm packages). */
const ALLOWED: Record<string, readonly string[]> = {
  errors: [],
  /** Text made safe to show (control characters neutralised): for any layer. */
  text: [],
  'atomic-file': ['errors'],
  /** Reads a list's file or directory: for the engine and the console alike. */
  'list-files': [],
  /** Looks for programs on this host (missing-application warnings): I/O, so outside the pure policy core. */
  'host-programs': ['policy'],
  ip: [],
  document: ['errors', 'yaml-slices'],
  /** The YAML parser's slicing of big files, for document. */
  'yaml-slices': [],
  policy: ['ip', 'settings', 'errors', 'document', 'text'],
  settings: ['ip', 'errors', 'document', 'policy'],
  protocol: ['errors'],
  /** A policy's hash: the policy core's canonical text through node:crypto. */
  'policy-hash': ['policy'],
  hints: [],
  rpc: ['protocol', 'errors'],
  admin: [
    'atomic-file',
    'policy-hash',
    'host-programs',
    'protocol',
    'rpc',
    'policy',
    'settings',
    'ip',
    'errors',
    'document',
    'hints',
    'metrics',
  ],
  client: ['atomic-file', 'protocol', 'rpc', 'errors', 'ip'],
  kernel: ['policy', 'settings', 'ip', 'errors', 'document'],
  engine: [
    'atomic-file',
    'list-files',
    'text',
    'kernel',
    'admin',
    'policy',
    'settings',
    'ip',
    'errors',
    'document',
    'protocol',
    'rpc',
    'hints',
    'metrics',
  ],
  metrics: [],
  /** The man page generator reads both command trees. */
  man: ['console', 'engine'],
  assist: ['engine', 'settings', 'errors'],
  console: [
    'atomic-file',
    'list-files',
    'policy-hash',
    'host-programs',
    'policy',
    'settings',
    'ip',
    'errors',
    'document',
    'protocol',
    'rpc',
    'client',
    'hints',
    'text',
  ],
};
const PURE = new Set(['errors', 'ip', 'document', 'yaml-slices', 'policy', 'settings', 'hints', 'text']);
/** Pure modules inside I/O layers: the kernel's compilers and parsers are tested without a kernel. */
const PURE_FILES = new Set(['kernel/ruleset.ts', 'kernel/packet.ts', 'kernel/proc-net.ts']);

test('layers import only what they may; the pure core imports no node: modules', () => {
  const violations: string[] = [];
  for (const file of sourceFiles(src)) {
    const layer = layerOf(file);
    for (const spec of importsOf(file)) {
      const where = relative(root, file);
      if (spec.startsWith('node:')) {
        if (PURE.has(layer) || PURE_FILES.has(relative(src, file)))
          violations.push(`${where} imports ${spec}, but ${layer}/ must stay free of I/O`);
        continue;
      }
      if (!spec.startsWith('.')) continue;
      const target = layerOf(join(file, '..', spec));
      if (target === layer) continue;
      const allowed = ALLOWED[layer];
      if (allowed === undefined)
        violations.push(`${where}: layer ${layer} has no import rule in boundaries.test.ts`);
      else if (!allowed.includes(target))
        violations.push(`${where} imports ${spec} (layer ${target}), which ${layer}/ may not use`);
    }
  }
  assert.deepEqual(violations, []);
});

test('no source file is longer than 600 lines', () => {
  const long = sourceFiles(src)
    .map((f) => ({ f: relative(root, f), lines: readFileSync(f, 'utf8').split('\n').length }))
    .filter((x) => x.lines > 600);
  assert.deepEqual(long, []);
});

/** The web front end (web/src, built by Vite) is a separate program: it reaches engines only through the console. */
test('the web front end imports only its own files and preact, and stays under 600 lines a file', () => {
  const web = join(root, 'web/src');
  const files = (function walk(dir: string): string[] {
    return readdirSync(dir).flatMap((name) => {
      const path = join(dir, name);
      return statSync(path).isDirectory() ? walk(path) : /\.tsx?$/.test(name) ? [path] : [];
    });
  })(web);
  const problems: string[] = [];
  for (const file of files) {
    for (const spec of importsOf(file)) {
      const inside = spec.startsWith('.') && join(file, '..', spec).startsWith(web);
      if (!inside && !/^preact(\/|$)/.test(spec)) problems.push(`${relative(root, file)} imports ${spec}`);
    }
    const lines = readFileSync(file, 'utf8').split('\n').length;
    if (lines > 600) problems.push(`${relative(root, file)} has ${lines} lines`);
  }
  assert.deepEqual(problems, []);
  assert.ok(files.length > 5, 'found the front end');
});
