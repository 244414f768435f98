/** What a console command may do besides computing: write to stdout and stderr. bin.ts supplies the real streams. */
export interface CommandIo {
  /** Writes human or JSON output (a newline is added). */
  out(text: string): void;
  /** Writes diagnostics (a newline is added). */
  err(text: string): void;
}

/** 0: success (valid, allowed, no findings); 1: the answer is "no" (invalid, blocked, findings). Usage errors throw. */
export type CommandStatus = 0 | 1;
