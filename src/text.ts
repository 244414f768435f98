/**
 * The one neutralisation of control characters, on the console's way to a terminal and in the
 * engine's answers that quote third-party text (a list server's bad lines). Log items,
 * prompts' command lines, rule names and error messages come from the engine, the policy or any
 * local program (a pop-up report): a raw `\r`, ESC sequence or C1 control could erase or rewrite
 * what is shown (a fake "ALLOW" line, hidden text). Everything the CLI prints passes here: C0
 * controls but newline and tab are shown as `\xHH`; DEL, C1 controls, the Unicode line/paragraph
 * separators and bidirectional overrides as `\uHHHH` (which --json output never holds raw but
 * inside strings, where `\uHHHH` is the same character: the JSON stays valid and equal).
 */

// biome-ignore lint/suspicious/noControlCharactersInRegex: finding control characters is the point.
const CONTROLS = /[\x00-\x08\x0b-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]/g;

/** `text` with every control character but newline and tab shown as an escape. */
export function neutralizeControls(text: string): string {
  return text.replace(CONTROLS, (c) => {
    const code = c.charCodeAt(0);
    return code < 0x20
      ? `\\x${code.toString(16).padStart(2, '0')}`
      : `\\u${code.toString(16).padStart(4, '0')}`;
  });
}

/** `text` on one line: its control characters neutralised, then newlines and tabs shown as `\n` and `\t`. */
export function oneLine(text: string): string {
  return neutralizeControls(text).replace(/[\n\t]/g, (c) => (c === '\n' ? '\\n' : '\\t'));
}
