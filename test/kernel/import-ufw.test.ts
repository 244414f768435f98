/**
 * An imported ufw policy in a real kernel: ufw tuples are imported, compiled
 * to Warden's ruleset and applied in a throwaway server namespace; real
 * connections from the client namespace are allowed, dropped and refused as
 * ufw would, and the interface-only rule that was not imported stays blocked.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { applyRuleset, removeRuleset } from '../../src/kernel/nft.js';
import { compileRuleset } from '../../src/kernel/ruleset.js';
import { importPolicy } from '../../src/policy/import/index.js';
import { compilePolicy } from '../../src/policy/index.js';
import { NOW } from '../../src/policy/testing/arbitraries.js';
import { validateSettings } from '../../src/settings/index.js';
import {
  createNetnsPair,
  kernelTestsUnavailable,
  listenOn,
  type NetnsPair,
  SERVER_ADDR,
  tcpConnect,
} from './netns.js';

const skip = kernelTestsUnavailable();
const PORTS = [8101, 8102, 8103, 8104, 8105];

const USER_RULES = `### RULES ###

### tuple ### allow tcp 8101 0.0.0.0/0 any 0.0.0.0/0 in
### tuple ### allow tcp 8102 0.0.0.0/0 any 192.168.1.0/24 in
### tuple ### reject tcp 8103 0.0.0.0/0 any 10.200.0.0/24 in
### tuple ### allow tcp 8105 0.0.0.0/0 any 0.0.0.0/0 in_eth9

### END RULES ###
`;

describe('an imported ufw policy in the kernel', { skip }, () => {
  let pair: NetnsPair;
  before(async () => {
    pair = createNetnsPair('iu');
    await listenOn(pair, pair.server, PORTS);
  });
  after(() => pair?.close());

  test('allowed port connects, other sources and unlisted ports are dropped, reject refuses', async () => {
    const imported = importPolicy('ufw', [
      { name: 'user.rules', text: USER_RULES },
      { name: 'ufw', text: 'DEFAULT_INPUT_POLICY="DROP"\nDEFAULT_OUTPUT_POLICY="ACCEPT"\n' },
    ]);
    assert.equal(imported.problems.length, 1, 'the interface rule is reported');
    // ufw's defaults are logged blocks, which the kernel hands to the engine's queue; no engine runs
    // here, so fail closed: a queued connection is dropped, as the engine's verdict would drop it.
    const settings = validateSettings({ enforcement: { onEngineFailure: 'closed' } });
    const compiled = compileRuleset({
      policy: compilePolicy(imported.policy, { settings }),
      settings,
      now: NOW,
    });
    const target = { netns: pair.path(pair.server) };
    try {
      await applyRuleset(compiled, target);
      const at = (port: number) => tcpConnect(pair, pair.client, SERVER_ADDR, port, 500);
      assert.equal(at(8101), 'connected');
      assert.equal(at(8102), 'timeout');
      assert.equal(at(8103), 'ECONNREFUSED');
      assert.equal(at(8104), 'timeout');
      assert.equal(at(8105), 'timeout');
    } finally {
      await removeRuleset(target);
    }
  });
});
