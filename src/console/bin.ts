#!/usr/bin/env node
/**
 * `warden`, the Administration Console's command line. The only file that
 * sets the exit status: 0 success, 1 failure or a "no" answer, 2 usage error.
 */
import { CommanderError } from 'commander';
import { ErrorCode, formatProblem, WardenError } from '../errors.js';
import { neutralizeControls } from '../text.js';
import { inCommandWords } from './commands/options.js';
import { type CommandIo, type CommandStatus, quietOnClosedPipe } from './io.js';
import { buildProgram } from './program.js';

// Every line printed passes neutralizeControls: what the engine, a policy or a local program wrote
// into a log item, prompt, rule or error cannot drive the terminal.
const io: CommandIo = {
  out: (text) => process.stdout.write(`${neutralizeControls(text)}\n`),
  err: (text) => process.stderr.write(`${neutralizeControls(text)}\n`),
};

quietOnClosedPipe([process.stdout, process.stderr]);

const jsonOutput = process.argv.includes('--json');

function report(error: unknown): number {
  if (error instanceof WardenError) {
    // Whatever the engine or a library wrote, the user reads commands, not protocol methods.
    const suggestion = error.suggestion === undefined ? undefined : inCommandWords(error.suggestion);
    error = new WardenError(error.code, inCommandWords(error.message), {
      problems: error.problems.map((p) => ({ ...p, message: inCommandWords(p.message) })),
      ...(suggestion === undefined ? {} : { suggestion }),
    });
  }
  if (error instanceof WardenError && jsonOutput) {
    const { code, message, problems, suggestion } = error;
    io.err(JSON.stringify({ error: { code, message, problems, ...(suggestion ? { suggestion } : {}) } }));
    return code === ErrorCode.USAGE ? 2 : 1;
  }
  if (error instanceof WardenError) {
    io.err(`error: ${error.message}`);
    const lines = error.problems.map(formatProblem);
    if (!(lines.length === 1 && error.message.includes(lines[0]!)))
      for (const line of lines) io.err(`  ${line}`);
    if (error.suggestion) io.err(`hint: ${error.suggestion}`);
    return error.code === ErrorCode.USAGE ? 2 : 1;
  }
  io.err(
    `error: unexpected failure: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`,
  );
  return 1;
}

let pending: Promise<CommandStatus> | undefined;
const run = (status: Promise<CommandStatus>) => {
  pending = status;
};

const program = buildProgram(run, io);

async function main(): Promise<number> {
  try {
    await program.parseAsync(process.argv);
  } catch (error) {
    if (error instanceof CommanderError) {
      // Help and version asked for exit 0; help shown because a command was incomplete is a usage error.
      return error.exitCode === 0 ? 0 : 2;
    }
    return report(error);
  }
  if (pending === undefined) return 0;
  try {
    return await pending;
  } catch (error) {
    return report(error);
  }
}

process.exitCode = await main();
