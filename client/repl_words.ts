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

/** A word of a command line: where it is in the line and what it reads as. */
export interface WordSpan {
  /** Index of its first character (a quote, if it starts with one). */
  start: number;
  /** Index after its last character. */
  end: number;
  /** The word as {@linkcode splitWords} reads it (quotes and escapes removed). */
  value: string;
}

/**
 * The words of `line` with where each is, read as {@linkcode splitWords}
 * reads them (POSIX rules: `\` escapes outside quotes, `'…'` is literal,
 * in `"…"` a `\` escapes only `"` and `\`). Never throws: an unclosed
 * quote or a trailing `\` runs to the end of the line (`open` is then set),
 * as a line being typed does.
 */
export function scanWords(line: string): { words: WordSpan[]; open: boolean } {
  const words: WordSpan[] = [];
  let cur: WordSpan | undefined;
  let quote: "'" | '"' | undefined;
  let open = false;
  for (let i = 0; i < line.length; i++) {
    const ch = line[i]!;
    if (quote === undefined && /\s/.test(ch)) {
      if (cur) words.push(cur);
      cur = undefined;
      continue;
    }
    cur ??= { start: i, end: i, value: "" };
    if (quote === "'") {
      if (ch === "'") quote = undefined;
      else cur.value += ch;
    } else if (quote === '"') {
      if (ch === '"') quote = undefined;
      else if (ch === "\\" && (line[i + 1] === '"' || line[i + 1] === "\\")) cur.value += line[++i];
      else cur.value += ch;
    } else if (ch === "'" || ch === '"') {
      quote = ch;
    } else if (ch === "\\") {
      if (i + 1 < line.length) cur.value += line[++i];
      else open = true;
    } else {
      cur.value += ch;
    }
    cur.end = i + 1;
  }
  if (cur) words.push(cur);
  return { words, open: open || quote !== undefined };
}

/**
 * The text of `line` after its first `n` words, as typed (quotes kept),
 * without leading spaces: the free text of `/msg USER TEXT` is
 * `textAfter(rest, 1)`. Empty when there is nothing after them.
 */
export function textAfter(line: string, n: number): string {
  const { words } = scanWords(line);
  const w = words[n - 1];
  if (n <= 0) return line.trimStart();
  return w === undefined ? "" : line.slice(w.end).trimStart();
}

/**
 * The words a command gets from the text after its name: {@linkcode splitWords},
 * except that for a command that takes free text (`freeText`, e.g. `/msg USER
 * TEXT`) an unclosed quote (`don't`) runs to the end of the line instead of
 * being an error.
 */
export function commandWords(cmd: { freeText?: boolean }, rest: string): string[] {
  return cmd.freeText ? scanWords(rest).words.map((w) => w.value) : splitWords(rest);
}
