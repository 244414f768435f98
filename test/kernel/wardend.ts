/** Runs the real `wardend run` inside a namespace for kernel tests, with the config the test wrote. */
import type { ChildProcess } from 'node:child_process';
import { chmodSync, copyFileSync, mkdirSync, realpathSync } from 'node:fs';
import { join } from 'node:path';
import { repoRoot } from '../repo-root.js';
import type { NetnsPair } from './netns.js';

const root = repoRoot(import.meta.url);
export const WARDEND = join(root, 'dist/src/engine/bin.js');
export const NODE = realpathSync(process.execPath);

/** Policy lines for the test's console (a node script of its own, not Warden's console) to reach the engine. */
export function consoleRule(port: number): string {
  return `  - name: test console to the engine
    direction: outgoing
    protocol: tcp
    application: ${NODE}
    remote: localhost
    remotePorts: ${port}
    action: allow
`;
}

/**
 * A policy that denies and logs what no rule allows, both ways: the test console's rule first,
 * then `rules` (policy lines, indented as list items).
 */
export function denyAllPolicy(port: number, rules = '', mode = 'enforce'): string {
  return `version: 1
mode: ${mode}
defaults:
  incoming: { action: deny, log: true }
  outgoing: { action: deny, log: true }
rules:
${consoleRule(port)}${rules}`;
}

/** Gives the engine the fixture TLS identity, so fixture consoles that pin it can connect. */
export function useFixtureIdentity(stateDir: string): void {
  const tls = join(stateDir, 'tls');
  mkdirSync(tls, { recursive: true, mode: 0o700 });
  for (const [from, to] of [
    ['engine-key.pem', 'key.pem'],
    ['engine-cert.pem', 'cert.pem'],
  ] as const) {
    copyFileSync(join(root, 'test/fixtures/tls', from), join(tls, to));
    chmodSync(join(tls, to), 0o600);
  }
}

/** Starts wardend in `ns` (with `extraArgs`, e.g. --no-kernel) and resolves once it listens; its output is kept for failure messages. */
export async function startWardend(
  pair: NetnsPair,
  ns: string,
  dir: string,
  port: number,
  extraArgs: readonly string[] = [],
  /** Options of node itself, before the script (e.g. --cpu-prof). */
  nodeArgs: readonly string[] = [],
): Promise<ChildProcess & { output: () => string }> {
  const child = pair.spawn(
    ns,
    NODE,
    [
      ...nodeArgs,
      WARDEND,
      'run',
      '--config-dir',
      join(dir, 'etc'),
      '--state-dir',
      join(dir, 'state'),
      '--port',
      String(port),
      ...extraArgs,
    ],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let out = '';
  child.stderr!.on('data', (d) => (out += d));
  child.stdout!.on('data', (d) => (out += d));
  const end = Date.now() + 10_000;
  while (!out.includes('listening on port')) {
    if (Date.now() > end || child.exitCode !== null) throw new Error(`wardend did not start: ${out}`);
    await new Promise((r) => setTimeout(r, 20));
  }
  return Object.assign(child, { output: () => out });
}
