/**
 * Tab completion for the REPL, on the words as the command line parser
 * reads them (`repl_words.ts`): the word under the cursor may be quoted or
 * hold escaped spaces, and what is inserted is what the parser reads back
 * (`'a b.txt'`). Command names after `/` (with a space after a single
 * match; admin commands only for admins), each command's own `complete`
 * for its arguments, `@user` and `#room` anywhere, and a nick at the start
 * of a plain line as `nick: `.
 *
 * @module
 */
import type { ReplCommand, ReplContext } from "./repl_command.ts";
import { quoteWord, scanWords } from "./repl_words.ts";

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
  /** Whether the user is an admin, as the server said (undefined: not known). */
  admin(): boolean | undefined;
}

/** `node:readline` completer signature (callback form). */
export type Completer = (
  line: string,
  cb: (err: Error | null, result: [string[], string]) => void,
) => void;

/** Whether `c` is for admins only (its summary says so). */
export function isAdminCommand(c: ReplCommand): boolean {
  return c.summary.startsWith("(admin)");
}

/**
 * The commands to offer: all of them, less the admin commands when the
 * server said the user is not an admin (`admin` false; undefined: not known).
 */
export function offeredCommands(
  commands: ReplCommand[],
  admin: boolean | undefined,
): ReplCommand[] {
  return admin === false ? commands.filter((c) => !isAdminCommand(c)) : commands;
}

/**
 * Completions for `line` (the text before the cursor): `[candidates, text
 * they replace]`. The replaced text is the word under the cursor as typed
 * (quotes included); the candidates are written so the parser reads them
 * back as the name they complete to.
 */
export async function complete(
  src: CompletionSources,
  line: string,
): Promise<[string[], string]> {
  const { words } = scanWords(line);
  const last = words.at(-1);
  // the word under the cursor: the last one if the cursor is at its end, else a new empty one
  const cur = last && last.end === line.length ? last : { start: line.length, value: "" };
  const index = last && last.end === line.length ? words.length - 1 : words.length;
  const raw = line.slice(cur.start);
  const partial = cur.value;
  const starts = (list: string[]) => [...new Set(list.filter((x) => x.startsWith(partial)))].sort();
  const quoted = (list: string[]) => starts(list).map(quoteWord);
  const command = line.startsWith("/") && !line.startsWith("//");
  if (command && index === 0) {
    const all = offeredCommands(src.commands(), src.admin());
    const names = starts(all.flatMap((c) => [c.name, ...(c.aliases ?? [])]).map((n) => `/${n}`));
    return [names.length === 1 ? [`${names[0]} `] : names, raw];
  }
  if (partial.startsWith("@")) {
    return [quoted((await src.users()).map((u) => `@${u}`)), raw];
  }
  if (partial.startsWith("#")) {
    return [quoted((await src.rooms()).map((r) => `#${r}`)), raw];
  }
  if (!command && index === 0 && partial !== "" && !line.startsWith("!")) {
    // a nick at the start of a plain line: "ada: "
    return [starts(await src.users()).map((u) => `${u}: `), raw];
  }
  if (command) {
    const name = words[0]!.value.slice(1);
    const cmd = src.commands().find((c) => c.name === name || c.aliases?.includes(name));
    if (cmd?.complete) {
      return [quoted(await cmd.complete(src.context(), partial, index - 1)), raw];
    }
  }
  return [[], raw];
}

/** Wraps {@linkcode complete} for `node:readline`; failures complete nothing. */
export function createCompleter(src: CompletionSources): Completer {
  return (line, cb) => {
    complete(src, line).then((r) => cb(null, r), () => cb(null, [[], ""]));
  };
}
