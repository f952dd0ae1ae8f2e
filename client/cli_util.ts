/**
 * Helpers shared by the client's command-line entry points: connection
 * flags, colour decisions and error reporting. Argument parsing itself,
 * shared with the server's commands, is in `../cli/flags.ts`.
 *
 * @module
 */
import type { Flags } from "../cli/flags.ts";
import type { CredentialInput } from "./credentials.ts";
import { reportCliError } from "./exit_status.ts";

/** Options understood by every client command. */
export const CLIENT_STRING_FLAGS = ["server", "user", "key", "ca", "pin"] as const;

/** Switches understood by every client command. */
export const CLIENT_BOOLEAN_FLAGS = ["tls", "plain", "accept-new"] as const;

/** Help text for the shared client flags. */
export const CLIENT_FLAGS_HELP = [
  "Connection (flags, then env, then the config file):",
  "  --server parley://USER@HOST:PORT   server address (env PARLEY_SERVER); a cluster's nodes",
  "                                     comma-separated (parley://USER@A:7878,B:7878) are tried",
  "                                     in order, and the client fails over to the next",
  "  --user NAME                        account name (env PARLEY_USER)",
  "  --key HEX                          account key (env PARLEY_KEY; prefer the env or config file)",
  "  --pin sha256:HEX                   accept only this server certificate (env PARLEY_PIN)",
  "  --accept-new                       trust a server met for the first time and remember it",
  "  --ca FILE                          trust server certificates signed by the CA in FILE",
  "  --plain                            no TLS (only for a server run with --plain; also",
  "                                     parley+plain://HOST:PORT)",
  "Connections use TLS. A server's certificate is trusted on first use (asked on a terminal;",
  "otherwise give --pin or --accept-new) and must match from then on: known_servers in the",
  "config dir; `parley known-servers` lists and forgets entries.",
].join("\n");

/** The credential inputs given by the shared connection flags (`url` overrides `--server`). */
export function credentialInput(f: Flags, url?: string): CredentialInput {
  return {
    url: url ?? (f.server as string | undefined),
    user: f.user as string | undefined,
    key: f.key as string | undefined,
    tls: f.tls ? true : undefined,
    plain: f.plain ? true : undefined,
    acceptNew: f["accept-new"] ? true : undefined,
    caFile: f.ca as string | undefined,
    pin: f.pin as string | undefined,
  };
}

/** Whether to colour output on this stream. */
export function useColor(stream: { isTerminal(): boolean } = Deno.stdout): boolean {
  return stream.isTerminal() && !Deno.env.get("NO_COLOR");
}

/**
 * Prints an error in plain words and returns its exit code from the one
 * table every command shares (`../cli/exit_codes.ts`).
 */
export function reportError(e: unknown): number {
  return reportCliError(e);
}
