/**
 * Helpers shared by the command-line entry points: argument parsing with
 * `--help`, credential flags, colour decisions and error reporting.
 *
 * @module
 */
import { parseArgs } from "@std/cli/parse-args";
import { RemoteError } from "../protocol/errors.ts";
import { CredentialError, type CredentialInput } from "./credentials.ts";

/** Options understood by every client command. */
export const CLIENT_STRING_FLAGS = ["server", "user", "key", "ca", "pin"] as const;

/** Help text for the shared client flags. */
export const CLIENT_FLAGS_HELP = [
  "Connection (flags, then env, then the config file):",
  "  --server parley://USER@HOST:PORT   server address (env PARLEY_SERVER)",
  "  --user NAME                        account name (env PARLEY_USER)",
  "  --key HEX                          account key (env PARLEY_KEY; prefer the env or config file)",
  "  --tls, --ca FILE                   use TLS, trusting the CA certificate in FILE",
  "  --pin sha256:HEX                   use TLS and accept only this server certificate (env PARLEY_PIN)",
].join("\n");

/** The credential inputs given by the shared connection flags (`url` overrides `--server`). */
export function credentialInput(f: Flags, url?: string): CredentialInput {
  return {
    url: url ?? (f.server as string | undefined),
    user: f.user as string | undefined,
    key: f.key as string | undefined,
    tls: f.tls ? true : undefined,
    caFile: f.ca as string | undefined,
    pin: f.pin as string | undefined,
  };
}

/** Parsed flags. */
export type Flags = Record<string, unknown> & { _: (string | number)[] };

/**
 * Parses `args`; unknown `--flags` are an error. Returns undefined after
 * printing help or an error (the caller returns `exitCode`).
 */
export function parseFlags(
  args: string[],
  spec: {
    string?: string[];
    boolean?: string[];
    alias?: Record<string, string>;
    stopEarly?: boolean;
  },
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
      if (arg.startsWith("-") && unknown === undefined) unknown = arg;
      return !arg.startsWith("-");
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

/** Whether to colour output on this stream. */
export function useColor(stream: { isTerminal(): boolean } = Deno.stdout): boolean {
  return stream.isTerminal() && !Deno.env.get("NO_COLOR");
}

/** Prints an error in plain words and returns a conventional exit code. */
export function reportError(e: unknown): number {
  if (e instanceof CredentialError) {
    console.error(`parley: ${e.message}`);
    return 2;
  }
  if (e instanceof RemoteError) {
    console.error(`parley: ${e.message} (${e.code})`);
    return 1;
  }
  if (e instanceof Deno.errors.ConnectionRefused) {
    console.error(
      "parley: cannot reach the server (connection refused); is `parley serve` running?",
    );
    return 3;
  }
  console.error(`parley: ${(e as Error)?.message ?? String(e)}`);
  return 1;
}
