/**
 * End-to-end, the built `warden` CLI (issue 13, start and help): a failed `warden connect` does not
 * remember the engine; errors name what, where, what is allowed and the next command in the user's
 * words (no raw zod text, no protocol method names); unknown fields and commands get "did you mean";
 * `warden completion bash` completes the command tree in a real bash (compgen, COMP_WORDS).
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { cliAgainstHarness, cliBin } from '../support/console-harness.js';

describe("warden: connecting, errors and help in the user's words", () => {
  const cli = cliAgainstHarness({ prefix: 'warden-start-' });
  const warden = (args: string[], env?: Record<string, string>) => cli.warden(args, env);
  const remembered = () => {
    const path = join(cli.home, 'warden/engines.json');
    return existsSync(path) ? Object.keys(JSON.parse(readFileSync(path, 'utf8')).engines) : [];
  };

  test('a failed connect remembers nothing; only a successful login records the engine', async () => {
    const address = `127.0.0.1:${cli.h.server.port}`;
    const unknown = await warden(['connect', address, '--user', 'alice', '--name', 'lab']);
    assert.equal(unknown.code, 1, 'an unaccepted fingerprint is refused');
    const wrong = await warden(
      ['connect', address, '--user', 'alice', '--name', 'lab', '--accept', cli.h.fingerprint],
      {
        WARDEN_PASSWORD: 'wrong password',
      },
    );
    assert.equal(wrong.code, 1, wrong.stderr);
    const closed = await warden(['connect', '127.0.0.1:1', '--user', 'alice', '--name', 'nowhere']);
    assert.equal(closed.code, 1, closed.stderr);
    assert.deepEqual(remembered(), [], 'no engine is remembered after three failed connects');
    const list = await warden(['engines', 'list']);
    assert.match(list.stdout, /No engines yet/);
    await cli.connectLab();
    assert.deepEqual(remembered(), ['lab']);
  });

  test('option errors say what, where, what is allowed and a corrected command; no raw library text', async () => {
    const since = await warden(['logs', '--engine', 'lab', '--since', 'yesterday']);
    assert.equal(since.code, 2);
    assert.match(since.stderr, /^error: --since "yesterday" is not a date and time \(ISO 8601/m);
    assert.match(since.stderr, /^hint: For example: warden logs --since \d{4}-\d\d-\d\dT\d\d:00:00Z$/m);
    // Any number of items may be asked for (the console pages past the answer cap); not a fraction.
    const limit = await warden(['logs', '--engine', 'lab', '--limit', '2.5']);
    assert.equal(limit.code, 2);
    assert.match(limit.stderr, /^error: --limit "2\.5" is not a whole number of at least 1$/m);
    assert.match(limit.stderr, /^hint: For example: warden logs --limit 100$/m);
    const kind = await warden(['logs', '--engine', 'lab', '--kind', 'conection']);
    assert.match(kind.stderr, /--kind "conection" is not one of .*; did you mean "connection"\?/);
    for (const r of [since, limit, kind])
      assert.doesNotMatch(r.stderr, /Invalid ISO|Too big|expected number/);
  });

  test('an invalid rule names the field, suggests the right one, and gives a hint', async () => {
    const r = await warden([
      'rules',
      'add',
      '{ name: web, direction: outgoing, protcol: tcp, remotePorts: 443, action: allow }',
      '--engine',
      'lab',
    ]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /unknown field "protcol"; did you mean "protocol"\?/);
    assert.match(r.stderr, /^hint: .*warden rules add/m);
  });

  test('hints name warden commands, not protocol methods', async () => {
    const add = await warden([
      'rules',
      'add',
      '{ name: dup, direction: outgoing, action: allow }',
      '--engine',
      'lab',
    ]);
    assert.equal(add.code, 0, add.stderr);
    const again = await warden([
      'rules',
      'add',
      '{ name: dup, direction: outgoing, action: deny }',
      '--engine',
      'lab',
    ]);
    assert.equal(again.code, 1);
    assert.match(again.stderr, /^hint: .*`warden rules update NAME RULE`/m);
    const missing = await warden(['rules', 'remove', 'nope', '--engine', 'lab']);
    assert.match(missing.stderr, /`warden rules list`/);
    for (const r of [again, missing]) assert.doesNotMatch(r.stderr, /\brules\.(update|list)\b/);
  });

  test('a misspelt setting gets a did-you-mean', async () => {
    const r = await warden(['settings', 'get', 'syslog.hots', '--engine', 'lab']);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /no setting "syslog\.hots"; did you mean "host"\?/);
  });

  test('an engine remembered without a pinned fingerprint (an older console) is explained', async () => {
    const path = join(cli.home, 'warden/engines.json');
    const file = JSON.parse(readFileSync(path, 'utf8'));
    file.engines.stale = { host: '192.0.2.77', port: 44334, user: 'alice' };
    writeFileSync(path, JSON.stringify(file));
    const r = await warden(['engines', 'list']);
    assert.match(
      r.stdout,
      /^stale: never connected; connect with `warden connect 192\.0\.2\.77:44334` or drop it with `warden engines forget stale`$/m,
    );
    assert.doesNotMatch(r.stdout, /^lab: never connected/m);
    assert.equal((await warden(['engines', 'forget', 'stale'])).code, 0);
  });

  test('an unknown command or option gets a did-you-mean hint', async () => {
    const r = await warden(['polcy', 'check', 'x.yaml']);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /^error: unknown command 'polcy'\nhint: did you mean policy\?/m);
    const o = await warden(['logs', '--limt', '3']);
    assert.equal(o.code, 2);
    assert.match(o.stderr, /^error: unknown option '--limt'\nhint: did you mean --limit\?/m);
  });

  test('warden completion bash completes commands, subcommands and options in bash', () => {
    const script = join(cli.home, 'warden.bash');
    writeFileSync(
      script,
      execFileSync(process.execPath, [cliBin, 'completion', 'bash'], { encoding: 'utf8' }),
    );
    const complete = (...words: string[]) =>
      execFileSync(
        'bash',
        [
          '-c',
          `source ${script}; COMP_WORDS=("$@"); COMP_CWORD=$((\${#COMP_WORDS[@]} - 1)); _warden; printf '%s\\n' "\${COMPREPLY[@]}"`,
          'bash',
          ...words,
        ],
        { encoding: 'utf8' },
      )
        .split('\n')
        .filter(Boolean);
    assert.deepEqual(complete('warden', 'pol'), ['policy']);
    assert.ok(complete('warden', '').includes('completion'));
    assert.deepEqual(complete('warden', 'rules', 'a'), ['add']);
    assert.deepEqual(complete('warden', 'policy', 'ex'), ['explain', 'export']);
    assert.deepEqual(complete('warden', 'logs', '--li'), ['--limit']);
    assert.deepEqual(complete('warden', 'logs', '--engine', 'office', '--fol'), ['--follow']);
    assert.ok(complete('warden', 'rules', 'add', '--').includes('--position'));
    const zsh = execFileSync(process.execPath, [cliBin, 'completion', 'zsh'], { encoding: 'utf8' });
    assert.match(zsh, /^#compdef warden\n/);
    const fish = execFileSync(process.execPath, [cliBin, 'completion', 'fish'], { encoding: 'utf8' });
    assert.match(fish, /complete -c warden .*-a 'policy'/);
  });

  test('completion for an unknown shell is a usage error naming the shells', async () => {
    const r = await warden(['completion', 'tcsh']);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /no completion for the shell "tcsh"/);
    assert.match(r.stderr, /bash, zsh or fish/);
  });
});
