/**
 * Argument parsing shared by every `parley` subcommand, server and client
 * alike: `--help`/`-h`, and unknown `--flags` refused with the help text.
 *
 * @example
 * ```ts
 * import { parseFlags } from "./flags.ts";
 *
 * const parsed = parseFlags(["--port", "0", "extra"], { string: ["port"] }, "Usage: …");
 * if (!("exitCode" in parsed)) console.log(parsed.flags.port, parsed.flags._);
 * ```
 *
 * @module
 */
import { parseArgs } from "@std/cli/parse-args";

/** Parsed flags: named options plus the positional arguments in `_`. */
export type Flags = Record<string, unknown> & { _: (string | number)[] };

/** Which flags a command takes. */
export interface FlagSpec {
  /** Flags that take a value. */
  string?: string[];
  /** Flags that take none. `help` is always added. */
  boolean?: string[];
  /** Short names, e.g. `{ p: "progress" }`. `h` is always `help`. */
  alias?: Record<string, string>;
  /** Stop at the first positional argument; the rest land in `_` and `--` (default false). */
  stopEarly?: boolean;
}

/**
 * Parses `args`; unknown `--flags` are an error. After printing help (exit 0)
 * or an error with the help (exit 2) it returns `{ exitCode }`, which the
 * caller returns; otherwise `{ flags }`.
 */
export function parseFlags(
  args: string[],
  spec: FlagSpec,
  help: string,
): { flags: Flags } | { exitCode: number } {
  let unknown: string | undefined;
  const flags = parseArgs(args, {
    string: spec.string ?? [],
    boolean: [...(spec.boolean ?? []), "help"],
    alias: { h: "help", ...(spec.alias ?? {}) },
    stopEarly: spec.stopEarly ?? false,
    "--": spec.stopEarly ?? false,
    unknown: (arg: string) => {
      // A lone `-` is a positional argument (standard input or output), as in other tools.
      const option = arg.startsWith("-") && arg !== "-";
      if (option && unknown === undefined) unknown = arg;
      return !option;
    },
  }) as Flags;
  if (flags.help) {
    console.log(help);
    return { exitCode: 0 };
  }
  if (unknown !== undefined) {
    console.error(`unknown option ${unknown}\n\n${help}`);
    return { exitCode: 2 };
  }
  return { flags };
}
