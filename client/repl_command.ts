/**
 * The interface REPL commands implement. Chat commands, file commands
 * (`client/files/file_repl.ts`) and exec commands (`client/exec/exec_repl.ts`) all plug
 * into `parley connect` through it.
 *
 * @module
 */
import type { ParleyClient } from "./client.ts";
import type { ChatTarget } from "./chat/chat_types.ts";
import type { JobHandle, JobSpec } from "./repl_jobs.ts";

/**
 * A job that reads what the user types: while it is in the foreground the
 * prompt shows `[!LABEL] `, typed lines go to `line`, Ctrl-C calls
 * `interrupt`, and Ctrl-D calls `line(null)` and sends the job to the
 * background.
 */
export interface ForegroundInput {
  /** Shown in the prompt, e.g. `cat`. */
  label: string;
  /** A typed line, or null at end of input. */
  line(text: string | null): void;
  /** Ctrl-C. */
  interrupt(): void;
}

/** What a REPL command can use while it runs. */
export interface ReplContext {
  /** The connected client (survives reconnects). */
  client: ParleyClient;
  /** Prints a line above the prompt without disturbing what the user is typing. */
  print(line: string): void;
  /** Whether colours may be used (TTY and no NO_COLOR). */
  color: boolean;
  /** Whether stdout is a terminal (progress bars only then). */
  tty: boolean;
  /** The room plain lines go to (undefined: a user after `/query`, or nowhere). */
  currentRoom(): string | undefined;
  /** Where plain lines go: a room, a user, or nowhere. */
  currentTarget(): ChatTarget | undefined;
  /**
   * While `fn`'s promise runs, Ctrl-C calls `onInterrupt` instead of
   * quitting/clearing the line (used to forward SIGINT to a remote command).
   */
  withInterrupt<T>(onInterrupt: () => void, fn: () => Promise<T>): Promise<T>;
  /** Lines typed by the user while `fn` runs are passed to `onLine` (e.g. remote stdin). */
  withInput<T>(onLine: (line: string | null) => void, fn: () => Promise<T>): Promise<T>;
  /**
   * Starts a background job (a transfer, a remote command) and returns at
   * once: `/jobs` lists it, `/cancel N` stops it, its progress shows above
   * the prompt. With `input`, it is the foreground job until its input ends.
   */
  startJob(spec: JobSpec, input?: ForegroundInput): JobHandle;
  /** Recently seen chat messages by id, for commands that act on a message (e.g. `/get` of a shared file). */
  message(id: string): Record<string, unknown> | undefined;
}

/** One slash command. */
export interface ReplCommand {
  /** Name without the slash, e.g. `put`. */
  name: string;
  /** Other names, e.g. `!` for exec. */
  aliases?: string[];
  /** Usage line, e.g. `/put LOCAL [REMOTE]`. */
  usage: string;
  /** One-line description for `/help`; one starting with `(admin)` is offered to admins only. */
  summary: string;
  /**
   * Takes free text after its first words (`/msg USER TEXT`): an apostrophe
   * in it is not an unclosed quote.
   */
  freeText?: boolean;
  /** Runs the command; throw to print an error. */
  run(ctx: ReplContext, args: string[], rest: string): Promise<void>;
  /** Completions for the argument being typed (index `argIndex`, text `partial`). */
  complete?(ctx: ReplContext, partial: string, argIndex: number): Promise<string[]>;
}
