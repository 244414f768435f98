import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { validateSettings } from '../settings/index.js';
import { parseTableListing, queueStateOf } from './nft-listing.js';
import { queueRules } from './ruleset.js';

const open = queueRules(validateSettings({ enforcement: { queue: 4334, onEngineFailure: 'open' } }));
const closed = queueRules(validateSettings({ enforcement: { queue: 4334, onEngineFailure: 'closed' } }));

/** What nft 1.0.6 printed for the table iptables-nft-restore made from `open`'s text. */
const SECURITY = [
  '# Warning: table ip security is managed by iptables-nft, do not touch!',
  'table ip security {',
  '\tchain WARDEN-QUEUE {',
  '\t\tmeta mark & 0x0f000000 == 0x01000000 counter packets 12 bytes 720 queue num 4334 bypass',
  '\t}',
  '',
  '\tchain OUTPUT {',
  '\t\ttype filter hook output priority 150; policy accept;',
  '\t\tcounter packets 0 bytes 0 jump WARDEN-QUEUE',
  '\t}',
  '',
  '\tchain INPUT {',
  '\t\ttype filter hook input priority 150; policy accept;',
  '\t\tcounter packets 3 bytes 180 jump WARDEN-QUEUE',
  '\t}',
  '}',
].join('\n');

const WARDEN = [
  'table inet warden {',
  '\tcounter c_1a2b {',
  '\t\tpackets 0 bytes 0',
  '\t}',
  '\tset out_193fc08f796e {',
  '\t\ttype ipv4_addr . inet_service',
  '\t\tcounter',
  '\t}',
  '\tset rate_out {',
  '\t\ttype uid',
  '\t\tsize 65536',
  '\t\tflags dynamic,timeout',
  '\t\ttimeout 1m',
  '\t}',
  '\tchain output {',
  '\t\ttype filter hook output priority filter - 5; policy accept;',
  '\t\tct state established,related accept',
  '\t\ticmpv6 type { nd-router-solicit, nd-router-advert, nd-neighbor-solicit, nd-neighbor-advert } ip6 hoplimit 255 accept',
  '\t\tgoto queue_output',
  '\t}',
  '\tchain queue_output {',
  '\t\tmeta mark set meta mark & 0xf0ffffff | 0x01000000 accept',
  '\t}',
  '}',
].join('\n');

describe('parseTableListing', () => {
  test('names every object of a table, and each chain its hook and rules', () => {
    const t = parseTableListing(WARDEN)!;
    assert.equal(t.exists, true);
    assert.deepEqual([...t.chains.keys()], ['output', 'queue_output']);
    assert.deepEqual(t.sets, ['out_193fc08f796e', 'rate_out']);
    assert.deepEqual(t.counters, ['c_1a2b']);
    assert.deepEqual(t.maps, []);
    assert.equal(t.chains.get('output')!.hook, 'type filter hook output priority filter - 5; policy accept;');
    assert.equal(t.chains.get('output')!.rules.length, 3);
    assert.equal(t.chains.get('queue_output')!.hook, null);
  });

  test("nft's answer for a table that is not there is a table that does not exist", () => {
    const t = parseTableListing(
      'Error: No such file or directory\nlist table ip security\n                 ^^^^^^^^',
    )!;
    assert.equal(t.exists, false);
    assert.equal(t.chains.size, 0);
  });

  test('anything else is not recognised: null, never a guess', () => {
    for (const text of [
      '',
      'Error: Operation not permitted',
      'table ip security {\n\tchain OUTPUT {\n', // cut short
      'table ip security {\n\tsomething new {\n\t}\n}',
      'table ip security {\n\tchain OUTPUT {\n\trule at the wrong depth\n\t}\n}',
    ])
      assert.equal(parseTableListing(text), null, JSON.stringify(text));
  });

  test('a rule continued on a deeper line is one rule', () => {
    const t = parseTableListing(
      'table ip x {\n\tchain c {\n\t\tip daddr {\n\t\t\t10.0.0.1 } accept\n\t}\n}',
    )!;
    assert.deepEqual(t.chains.get('c')!.rules, ['ip daddr { 10.0.0.1 } accept']);
  });

  test('never throws, whatever the text', () => {
    fc.assert(
      fc.property(
        fc.array(fc.constantFrom(...SECURITY.split('\n'), '\t}', '}', '\t\t\tx', 'Error: x')),
        (lines) => {
          parseTableListing(lines.join('\n'));
        },
      ),
    );
  });
});

describe('queueStateOf', () => {
  test('the chain and both jumps as the queue rules say: nothing to do', () => {
    assert.deepEqual(queueStateOf(parseTableListing(SECURITY), open), { chainOk: true, missingJumps: [] });
  });

  test('another queue number or bypass setting is not the same chain', () => {
    assert.equal(queueStateOf(parseTableListing(SECURITY), closed)!.chainOk, false);
    const other = queueRules(validateSettings({ enforcement: { queue: 4335, onEngineFailure: 'open' } }));
    assert.equal(queueStateOf(parseTableListing(SECURITY), other)!.chainOk, false);
  });

  test('a second rule in the chain, or none, is not the chain', () => {
    const two = SECURITY.replace(
      'queue num 4334 bypass\n',
      'queue num 4334 bypass\n\t\tcounter packets 0 bytes 0 accept\n',
    );
    assert.equal(queueStateOf(parseTableListing(two), open)!.chainOk, false);
    const none = SECURITY.replace(/\t\tmeta mark.*\n/, '');
    assert.equal(queueStateOf(parseTableListing(none), open)!.chainOk, false);
  });

  test('no table: the chain and every jump are missing', () => {
    const state = queueStateOf(parseTableListing('Error: No such file or directory'), open);
    assert.deepEqual(state, { chainOk: false, missingJumps: ['OUTPUT', 'INPUT'] });
  });

  test('a hook chain without the jump, or not there at all, misses it', () => {
    const noInput = SECURITY.replace(/\n\tchain INPUT \{[^}]*\}/, '');
    assert.deepEqual(queueStateOf(parseTableListing(noInput), open)!.missingJumps, ['INPUT']);
    const emptyOutput = SECURITY.replace('\t\tcounter packets 0 bytes 0 jump WARDEN-QUEUE\n', '');
    assert.deepEqual(queueStateOf(parseTableListing(emptyOutput), open)!.missingJumps, ['OUTPUT']);
  });

  test('a jump this reading does not cover (more matches, another hook) asks the tools', () => {
    const matched = SECURITY.replace(
      'counter packets 0 bytes 0 jump',
      'tcp dport 80 counter packets 0 bytes 0 jump',
    );
    assert.equal(queueStateOf(parseTableListing(matched), open), null);
    const wrongHook = SECURITY.replace('hook input priority 150', 'hook forward priority 150');
    assert.equal(queueStateOf(parseTableListing(wrongHook), open), null);
    assert.equal(queueStateOf(null, open), null);
  });

  test('the queue rule text and its nft form say the same (queue number, bypass)', () => {
    assert.equal(open.nftRule, 'meta mark & 0x0f000000 == 0x01000000 queue num 4334 bypass');
    assert.equal(closed.nftRule, 'meta mark & 0x0f000000 == 0x01000000 queue num 4334');
    assert.ok(open.ruleArgs.includes('--queue-bypass') && !closed.ruleArgs.includes('--queue-bypass'));
  });
});
