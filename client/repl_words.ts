/**
 * Shell-like word splitting for REPL command lines, and its inverse for completion: `"my file"`,
 * `'my file'` and `my\ file` all read as one word, and {@linkcode quoteWord} writes a word so that
 * {@linkcode splitWords} reads it back unchanged. Built on npm `shlex` (a port of Python's POSIX
 * `shlex`): no globbing, variables or operators, so `|`, `$` and `#` stay literal.
 *
 * @module
 */
import { quote, split } from "shlex";

/** Splits `line` into words; throws an Error that says what to fix on an unclosed quote. */
export function splitWords(line: string): string[] {
  try {
    return split(line);
  } catch {
    throw new Error(
      "unclosed quote: close it, or escape a lone quote as \\' or \\\"",
    );
  }
}

/** Quotes `word` for a command line when it needs it (spaces, quotes, backslashes…). */
export function quoteWord(word: string): string {
  return /^[\w@%+=:,./#~-]+$/u.test(word) ? word : quote(word);
}
