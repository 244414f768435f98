/**
 * Types the layers below the protocol declare again because they may not import it
 * (boundaries.test.ts): each must stay the same type as the protocol's, which is what goes on the
 * wire. A difference is a compile error here (the build, and so `npm test`, fails), not a field
 * that one side adds and the other never documents.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { AttributionLookups as KernelAttributionLookups } from '../../src/kernel/connect-slots.js';
import type { AttributionLookups } from '../../src/protocol/methods.js';

/** True only when A and B are the same type (not merely assignable one way). */
type Same<A, B> = (<T>() => T extends A ? 1 : 2) extends <T>() => T extends B ? 1 : 2 ? true : false;

test("engine.status attributionLookups: the kernel layer's type is the protocol's", () => {
  const same: Same<KernelAttributionLookups, AttributionLookups> = true;
  assert.equal(same, true);
});
