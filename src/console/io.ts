/** What a console command may do besides computing: write to stdout and stderr. bin.ts supplies the real streams. */
export interface CommandIo {
  /** Writes human or JSON output (a newline is added). */
  out(text: string): void;
  /** Writes diagnostics (a newline is added). */
  err(text: string): void;
}

/** 0: success (valid, allowed, no findings); 1: the answer is "no" (invalid, blocked, findings). Usage errors throw. */
export type CommandStatus = 0 | 1;

/**
 * A reader that went away (`warden logs | head -1`) ends the command quietly with status 0, as `cat`
 * ends on SIGPIPE: an EPIPE on stdout or stderr is no failure and gets no stack trace. Any other
 * write error is reported once on stderr (when it can still be written) and ends with status 1.
 */
export function quietOnClosedPipe(streams: readonly NodeJS.WriteStream[]): void {
  for (const stream of streams) {
    stream.on('error', (e: NodeJS.ErrnoException) => {
      if (e.code === 'EPIPE') process.exit(0);
      try {
        if (stream !== process.stderr) process.stderr.write(`error: cannot write output: ${e.message}\n`);
      } finally {
        process.exit(1);
      }
    });
  }
}
