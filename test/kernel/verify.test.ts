/**
 * verifyRuleset's two ways of reading the table agree: in the process's own namespace it names what
 * the table holds and counts set elements by netlink dumps (readTableNames, countSetElements);
 * elsewhere `nft -j list table` lists everything. A child process in a throwaway namespace applies a ruleset with points,
 * networks and concatenated intervals (a hash set, an interval set, an IPv6 concatenation of ranges),
 * reads it both ways, removes one element of every static set by hand and reads it both ways again.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { nativeAvailable } from '../../src/kernel/native.js';
import { createNetnsPair, kernelTestsUnavailable, type NetnsPair } from './netns.js';

const skip = kernelTestsUnavailable() ?? (nativeAvailable() ? undefined : 'the native addon is not built');
const module = (path: string) => fileURLToPath(new URL(path, import.meta.url));

const POLICY = {
  rules: [
    {
      name: 'host',
      direction: 'outgoing',
      protocol: 'tcp',
      remote: '10.1.0.1',
      remotePorts: 443,
      action: 'deny',
    },
    {
      name: 'host2',
      direction: 'outgoing',
      protocol: 'tcp',
      remote: '10.1.0.2',
      remotePorts: 443,
      action: 'deny',
    },
    { name: 'net', direction: 'outgoing', protocol: 'tcp', remote: '10.2.0.0/16', action: 'deny' },
    {
      name: 'nets',
      direction: 'outgoing',
      protocol: 'any',
      remote: ['10.3.0.0/24', '10.4.0.0/24'],
      action: 'reject',
    },
    {
      name: 'range',
      direction: 'outgoing',
      protocol: 'udp',
      remote: '10.5.0.0/16',
      remotePorts: '1000-2000',
      action: 'deny',
    },
    {
      name: 'v6',
      direction: 'outgoing',
      protocol: 'tcp',
      remote: ['fd00:1::/64', 'fd00:2::1'],
      remotePorts: [22, '8000-8100'],
      action: 'deny',
    },
    { name: 'in', direction: 'incoming', protocol: 'tcp', localPorts: ['22', '2000-2100'], action: 'allow' },
  ],
};

/** Runs in the client namespace: apply, verify both ways, take one element out of each static set, verify again. */
const CHILD = `
const { applyRuleset, verifyRuleset, removeRuleset } = await import(${JSON.stringify(module('../../src/kernel/nft.js'))});
const { compileRuleset } = await import(${JSON.stringify(module('../../src/kernel/ruleset.js'))});
const { compilePolicy, validatePolicy } = await import(${JSON.stringify(module('../../src/policy/index.js'))});
const { validateSettings } = await import(${JSON.stringify(module('../../src/settings/index.js'))});
const { readTableNames } = await import(${JSON.stringify(module('../../src/kernel/nft-dumps.js'))});
const { parseTableListing } = await import(${JSON.stringify(module('../../src/kernel/nft-listing.js'))});
const { execFileSync } = await import('node:child_process');
const settings = validateSettings({});
const compiled = compileRuleset({ policy: compilePolicy(validatePolicy(${JSON.stringify(POLICY)}), { settings }), settings, now: Date.now() });
const byNft = { netns: '/proc/self/ns/net' }; // the same namespace, through nsenter: nft lists the table
const out = { sets: compiled.model.sets.filter((s) => s.elements.length > 0).map((s) => s.name) };
try {
  await applyRuleset(compiled);
  out.here = await verifyRuleset(compiled);
  out.nft = await verifyRuleset(compiled, byNft);
  const listed = parseTableListing(execFileSync('nft', ['-t', 'list', 'table', 'inet', 'warden'], { encoding: 'utf8' }));
  out.names = await readTableNames('warden');
  out.listedNames = { exists: listed.exists, chains: [...listed.chains.keys()], sets: listed.sets, maps: listed.maps, counters: listed.counters };
  for (const s of compiled.model.sets)
    if (s.elements.length > 0)
      execFileSync('nft', ['delete element inet warden ' + s.name + ' { ' + s.elements[0] + ' }']);
  out.hereAfter = await verifyRuleset(compiled);
  out.nftAfter = await verifyRuleset(compiled, byNft);
  execFileSync('nft', ['delete table inet warden']);
  out.hereGone = await verifyRuleset(compiled);
  out.namesGone = await readTableNames('warden');
} finally {
  await removeRuleset();
}
console.log(JSON.stringify(out));
`;

describe('verifyRuleset reads the table alike both ways', { skip }, () => {
  let pair: NetnsPair;
  before(() => {
    pair = createNetnsPair('verify');
  });
  after(() => pair?.close());

  test('a table as loaded, a table missing elements, and no table', () => {
    const out = JSON.parse(
      pair.run(pair.client, process.execPath, ['--input-type=module', '-e', CHILD]).trim().split('\n').pop()!,
    );
    assert.ok(out.sets.length >= 3, `static sets with elements: ${out.sets.join(', ')}`);
    assert.deepEqual(out.here, { ok: true, problems: [] });
    assert.deepEqual(out.nft, { ok: true, problems: [] });
    assert.equal(out.hereAfter.ok, false);
    assert.equal(out.hereAfter.problems.length, out.sets.length, out.hereAfter.problems.join('; '));
    assert.deepEqual(out.hereAfter, out.nftAfter);
    assert.deepEqual(out.hereGone.problems[0], 'table inet warden is missing');
    // The names by netlink dumps are those nft lists (in the kernel's order; the policy's counters too).
    const sorted = (n: Record<string, unknown>) =>
      Object.fromEntries(Object.entries(n).map(([k, v]) => [k, Array.isArray(v) ? [...v].sort() : v]));
    assert.ok(out.names.counters.length > 0 && out.names.sets.length > out.sets.length);
    assert.deepEqual(sorted(out.names), sorted(out.listedNames));
    assert.deepEqual(out.namesGone, { exists: false, chains: [], sets: [], maps: [], counters: [] });
  });
});
