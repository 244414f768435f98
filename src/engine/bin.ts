#!/usr/bin/env node
/**
 * `wardend`, the engine (its commands are in cli.ts). The only file here that sets the exit
 * status: 0 success, 1 failure, 2 usage error.
 */
import { CommanderError } from 'commander';
import { ErrorCode, formatProblem, WardenError } from '../errors.js';
import { buildWardendProgram } from './cli.js';

let pending: Promise<number> | undefined;
const program = buildWardendProgram((p) => {
  pending = p;
});

function report(error: unknown): number {
  if (error instanceof WardenError) {
    process.stderr.write(`wardend: ${error.message}\n`);
    for (const p of error.problems) process.stderr.write(`  ${formatProblem(p)}\n`);
    if (error.suggestion) process.stderr.write(`hint: ${error.suggestion}\n`);
    return error.code === ErrorCode.USAGE ? 2 : 1;
  }
  const e = error as NodeJS.ErrnoException;
  if (e?.code === 'EADDRINUSE') {
    process.stderr.write(`wardend: the application port is taken by another program (${e.message})\n`);
    return 1;
  }
  process.stderr.write(`wardend: unexpected failure: ${e?.stack ?? String(error)}\n`);
  return 1;
}

async function main(): Promise<number> {
  const argv = process.argv.length <= 2 ? [...process.argv, 'run'] : process.argv;
  try {
    await program.parseAsync(argv);
  } catch (error) {
    if (error instanceof CommanderError) return error.exitCode === 0 ? 0 : 2;
    return report(error);
  }
  try {
    return (await pending) ?? 0;
  } catch (error) {
    return report(error);
  }
}

process.exitCode = await main();
