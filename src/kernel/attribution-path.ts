/**
 * Which way the engine attributes connections (docs/attribution.md): the BPF programs' records on
 * the cgroup the `enforcement.bpfCgroup` setting names (the cgroup2 root by default), or /proc where
 * BPF is off or unavailable. The choice is made once at start and reported in engine.status.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { type BpfAttribution, lookupSocket, openBpfAttribution } from './native.js';

/** The socket lookup the attributor uses, and what engine.status says about it. */
export interface AttributionPath {
  readonly lookup: typeof lookupSocket;
  /** `bpf (cgroup /sys/fs/cgroup/unified)` or `proc (why BPF is not used)`. */
  readonly description: string;
  readonly bpf: BpfAttribution | null;
  close(): void;
}

/** Where cgroup2 is mounted (the hybrid layout's /sys/fs/cgroup/unified, else /sys/fs/cgroup), or null. */
export function cgroup2Mount(mounts = '/proc/self/mounts'): string | null {
  for (const line of readFileSync(mounts, 'utf8').split('\n')) {
    const fields = line.split(' ');
    if (fields[2] === 'cgroup2' && fields[1] !== undefined) return fields[1].replace(/\\040/g, ' ');
  }
  return null;
}

/**
 * Opens the BPF path for `setting` (a path under the cgroup2 mount, '' or 'off': none). The
 * WARDEN_BPF_CGROUP environment variable overrides the setting. Never throws: when the programs
 * cannot be attached, the /proc path is returned with the reason, and `warn` is told.
 */
export function openAttributionPath(
  setting: string,
  warn: (message: string) => void,
  env: NodeJS.ProcessEnv = process.env,
  /** Entries of the verdict cache the connect programs consult (0: none; docs/attribution.md). */
  cacheEntries = 0,
): AttributionPath {
  const chosen = env.WARDEN_BPF_CGROUP ?? setting;
  const proc = (why: string): AttributionPath => ({
    lookup: lookupSocket,
    description: `proc (${why})`,
    bpf: null,
    close() {},
  });
  if (chosen === '' || chosen === 'off')
    return proc(
      env.WARDEN_BPF_CGROUP !== undefined ? 'BPF off: WARDEN_BPF_CGROUP' : 'BPF off: enforcement.bpfCgroup',
    );
  if (!chosen.startsWith('/') || chosen.split('/').includes('..'))
    return proc(`BPF cgroup ${JSON.stringify(chosen)} is not an absolute path under the cgroup2 mount`);
  let mount: string | null;
  try {
    mount = cgroup2Mount();
  } catch {
    mount = null;
  }
  if (mount === null) return proc('no cgroup2 mount');
  const cgroup = join(mount, chosen);
  try {
    const bpf = openBpfAttribution(cgroup, { cacheEntries });
    if (cacheEntries > 0 && typeof bpf.cache === 'string') warn(`no verdict cache: ${bpf.cache}`);
    const slots = bpf.lookups().slots;
    if (slots !== 'on') warn(`no connect-time slots (sock_diag finds every socket): ${slots}`);
    return { lookup: bpf.lookupSocket, description: `bpf (cgroup ${cgroup})`, bpf, close: () => bpf.close() };
  } catch (e) {
    const message = (e as Error).message;
    warn(`attribution falls back to /proc: ${message}`);
    return proc(`BPF unavailable: ${message}`);
  }
}
