/**
 * Tab completion for the REPL: command names after `/`, then each
 * command's own `complete` for its arguments; `@user` and `#room` anywhere.
 *
 * @module
 */
import type { ReplCommand, ReplContext } from "./repl_command.ts";

/** Where completions come from. */
export interface CompletionSources {
  /** Every command, plug-ins included. */
  commands(): ReplCommand[];
  /** Context handed to a command's `complete`. */
  context(): ReplContext;
  /** Known user names. */
  users(): Promise<string[]>;
  /** Known room names. */
  rooms(): Promise<string[]>;
}

/** `node:readline` completer signature (callback form). */
export type Completer = (
  line: string,
  cb: (err: Error | null, result: [string[], string]) => void,
) => void;

/** Completions for `line` (the text before the cursor): `[candidates, word being completed]`. */
export async function complete(
  src: CompletionSources,
  line: string,
): Promise<[string[], string]> {
  const word = /(\S*)$/.exec(line)![1]!;
  const starts = (list: string[]) => [...new Set(list.filter((x) => x.startsWith(word)))].sort();
  if (line.startsWith("/") && !line.includes(" ")) {
    const names = src.commands().flatMap((c) => [c.name, ...(c.aliases ?? [])]);
    return [starts(names.map((n) => `/${n}`)), word];
  }
  if (word.startsWith("@")) return [starts((await src.users()).map((u) => `@${u}`)), word];
  if (word.startsWith("#")) return [starts((await src.rooms()).map((r) => `#${r}`)), word];
  const m = /^\/(\S+)\s+(.*)$/s.exec(line);
  if (m) {
    const cmd = src.commands().find((c) => c.name === m[1] || c.aliases?.includes(m[1]!));
    if (cmd?.complete) {
      const argIndex = m[2]!.split(/\s+/).length - 1;
      return [starts(await cmd.complete(src.context(), word, argIndex)), word];
    }
  }
  return [[], word];
}

/** Wraps {@linkcode complete} for `node:readline`; failures complete nothing. */
export function createCompleter(src: CompletionSources): Completer {
  return (line, cb) => {
    complete(src, line).then((r) => cb(null, r), () => cb(null, [[], line]));
  };
}
