/**
 * Man pages generated from the commands' own help (`npm run man`): the page for a program is its
 * description and, for every command of its tree, the exact `--help` text the command prints
 * (options, arguments and examples), so the man page and `--help` never disagree.
 */
import type { Command } from 'commander';

/** The full --help text of a command (what addHelpText adds included), wrapped at `width` columns. */
export function helpOf(c: Command, width = 72): string {
  let text = '';
  const saved = c.configureOutput();
  c.configureOutput({
    writeOut: (s) => {
      text += s;
    },
    writeErr: (s) => {
      text += s;
    },
    getOutHelpWidth: () => width,
    getErrHelpWidth: () => width,
  });
  try {
    c.outputHelp();
  } finally {
    c.configureOutput(saved);
  }
  return text;
}

/** Text made safe for roff: backslashes escaped, no line taken for a request. */
export function roffText(text: string): string {
  return text
    .replace(/\\/g, '\\e')
    .split('\n')
    .map((l) => (/^[.']/.test(l) ? `\\&${l}` : l))
    .join('\n');
}

export interface ManPage {
  readonly name: string;
  readonly section: 1 | 8;
  readonly version: string;
  /** Paragraphs for DESCRIPTION beside the program's own description. */
  readonly description: readonly string[];
  /** Files the program reads or writes, with what they are. */
  readonly files: readonly [string, string][];
  readonly seeAlso: readonly string[];
}

/** A man page in roff for a program and its whole command tree. */
export function manPage(program: Command, page: ManPage): string {
  const out: string[] = [
    `.TH ${page.name.toUpperCase()} ${page.section} "" "Warden ${page.version}" "Warden manual"`,
    '.SH NAME',
    `${page.name} \\- ${roffText(program.description())}`,
    '.SH SYNOPSIS',
    `.B ${page.name}`,
    '[\\fIoptions\\fR] \\fIcommand\\fR [\\fIarguments\\fR]',
    '.SH DESCRIPTION',
    ...page.description.flatMap((p) => ['.PP', roffText(p)]),
    '.PP',
    'Every command below is shown with its own \\fB--help\\fR text.',
    '.SH COMMANDS',
  ];
  const walk = (c: Command, path: string) => {
    out.push(`.SS "${path}"`, '.nf', roffText(helpOf(c).trimEnd()), '.fi');
    for (const sub of c.commands) walk(sub, `${path} ${sub.name()}`);
  };
  walk(program, page.name);
  if (page.files.length > 0) {
    out.push('.SH FILES');
    for (const [path, what] of page.files) out.push('.TP', `.I ${path}`, roffText(what));
  }
  out.push('.SH SEE ALSO', page.seeAlso.map((s) => roffText(s)).join(', '));
  return `${out.join('\n')}\n`;
}
