/**
 * Client errors to exit codes (the table in `../cli/exit_codes.ts`) and the
 * one way client commands report an error: a plain message on stderr, or a
 * JSON object on stdout with `--json`.
 *
 * @module
 */
import { EXIT, ExitError, exitForErrorCode } from "../cli/exit_codes.ts";
import { ProtocolError, RemoteError } from "../protocol/errors.ts";
import { type ClientOptions, ParleyClient } from "./client.ts";
import { CredentialError } from "./credentials.ts";
import { ChangedServerError, UnknownServerError } from "./known_servers.ts";
import { NothingListensError, NotParleyError } from "./not_parley.ts";
import { PinMismatchError, TlsHandshakeError } from "./tls_connect.ts";
import { TransferError } from "./files/transfer_common.ts";

const _UNREACHABLE = [
  Deno.errors.ConnectionRefused,
  Deno.errors.ConnectionReset,
  Deno.errors.ConnectionAborted,
  Deno.errors.NotConnected,
  Deno.errors.AddrNotAvailable,
  Deno.errors.TimedOut,
  TlsHandshakeError,
  NotParleyError,
];

/** The exit code for an error a client command ends with. */
export function exitCodeFor(e: unknown): number {
  if (e instanceof ExitError) return e.exit;
  if (e instanceof CredentialError) return EXIT.usage;
  if (
    e instanceof UnknownServerError || e instanceof ChangedServerError ||
    e instanceof PinMismatchError
  ) return EXIT.auth;
  if (_UNREACHABLE.some((c) => e instanceof c)) return EXIT.unreachable;
  if (e instanceof TransferError) {
    // A transfer's codes are the wire's (checksum, exists, not_found), plus its own.
    return e.code === "interrupted" ? EXIT.interrupted : exitForErrorCode(e.code);
  }
  if (e instanceof RemoteError || e instanceof ProtocolError) return exitForErrorCode(e.code);
  if (e instanceof Deno.errors.NotFound) return EXIT.notFound;
  if (e instanceof Deno.errors.AlreadyExists) return EXIT.conflict;
  return EXIT.error;
}

/** The wire or transfer code of an error for `--json` output ("error" when it has none). */
export function errorCodeOf(e: unknown): string {
  if (e instanceof RemoteError || e instanceof ProtocolError || e instanceof TransferError) {
    return e.code;
  }
  if (e instanceof ExitError) {
    return e.code ?? (e.cause === undefined ? "error" : errorCodeOf(e.cause));
  }
  return "error";
}

/** The message for an error, in plain words. */
export function errorMessage(e: unknown): string {
  if (e instanceof Deno.errors.ConnectionRefused && !(e instanceof NothingListensError)) {
    return "cannot reach the server (connection refused); is `parley serve` running?";
  }
  const message = (e as Error)?.message ?? String(e);
  return e instanceof RemoteError ? `${message} (${e.code})` : message;
}

/**
 * Prints `e` (`parley: MESSAGE` on stderr, or with `json` one
 * `{ok: false, code, error, exit}` line on stdout) and returns its exit code.
 */
export function reportCliError(e: unknown, options: { json?: boolean } = {}): number {
  const exit = exitCodeFor(e);
  if (options.json) {
    const error = (e as Error)?.message ?? String(e);
    console.log(JSON.stringify({ ok: false, code: errorCodeOf(e), error, exit }));
  } else {
    console.error(`parley: ${errorMessage(e)}`);
  }
  return exit;
}

/**
 * {@linkcode ParleyClient.connect} for a command: a failure before the login
 * completes that is not about credentials or trust and not the server's own
 * answer (a wrong key, a ban, too many logins) means the server could not be
 * reached or does not speak Parley ({@linkcode EXIT.unreachable}).
 */
export async function connectForCommand(options: ClientOptions): Promise<ParleyClient> {
  try {
    return await ParleyClient.connect(options);
  } catch (e) {
    // The server answered (a refused or rate-limited login): it is there and speaks Parley.
    if (e instanceof RemoteError) throw e;
    const code = exitCodeFor(e);
    if (code === EXIT.usage || code === EXIT.auth || code === EXIT.unreachable) throw e;
    throw new ExitError(EXIT.unreachable, errorMessage(e), { cause: e });
  }
}
