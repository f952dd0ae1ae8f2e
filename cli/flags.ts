/**
 * Argument parsing shared by every `parley` subcommand, server and client
 * alike: `--help`/`-h`, and unknown `--flags` refused with the usage lines and
 * the option likely meant; {@linkcode usageProblem} reports any other usage
 * problem the same way.
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
import { didYouMean } from "./suggest.ts";

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
 * or a usage problem (the option, a likely meant one, the usage lines: exit 2)
 * it returns `{ exitCode }`, which the caller returns; otherwise `{ flags }`.
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
    return {
      exitCode: usageProblem(help, `unknown option ${unknown}${suggestOption(unknown, spec)}`),
    };
  }
  return { flags };
}

/** The usage lines at the top of a help text: from `Usage:` to the first blank line. */
export function usageLines(help: string): string[] {
  const lines = help.split("\n");
  const start = lines.findIndex((l) => /^usage:/i.test(l.trim()));
  if (start < 0) return [];
  const end = lines.findIndex((l, i) => i > start && l.trim() === "");
  return lines.slice(start, end < 0 ? undefined : end).map((l) =>
    l.trim().replace(/^usage:\s*/i, "")
  );
}

/** The command a help text is for (`parley put`), from its first usage line. */
export function commandOf(help: string): string {
  const words = (usageLines(help)[0] ?? "parley").split(/\s+/);
  const name: string[] = [];
  for (const w of words) {
    if (!/^[a-z][a-z0-9-]*$/.test(w) || name.length === 3) break;
    name.push(w);
  }
  return name.length > 0 ? name.slice(0, 2).join(" ") : "parley";
}

/**
 * Prints a usage problem on stderr — `parley put: PROBLEM; usage: parley put
 * LOCAL [REMOTE] (parley put --help for more)`, one usage line per form —
 * and returns the usage exit code (2). `form` (`parley user add`) narrows the
 * usage lines to those of one subcommand.
 */
export function usageProblem(help: string, problem: string, form?: string): number {
  // With `form` (e.g. `parley user add`), only that form's usage lines.
  const all = usageLines(help);
  const mine = form === undefined ? [] : all.filter((u) => u === form || u.startsWith(`${form} `));
  const command = mine.length > 0 ? form! : commandOf(help);
  const usage = mine.length > 0 ? mine : all;
  const more = `(${command} --help for more)`;
  if (usage.length === 0) {
    console.error(`${command}: ${problem} ${more}`);
  } else if (usage.length === 1 && !problem.endsWith("?")) {
    console.error(`${command}: ${problem}; usage: ${usage[0]} ${more}`);
  } else if (usage.length === 1) {
    console.error(`${command}: ${problem}\nusage: ${usage[0]} ${more}`);
  } else {
    console.error(
      [
        `${command}: ${problem}`,
        ...usage.map((u, i) => `${i === 0 ? "usage: " : "       "}${u}`),
        more,
      ]
        .join("\n"),
    );
  }
  return 2;
}

/** `; did you mean --port?` for a mistyped `--prot` (or `--prot=1`), or "". */
export function suggestOption(arg: string, spec: FlagSpec): string {
  const m = /^--([^=]{3,})/.exec(arg);
  if (!m) return "";
  const names = [...(spec.string ?? []), ...(spec.boolean ?? []), "help"];
  for (const [short, long] of Object.entries(spec.alias ?? {})) names.push(short, long);
  // One-letter names are too short to guess at.
  return didYouMean(m[1]!, new Set(names.filter((n) => n.length > 1)), (c) => `--${c}`);
}
