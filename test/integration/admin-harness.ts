/** Starts a real administration server on 127.0.0.1 with fixture TLS identities, for integration tests. */
import { X509Certificate } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { UserStore } from '../../src/admin/auth/users.js';
import { FileConfigStore } from '../../src/admin/config-store.js';
import { MemoryLogStore } from '../../src/admin/log-store.js';
import { AdminServer, type AdminServerOptions, type Throttle } from '../../src/admin/server.js';
import { EngineClient } from '../../src/client/engine-client.js';
import { fingerprintOfDer } from '../../src/client/known-hosts.js';
import { ErrorCode, WardenError } from '../../src/errors.js';
import type { Role } from '../../src/protocol/methods.js';
import { repoRoot } from '../repo-root.js';

const tlsDir = join(repoRoot(import.meta.url), 'test/fixtures/tls');

/** Reads a fixture identity: key, certificate and fingerprint. */
export function fixtureIdentity(name: 'engine' | 'other') {
  const cert = readFileSync(join(tlsDir, `${name}-cert.pem`), 'utf8');
  const key = readFileSync(join(tlsDir, `${name}-key.pem`), 'utf8');
  return { key, cert, fingerprint: fingerprintOfDer(new X509Certificate(cert).raw) };
}

/** Users of the test engine: alice (administrator) and bob (auditor). */
export const USERS: Record<string, { password: string; role: Role }> = {
  alice: { password: 'correct horse battery', role: 'administrator' },
  bob: { password: 'auditor password', role: 'auditor' },
};

/** A throttle that never delays (tests that need throttling use the real LoginThrottle). */
export const noThrottle: Throttle = {
  check: () => ({ allowed: true }),
  failure: () => {},
  success: () => {},
};

export interface Harness {
  readonly server: AdminServer;
  readonly logs: MemoryLogStore;
  readonly config: FileConfigStore;
  readonly fingerprint: string;
  connect(options?: { fingerprint?: string }): Promise<EngineClient>;
  login(user?: string): Promise<EngineClient>;
  close(): Promise<void>;
}

/** Starts an engine-side server; `overrides` replace options (throttle, timeouts, ...). */
export async function startHarness(overrides: Partial<AdminServerOptions> = {}): Promise<Harness> {
  const dir = mkdtempSync(join(tmpdir(), 'warden-admin-'));
  const config = await FileConfigStore.open(dir);
  const logs = new MemoryLogStore();
  const identity = fixtureIdentity('engine');
  // A real users file with scrypt hashes (a cheaper cost than production, to keep tests quick).
  const users = await UserStore.open(join(dir, 'users.json'), { scryptCost: { N: 2 ** 12, r: 8, p: 1 } });
  for (const [name, u] of Object.entries(USERS)) await users.add(name, u.role, u.password);
  const server = await AdminServer.start({
    identity,
    users,
    throttle: noThrottle,
    localToken: 'local-token-for-tests',
    config,
    logs,
    host: {
      executables: {
        engine: '/usr/lib/warden/wardend',
        console: '/usr/lib/warden/warden',
        assistant: '/usr/lib/warden/warden-assist',
      },
      environment: {},
      etcEnvironment: '',
    },
    now: Date.now,
    status: () => ({
      version: 'test',
      hostname: 'test-host',
      startedAt: new Date().toISOString(),
      fingerprint: identity.fingerprint,
      consoles: 0,
      kernel: 'none (test)',
    }),
    bindAddress: '127.0.0.1',
    port: 0,
    udpGraceMs: 500,
    ...overrides,
  });
  const clients: EngineClient[] = [];
  const connect = async (options: { fingerprint?: string } = {}) => {
    const expected = options.fingerprint ?? identity.fingerprint;
    const c = await EngineClient.connect({
      host: '127.0.0.1',
      port: server.port,
      verifyFingerprint: async (fp) => {
        if (fp !== expected)
          throw new WardenError(
            ErrorCode.FINGERPRINT_MISMATCH,
            `fingerprint ${fp} is not the pinned ${expected}`,
          );
      },
      timeoutMs: 5000,
    });
    clients.push(c);
    return c;
  };
  return {
    server,
    logs,
    config,
    fingerprint: identity.fingerprint,
    connect,
    login: async (user = 'alice') => {
      const c = await connect();
      await c.login({ user, password: USERS[user]!.password });
      return c;
    },
    close: async () => {
      for (const c of clients) c.close();
      await server.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** Waits until `cond` is true, polling every 10 ms, failing after `ms`. */
export async function until(cond: () => boolean, ms = 3000, what = 'condition'): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}
