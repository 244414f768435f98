/**
 * Every `--help` page has examples (README: "`--help` on any command explains it with examples"):
 * walks the command trees of `warden` and `wardend` and asserts each command's help has one
 * "Examples:" section with at least one line that starts with the command's own name.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { Command } from 'commander';
import { buildProgram } from '../../src/console/program.js';
import { buildWardendProgram } from '../../src/engine/cli.js';

/** Every command of a tree with its full name, e.g. "warden rules add". */
function commands(root: Command): { name: string; command: Command }[] {
  const out: { name: string; command: Command }[] = [];
  const walk = (c: Command, name: string) => {
    out.push({ name, command: c });
    for (const sub of c.commands) walk(sub, `${name} ${sub.name()}`);
  };
  walk(root, root.name());
  return out;
}

/** The whole --help text of a command, including what addHelpText adds after it. */
function helpText(c: Command): string {
  let text = '';
  c.configureOutput({ writeOut: (s) => (text += s), writeErr: (s) => (text += s) });
  c.exitOverride();
  try {
    c.outputHelp();
  } catch {
    // outputHelp does not throw; exitOverride only keeps commander from exiting
  }
  return text;
}

const io = { out: () => {}, err: () => {} };
const trees = [buildProgram(() => {}, io), buildWardendProgram(() => {})];

test('every command of warden and wardend has an Examples: section in its --help', () => {
  const missing: string[] = [];
  const twice: string[] = [];
  for (const tree of trees) {
    for (const { name, command } of commands(tree)) {
      const help = helpText(command);
      const sections = help.split(/\nExamples:\n/);
      if (sections.length > 2) twice.push(name);
      const section = sections[1];
      const first = name.split(' ')[0]!;
      if (
        section === undefined ||
        !section.split('\n').some((l) =>
          l
            .trim()
            .replace(/^(sudo |[A-Za-z_]+=\S* )+/, '')
            .startsWith(first),
        )
      )
        missing.push(name);
    }
  }
  assert.deepEqual(missing, [], 'these commands have no examples in --help');
  assert.deepEqual(twice, [], 'these commands have two Examples: sections (their own and help-examples.ts)');
});
