/** A fixture process run in a namespace (test/kernel/fixtures/*.js) that talks in JSON lines. */
import type { ChildProcess } from 'node:child_process';
import { dirname, join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import type { NetnsPair } from './netns.js';

const fixtures = join(dirname(fileURLToPath(import.meta.url)), 'fixtures');

export type Line = Record<string, unknown>;

/** Starts `script` in `ns`; its JSON output lines, stdin, and a way to wait for a line. */
export function fixture(pair: NetnsPair, ns: string, script: string, args: string[]) {
  const child: ChildProcess = pair.spawn(ns, process.execPath, [join(fixtures, script), ...args], {
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  const lines: Line[] = [];
  let stderr = '';
  child.stderr!.on('data', (d) => (stderr += d));
  createInterface({ input: child.stdout! }).on('line', (l) => lines.push(JSON.parse(l) as Line));
  return {
    lines,
    /** Ends the fixture (SIGTERM to the process this call started). */
    close: () => {
      if (child.exitCode === null) child.kill('SIGTERM');
    },
    send: (line: string) => {
      if (child.exitCode !== null)
        throw new Error(`${script} exited (${child.exitCode}): ${JSON.stringify(lines)} ${stderr}`);
      child.stdin!.write(`${line}\n`);
    },
    async next(pred: (l: Line) => boolean, what: string, ms = 5000): Promise<Line> {
      const end = Date.now() + ms;
      for (;;) {
        const found = lines.find(pred);
        if (found) return found;
        if (Date.now() > end || child.exitCode !== null)
          throw new Error(`${script}: no ${what}; lines ${JSON.stringify(lines)}; stderr ${stderr}`);
        await new Promise((r) => setTimeout(r, 10));
      }
    },
  };
}
