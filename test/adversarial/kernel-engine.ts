/**
 * The setting of the kernel attacks: a namespace pair, `wardend run` enforcing in the client
 * namespace with the test's policy and settings (test/kernel/wardend.ts), a local console for
 * log queries (test/kernel/fixtures/local-console.ts), and programs run as root or as nobody.
 */
import type { ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { fixture } from '../kernel/fixture-process.js';
import { createNetnsPair, type NetnsPair } from '../kernel/netns.js';
import { startWardend } from '../kernel/wardend.js';

export interface LogItem {
  kind: string;
  verdict?: string;
  application?: string;
  user?: string;
  local?: string;
  remote?: string;
  message: string;
  /** Connections the item stands for (repeats of an attempt, or the verdict cache's hits), when more than one. */
  count?: number;
}

export { consoleRule } from '../kernel/wardend.js';

export interface KernelEngine {
  readonly pair: NetnsPair;
  readonly engine: ChildProcess & { output: () => string };
  /** Every log item matching `params` (logs.query), oldest first. */
  logs(params: Record<string, unknown>): Promise<LogItem[]>;
  /** Calls one method as the local administrator; rejects with the error's message. */
  call(method: string, params: Record<string, unknown>): Promise<unknown>;
  /** Runs a program in the client namespace as nobody (uid 65534) or root. */
  spawnAs(user: 'root' | 'nobody', command: string, args: readonly string[]): ChildProcess;
  close(): void;
}

export async function startKernelEngine(
  label: string,
  port: number,
  policy: string,
  settings: string,
  /** A cgroup of the test's own for the engine's BPF programs (enforcement.bpfCgroup); none: off. */
  bpfCgroup?: { readonly path: string },
  /** Options of node itself for the engine (startWardend). */
  nodeArgs: readonly string[] = [],
): Promise<KernelEngine> {
  const pair = createNetnsPair(label);
  const dir = mkdtempSync(join(tmpdir(), `warden-${label}-`));
  let engine: (ChildProcess & { output: () => string }) | undefined;
  try {
    mkdirSync(join(dir, 'etc'));
    writeFileSync(join(dir, 'etc/policy.yaml'), policy);
    writeFileSync(join(dir, 'etc/settings.yaml'), settings);
    // Read by wardend at start through the harness's environment; the harness's default is off.
    if (bpfCgroup !== undefined) process.env.WARDEN_BPF_CGROUP = `/${basename(bpfCgroup.path)}`;
    try {
      engine = await startWardend(pair, pair.client, dir, port, [], nodeArgs);
    } finally {
      delete process.env.WARDEN_BPF_CGROUP;
    }
  } catch (error) {
    pair.close();
    rmSync(dir, { recursive: true, force: true });
    throw error;
  }
  let console: ReturnType<typeof fixture> | undefined;
  let id = 0;
  const ready = async () => {
    if (console === undefined) {
      console = fixture(pair, pair.client, 'local-console.js', [
        String(port),
        join(dir, 'state/local-token'),
      ]);
      await console.next((l) => l.event === 'ready', 'ready', 15_000);
    }
    return console;
  };
  return {
    pair,
    engine,
    async call(method, params) {
      const c = await ready();
      const n = ++id;
      c.send(JSON.stringify({ id: n, method, params }));
      const answer = await c.next((l) => l.id === n, method, 15_000);
      if (answer.error !== undefined) throw new Error(`${method}: ${String(answer.error)}`);
      return answer.result;
    },
    async logs(params) {
      await ready();
      const items: LogItem[] = [];
      let fromSeq = 1;
      for (;;) {
        const n = ++id;
        console!.send(
          JSON.stringify({ id: n, method: 'logs.query', params: { ...params, fromSeq, limit: 1000 } }),
        );
        const answer = await console!.next((l) => l.id === n, `logs.query ${JSON.stringify(params)}`, 15_000);
        if (answer.error !== undefined) throw new Error(`logs.query: ${String(answer.error)}`);
        const page = (answer.result as { items: (LogItem & { seq: number })[] }).items;
        items.push(...page);
        if (page.length < 1000) return items;
        fromSeq = page[page.length - 1]!.seq + 1;
      }
    },
    spawnAs(user, command, args) {
      const asUser = user === 'nobody' ? ['--reuid=65534', '--regid=65534', '--clear-groups'] : [];
      return pair.spawn(pair.client, 'setpriv', [...asUser, command, ...args], {
        stdio: ['ignore', 'pipe', 'pipe'],
      });
    },
    close() {
      if (engine?.pid && engine.exitCode === null && engine.signalCode === null)
        process.kill(engine.pid, 'SIGTERM');
      pair.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** Collects a child's stdout and resolves with it when the child exits. */
export function outputOf(child: ChildProcess): Promise<string> {
  let out = '';
  let err = '';
  child.stdout?.on('data', (d) => (out += d));
  child.stderr?.on('data', (d) => (err += d));
  return new Promise((resolve, reject) => {
    child.once('error', reject);
    child.once('exit', (code) =>
      code === 0 ? resolve(out) : reject(new Error(`exited ${code}: ${out} ${err}`)),
    );
  });
}
