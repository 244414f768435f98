/**
 * A policy's identity across engines (issue 14, the fleet): SHA-256 of its canonical text (the policy
 * core's serializePolicy), so the same rules written with other spacing, comments or key order hash
 * the same. engine.status reports it; `warden fleet apply` skips an engine already at the hash.
 */
import { createHash } from 'node:crypto';
import type { Policy } from './policy/rule.js';
import { serializePolicy } from './policy/serialize.js';

/** Hashes computed so far, once per policy object (policies are never changed in place). */
const hashes = new WeakMap<Policy, string>();

/** `sha256:` and 64 hex digits, of the policy's canonical text. */
export function policyHash(policy: Policy): string {
  let hash = hashes.get(policy);
  if (hash === undefined) {
    hash = `sha256:${createHash('sha256').update(serializePolicy(policy)).digest('hex')}`;
    hashes.set(policy, hash);
  }
  return hash;
}
