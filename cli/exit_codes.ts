/**
 * The exit codes of every `parley` command, in one table: the commands
 * return them, their `--help` texts print {@linkcode EXIT_HELP}, and
 * docs/cli.md "Exit codes" lists the same rows (a test compares them).
 *
 * `parley exec` is the exception: it exits with the remote command's own
 * status, so its own failures are {@linkcode EXEC_FAILURE} (as ssh does).
 *
 * @example
 * ```ts
 * import { EXIT, exitForErrorCode } from "./exit_codes.ts";
 *
 * console.log(exitForErrorCode("not_found") === EXIT.notFound); // true
 * ```
 *
 * @module
 */

/** The exit codes by name. */
export const EXIT = {
  ok: 0,
  error: 1,
  usage: 2,
  unreachable: 3,
  notFound: 4,
  conflict: 5,
  quota: 6,
  checksum: 7,
  refused: 8,
  interrupted: 9,
  auth: 10,
} as const;

/** One row of the table. */
export interface ExitCodeRow {
  code: number;
  /** A few words for `--help`. */
  short: string;
  /** The full meaning, as docs/cli.md says it. */
  meaning: string;
}

/** The table, in code order (docs/cli.md "Exit codes" shows exactly these rows). */
export const EXIT_TABLE: readonly ExitCodeRow[] = [
  { code: EXIT.ok, short: "ok", meaning: "success" },
  { code: EXIT.error, short: "other error", meaning: "any other error (the message says what)" },
  {
    code: EXIT.usage,
    short: "usage",
    meaning: "bad usage: unknown option, wrong arguments, missing or malformed credentials",
  },
  {
    code: EXIT.unreachable,
    short: "server unreachable",
    meaning:
      "the server cannot be reached or does not speak Parley (is it running? TLS or --plain?)",
  },
  {
    code: EXIT.notFound,
    short: "not found",
    meaning: "not found: a remote or local file, a user, a room, a message",
  },
  {
    code: EXIT.conflict,
    short: "exists or not empty",
    meaning: "conflict: it already exists (pass `--overwrite`), or the directory is not empty",
  },
  {
    code: EXIT.quota,
    short: "over quota or too large",
    meaning: "over quota, larger than the server allows, or the server's disk is full",
  },
  {
    code: EXIT.checksum,
    short: "checksum mismatch",
    meaning: "checksum mismatch: the bytes were not kept",
  },
  {
    code: EXIT.refused,
    short: "refused",
    meaning: "refused by the server: a path it does not accept (see docs/files.md " +
      '"Paths"), the wrong kind of entry, or not allowed',
  },
  {
    code: EXIT.interrupted,
    short: "interrupted (run again to resume)",
    meaning: "interrupted: the connection did not come back; run the same command again to resume",
  },
  {
    code: EXIT.auth,
    short: "authentication failed",
    meaning: "authentication failed: unknown user or wrong key, or the server's certificate is " +
      "not trusted",
  },
];

/** `parley exec`: its own failures (could not run the command), as ssh's 255. */
export const EXEC_FAILURE = 255;

/** Standard output was closed early (e.g. `| head`): 128 + SIGPIPE, as the shell reports it. */
export const EXIT_BROKEN_PIPE = 141;

/** The exit-code lines every `--help` ends with. */
export const EXIT_HELP: string = _helpText();

function _helpText(): string {
  const items = EXIT_TABLE.map((r) => `${r.code} ${r.short}`);
  const lines: string[] = [];
  let line = "Exit codes:";
  for (const [i, item] of items.entries()) {
    const piece = ` ${item}${i < items.length - 1 ? "," : ""}`;
    if (line.length + piece.length > 78) {
      lines.push(line);
      line = " ";
    }
    line += piece;
  }
  lines.push(line);
  lines.push('  (docs/cli.md "Exit codes")');
  return lines.join("\n");
}

/** The exit code for a wire error code (PROTOCOL.md §8 and the features' own). */
export function exitForErrorCode(code: string): number {
  switch (code) {
    case "not_found":
      return EXIT.notFound;
    case "exists":
    case "not_empty":
      return EXIT.conflict;
    case "quota":
    case "too_large":
    case "disk_full":
      return EXIT.quota;
    case "checksum":
      return EXIT.checksum;
    case "bad_request":
    case "forbidden":
    case "too_many_rooms":
      return EXIT.refused;
    case "closed":
      return EXIT.interrupted;
    case "auth_failed":
      return EXIT.auth;
    default:
      return EXIT.error;
  }
}

/** An error that carries the exit code it ends a command with. */
export class ExitError extends Error {
  /** The exit code. */
  readonly exit: number;
  /** A machine-readable code for `--json` output (e.g. `not_empty`), if any. */
  readonly code: string | undefined;

  constructor(
    exit: number,
    message: string,
    options: { cause?: unknown; code?: string } = {},
  ) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = "ExitError";
    this.exit = exit;
    this.code = options.code;
  }
}

/**
 * Prints a usage problem as one line and where the usage is, then returns
 * {@linkcode EXIT.usage}: `parley COMMAND: PROBLEM` and
 * "Run `parley COMMAND --help` for usage."
 */
export function usageError(command: string, problem: string): number {
  console.error(`parley ${command}: ${problem}\nRun \`parley ${command} --help\` for usage.`);
  return EXIT.usage;
}
