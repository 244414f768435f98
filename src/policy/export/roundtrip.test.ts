/**
 * The proof that export and import keep decisions: for random policies,
 * export to a tool, import the result back, and compare decide() of the
 * expressible subset with decide() of the round trip on random connections.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { formatProblem } from '../../errors.js';
import { compilePolicy } from '../compile.js';
import { decide } from '../evaluate.js';
import { importPolicy, type Tool } from '../import/index.js';
import type { ConnectionFacts, Policy } from '../rule.js';
import { facts, NOW, policy } from '../testing/arbitraries.js';
import type { ExportResult } from './common.js';
import { exportFirewalld, exportOpenSnitch, exportUfw } from './index.js';

/** The policy without the rules the export reported (a skipped half of a `both` rule stays: its other half was exported). */
function expressible(p: Policy, skipped: ExportResult['skipped']): Policy {
  const gone = new Set(
    skipped
      .filter((s) => s.path[0] === 'rules' && !/not exported: its (incoming|outgoing) half/.test(s.message))
      .map((s) => s.path[1]),
  );
  return { ...p, mode: 'enforce', rules: p.rules.filter((_, i) => !gone.has(i)) };
}

/** Loopback is accepted first by ufw and firewalld imports; connections without an address do not exist on the wire. */
function inScope(f: ConnectionFacts, direction?: 'incoming' | 'outgoing'): boolean {
  if (direction !== undefined && f.direction !== direction) return false;
  const a = f.remoteAddress;
  if (a === null) return false;
  return !(a.version === 4 ? a.value >>> 24 === 127 : a.value === 1n);
}

function roundTrip(tool: Tool, p: Policy): { original: Policy; back: Policy } | null {
  let skipped: ExportResult['skipped'];
  let files: { name: string; text: string }[];
  if (tool === 'opensnitch') {
    const r = exportOpenSnitch(p, new Date(NOW).toISOString());
    skipped = r.skipped;
    files = r.files;
  } else if (tool === 'ufw') {
    const r = exportUfw(p);
    skipped = r.skipped;
    files = r.files.filter((f) => f.name !== 'ufw-commands.sh');
  } else {
    const r = exportFirewalld(p, 'warden');
    skipped = r.skipped;
    files = r.files.filter((f) => f.name.endsWith('.xml'));
  }
  // Nothing exported (every rule out of the tool's reach, default ask): nothing to compare.
  if (files.length === 0) return null;
  const imported = importPolicy(tool, files);
  assert.deepEqual(imported.problems.map(formatProblem), [], 'what Warden exported imports without problems');
  return { original: expressible(p, skipped), back: imported.policy };
}

/**
 * The rule fields of issue 14 that ufw and firewalld cannot express (the program, its context and hash, interfaces,
 * lists): their refusal is tested in each exporter's tests; drawn here they left too few rules to compare.
 */
function withinFirewallReach(p: Policy): Policy {
  return {
    ...p,
    rules: p.rules.map(({ sha256, parent, ancestor, arguments: _args, interface: _iface, ...r }) => {
      const remote = r.remote?.filter((a) => a.kind !== 'list');
      const { remote: _remote, ...rest } = r;
      return remote === undefined || remote.length === 0 ? rest : { ...rest, remote };
    }),
  };
}

const noAskDefaults = policy.map(withinFirewallReach).map((p) => ({
  ...p,
  defaults: {
    incoming: {
      action: p.defaults.incoming.action === 'ask' ? 'deny' : p.defaults.incoming.action,
      log: true,
    },
    outgoing: {
      action: p.defaults.outgoing.action === 'ask' ? 'allow' : p.defaults.outgoing.action,
      log: true,
    },
  },
})) as fc.Arbitrary<Policy>;

function sameDecisions(tool: Tool, arb: fc.Arbitrary<Policy>, direction?: 'incoming' | 'outgoing') {
  let compared = 0;
  let byRule = 0;
  fc.assert(
    fc.property(arb, fc.array(facts, { minLength: 10, maxLength: 30 }), (p, fs) => {
      const trip = roundTrip(tool, p);
      if (trip === null) return;
      const { original, back } = trip;
      const a = compilePolicy(original);
      const b = compilePolicy(back);
      for (const f of fs) {
        if (!inScope(f, direction)) continue;
        const da = decide(a, f);
        compared++;
        if (da.source === 'user') byRule++;
        assert.equal(
          decide(b, f).action,
          da.action,
          `${JSON.stringify(f, (_k, v) => (typeof v === 'bigint' ? String(v) : v))}`,
        );
      }
    }),
    { numRuns: 150 },
  );
  assert.ok(
    compared > 500 && byRule > compared * 0.1,
    `${compared} connections compared, ${byRule} decided by a rule`,
  );
}

describe('export then import keeps every decision of the expressible rules (property)', () => {
  test('OpenSnitch (outgoing connections)', () => sameDecisions('opensnitch', policy, 'outgoing'));
  test('ufw (both directions)', () => sameDecisions('ufw', noAskDefaults));
  test('firewalld (incoming connections)', () => sameDecisions('firewalld', noAskDefaults, 'incoming'));
});
