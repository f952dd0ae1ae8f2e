/**
 * Exit codes of the one-shot file commands (docs/files.md "Exit codes"),
 * stable so scripts can rely on them.
 *
 * @module
 */
import { RemoteError } from "../../protocol/errors.ts";
import { CredentialError } from "../credentials.ts";
import { TransferError } from "./transfer_common.ts";

/** Exit codes. */
export const EXIT = {
  ok: 0,
  error: 1,
  usage: 2,
  connect: 3,
  notFound: 4,
  exists: 5,
  quota: 6,
  checksum: 7,
  refused: 8,
  interrupted: 9,
} as const;

/** The exit code for an error. */
export function exitCodeFor(e: unknown): number {
  if (e instanceof CredentialError) return EXIT.usage;
  if (e instanceof Deno.errors.ConnectionRefused) return EXIT.connect;
  if (e instanceof TransferError) {
    switch (e.code) {
      case "checksum":
        return EXIT.checksum;
      case "exists":
        return EXIT.exists;
      case "not_found":
        return EXIT.notFound;
      case "interrupted":
        return EXIT.interrupted;
      default:
        return EXIT.error;
    }
  }
  if (e instanceof RemoteError) {
    switch (e.code) {
      case "not_found":
        return EXIT.notFound;
      case "exists":
        return EXIT.exists;
      case "quota":
      case "too_large":
        return EXIT.quota;
      case "checksum":
        return EXIT.checksum;
      case "bad_request":
      case "forbidden":
        return EXIT.refused;
      case "closed":
        return EXIT.interrupted;
      default:
        return EXIT.error;
    }
  }
  return EXIT.error;
}

/** Exit-code table for `--help` texts. */
export const EXIT_HELP =
  `Exit codes: 0 ok, 1 other error, 2 bad usage or credentials, 3 server unreachable,
  4 not found, 5 already exists, 6 over quota or too large, 7 checksum mismatch,
  8 path refused, 9 interrupted (run again with the same arguments to resume)`;
