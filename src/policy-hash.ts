/**
 * A policy's identity across engines (issue 14, the fleet): SHA-256 of its canonical text (the policy
 * core's serializePolicy), so the same rules written with other spacing, comments or key order hash
 * the same. engine.status reports it; `warden fleet apply` skips an engine already at the hash.
 */
import { createHash } from 'node:crypto';

/** `sha256:` and 64 hex digits, of the canonical text serializePolicy gives. */
export function policyHashOfCanonical(canonicalText: string): string {
  return `sha256:${createHash('sha256').update(canonicalText).digest('hex')}`;
}
