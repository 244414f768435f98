/** Asking the person at the terminal: yes/no questions and passwords (not echoed). */
import { createInterface } from 'node:readline';
import { ErrorCode, WardenError } from '../errors.js';
import { neutralizeControls } from '../text.js';

/** True when a person can answer (stdin and stderr are terminals). */
export function canPrompt(): boolean {
  return Boolean(process.stdin.isTTY && process.stderr.isTTY);
}

/** Asks a question on stderr and returns the answer line. `secret` hides what is typed. */
export async function ask(question: string, options: { secret?: boolean } = {}): Promise<string> {
  if (!canPrompt()) throw new WardenError(ErrorCode.USAGE, `cannot ask "${question.trim()}": not a terminal`);
  const rl = createInterface({ input: process.stdin, output: process.stderr, terminal: true });
  if (options.secret) {
    // Write the question ourselves, then swallow the echo of every key typed.
    process.stderr.write(neutralizeControls(question));
    (rl as unknown as { _writeToOutput: (s: string) => void })._writeToOutput = () => {};
  }
  try {
    return await new Promise<string>((resolve) =>
      rl.question(options.secret ? '' : neutralizeControls(question), resolve),
    );
  } finally {
    if (options.secret) process.stderr.write('\n');
    rl.close();
  }
}
