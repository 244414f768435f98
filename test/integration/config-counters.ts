/** What the crash-safety writers leave in a configuration: the newest change of each kind, as a counter. */
import type { Policy } from '../../src/policy/index.js';
import type { Settings } from '../../src/settings/index.js';

/** policy: k of the rule `p<k>` (0 when none); settings: syslog.port (514, the default, before any change). */
export function configCounters(policy: Policy, settings: Settings): { policy: number; settings: number } {
  const ks = policy.rules.map((r) => /^p(\d+)$/.exec(r.name)?.[1]).filter((k) => k !== undefined);
  return { policy: Math.max(0, ...ks.map(Number)), settings: settings.syslog.port };
}
