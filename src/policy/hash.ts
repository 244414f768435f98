/**
 * A policy's identity across engines (issue 14, the fleet): SHA-256 of its canonical text
 * (serializePolicy), so the same rules written with other spacing, comments or key order hash the
 * same. engine.status reports it; `warden fleet apply` skips an engine already at the hash.
 */
import { createHash } from 'node:crypto';
import type { Policy } from './rule.js';
import { serializePolicy } from './serialize.js';

/** `sha256:` and 64 hex digits. */
export function policyHash(policy: Policy): string {
  return `sha256:${createHash('sha256').update(serializePolicy(policy)).digest('hex')}`;
}
