/**
 * Splits a REPL command line (`/exec ls -l "my dir"`) into arguments the way
 * a shell would quote them — single quotes, double quotes, backslashes — but
 * without expanding anything. A line that needs a shell (an unquoted `|`,
 * `;`, `>`, `$`, `*`, …) is returned whole as a shell line instead.
 *
 * @module
 */

/** A parsed command line: literal arguments, or a line for the server's shell. */
export type ExecLine = { argv: string[] } | { shell: string };

const _META = new Set([..."|&;<>()$`*?[]{}~#\n"]);

/** Raised for an unterminated quote or a trailing backslash. */
export class ExecLineError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "ExecLineError";
  }
}

/**
 * Parses `line`.
 *
 * @example
 * ```ts
 * import { parseExecLine } from "./exec_line.ts";
 * parseExecLine(`echo "a b" c`); // { argv: ["echo", "a b", "c"] }
 * parseExecLine("ls | wc -l"); // { shell: "ls | wc -l" }
 * ```
 */
export function parseExecLine(line: string): ExecLine {
  const argv: string[] = [];
  let word: string | undefined;
  let needsShell = false;
  for (let i = 0; i < line.length; i++) {
    const ch = line[i]!;
    if (ch === " " || ch === "\t") {
      if (word !== undefined) argv.push(word);
      word = undefined;
    } else if (ch === "'") {
      const end = line.indexOf("'", i + 1);
      if (end < 0) throw new ExecLineError("unterminated single quote");
      word = (word ?? "") + line.slice(i + 1, end);
      i = end;
    } else if (ch === '"') {
      let text = "";
      let j = i + 1;
      for (; j < line.length && line[j] !== '"'; j++) {
        const c = line[j]!;
        if (c === "\\" && j + 1 < line.length && '"\\$`'.includes(line[j + 1]!)) {
          text += line[++j];
        } else {
          if (c === "$" || c === "`") needsShell = true;
          text += c;
        }
      }
      if (j >= line.length) throw new ExecLineError("unterminated double quote");
      word = (word ?? "") + text;
      i = j;
    } else if (ch === "\\") {
      if (i + 1 >= line.length) throw new ExecLineError("trailing backslash");
      word = (word ?? "") + line[++i];
    } else {
      if (
        _META.has(ch) && !(ch === "#" && word !== undefined) && !(ch === "~" && word !== undefined)
      ) {
        needsShell = true;
      }
      word = (word ?? "") + ch;
    }
  }
  if (word !== undefined) argv.push(word);
  if (needsShell) return { shell: line.trim() };
  return { argv };
}
