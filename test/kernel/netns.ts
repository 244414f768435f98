/**
 * Throwaway network namespaces for kernel tests: a pair `client` <-veth-> `server`
 * (10.200.0.1/24 and 10.200.0.2/24, fd00:200::1/64 and fd00:200::2/64), made inside the
 * namespaces themselves so the host's own network is never touched. Commands run through
 * `nsenter --net=...` (not `ip netns exec`, which hides /sys/fs/cgroup: kernel-notes.md).
 */
import { type ChildProcess, execFileSync, type SpawnOptions, spawn } from 'node:child_process';

let counter = 0;

export const CLIENT_ADDR = '10.200.0.1';
export const SERVER_ADDR = '10.200.0.2';
export const CLIENT_ADDR6 = 'fd00:200::1';
export const SERVER_ADDR6 = 'fd00:200::2';

/** Why kernel tests cannot run here, or undefined when they can (root, ip, nsenter, nft). */
export function kernelTestsUnavailable(): string | undefined {
  if (process.getuid?.() !== 0) return 'kernel tests need root';
  for (const tool of ['ip', 'nsenter', 'nft']) {
    try {
      execFileSync('sh', ['-c', `command -v ${tool}`], { stdio: 'ignore' });
    } catch {
      return `kernel tests need ${tool} (run scripts/setup.sh as root)`;
    }
  }
  return undefined;
}

export interface NetnsPair {
  readonly client: string;
  readonly server: string;
  /** Path for `nsenter --net=`. */
  path(ns: string): string;
  /** Runs a command in a namespace and returns its stdout; throws with stderr on failure. */
  run(ns: string, command: string, args: readonly string[], input?: string): string;
  /** Starts a long-running command in a namespace; killed (by its PID) on close(). */
  spawn(ns: string, command: string, args: readonly string[], options?: SpawnOptions): ChildProcess;
  /** Kills what spawn() started and deletes both namespaces. */
  close(): void;
}

function ip(args: readonly string[]): void {
  execFileSync('ip', args, { stdio: ['ignore', 'ignore', 'pipe'] });
}

/**
 * Pairs not closed yet: closed when the process exits however it exits (an exception nobody caught,
 * an 'error' event, process.exit), so a crashed test or benchmark leaves no namespace behind.
 */
const open = new Set<NetnsPair>();
process.once('exit', () => {
  for (const pair of open) {
    try {
      pair.close();
    } catch {
      // the next one all the same
    }
  }
});

/** Makes a fresh namespace pair with a unique name; the caller must close() it. */
export function createNetnsPair(label = 'k'): NetnsPair {
  const id = `${process.pid}-${++counter}`;
  const client = `wd-${label}-${id}-c`;
  const server = `wd-${label}-${id}-s`;
  const children = new Set<ChildProcess>();
  ip(['netns', 'add', client]);
  try {
    ip(['netns', 'add', server]);
    // The veth pair is created inside the client namespace and its peer moved straight into the
    // server namespace: no interface ever exists in the host's namespace.
    ip(['-n', client, 'link', 'add', 'wd0', 'type', 'veth', 'peer', 'name', 'wd1', 'netns', server]);
    ip(['-n', client, 'addr', 'add', `${CLIENT_ADDR}/24`, 'dev', 'wd0']);
    ip(['-n', server, 'addr', 'add', `${SERVER_ADDR}/24`, 'dev', 'wd1']);
    ip(['-n', client, 'addr', 'add', `${CLIENT_ADDR6}/64`, 'dev', 'wd0', 'nodad']);
    ip(['-n', server, 'addr', 'add', `${SERVER_ADDR6}/64`, 'dev', 'wd1', 'nodad']);
    for (const [ns, dev] of [
      [client, 'wd0'],
      [server, 'wd1'],
    ] as const) {
      ip(['-n', ns, 'link', 'set', 'lo', 'up']);
      ip(['-n', ns, 'link', 'set', dev, 'up']);
    }
  } catch (error) {
    deleteNamespace(client);
    deleteNamespace(server);
    throw error;
  }
  const path = (ns: string) => `/run/netns/${ns}`;
  const pair: NetnsPair = {
    client,
    server,
    path,
    run(ns, command, args, input) {
      try {
        return execFileSync('nsenter', [`--net=${path(ns)}`, command, ...args], {
          encoding: 'utf8',
          input,
          stdio: ['pipe', 'pipe', 'pipe'],
        });
      } catch (error) {
        const e = error as { stderr?: string; message: string };
        throw new Error(`${command} ${args.join(' ')} in ${ns} failed: ${e.stderr || e.message}`);
      }
    },
    spawn(ns, command, args, options = {}) {
      // An engine under test never attaches its attribution BPF programs to the host's cgroup2 root
      // (docs/settings.md, enforcement.bpfCgroup): off unless the test names a cgroup of its own.
      const env = { WARDEN_BPF_CGROUP: 'off', ...(options.env ?? process.env) };
      const child = spawn('nsenter', [`--net=${path(ns)}`, command, ...args], { ...options, env });
      children.add(child);
      child.once('exit', () => children.delete(child));
      return child;
    },
    close() {
      open.delete(pair);
      for (const child of children)
        if (child.exitCode === null && child.pid) process.kill(child.pid, 'SIGKILL');
      deleteNamespace(client);
      deleteNamespace(server);
    },
  };
  open.add(pair);
  return pair;
}

function deleteNamespace(ns: string): void {
  try {
    ip(['netns', 'delete', ns]);
  } catch {
    // already gone
  }
}

/**
 * What a node program in `ns` sees when it opens a TCP connection to address:port: 'connected',
 * 'timeout' (nothing came back within `timeoutMs`), or the error code (ECONNREFUSED for a reject).
 */
export function tcpConnect(
  pair: NetnsPair,
  ns: string,
  address: string,
  port: number,
  timeoutMs = 1500,
): string {
  return pair.run(ns, process.execPath, [
    '-e',
    `const s = require('node:net').connect(${port}, '${address}');
     s.setTimeout(${timeoutMs}, () => { process.stdout.write('timeout'); process.exit(0); });
     s.on('connect', () => { process.stdout.write('connected'); process.exit(0); });
     s.on('error', (e) => { process.stdout.write(e.code); process.exit(0); });`,
  ]);
}

/**
 * Starts TCP servers in `ns` on `ports` (every address, IPv4 and IPv6) that accept and close (a
 * reset from the client is ignored); resolves once all listen. They end with the pair.
 */
export async function listenOn(pair: NetnsPair, ns: string, ports: readonly number[]): Promise<void> {
  const server = pair.spawn(ns, process.execPath, [
    '-e',
    `const net = require('node:net'); let n = 0;
     for (const p of ${JSON.stringify(ports)}) net.createServer((c) => c.on('error', () => {}).end()).listen(p, '::', () => { if (++n === ${ports.length}) console.log('ready'); });`,
  ]);
  await new Promise<void>((resolve, reject) => {
    server.stdout!.once('data', () => resolve());
    server.once('exit', (code) =>
      reject(new Error(`servers on ${ports.join(', ')} in ${ns} exited (${code})`)),
    );
  });
}
