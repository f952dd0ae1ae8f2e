/**
 * The chat feature's own error codes beyond PROTOCOL.md §8 (docs/chat_protocol.md
 * "Error codes"): how a failed store becomes `disk_full` or `internal`.
 *
 * @module
 */
import { RequestError } from "../errors.ts";

/** Whether `e` says the disk (or the user's share of it) is full. */
export function isDiskFull(e: unknown): boolean {
  return (e as { code?: unknown } | undefined)?.code === "ENOSPC" ||
    (e instanceof Error && /no space left on device/i.test(e.message));
}

/**
 * The request error for a message the log could not store: `disk_full`
 * when the disk is full (nothing was stored; retry later), else `internal`.
 * A `RequestError` from the backend passes through.
 */
export function storeError(e: unknown): RequestError {
  if (e instanceof RequestError) return e;
  const cause = (e as Error)?.cause ?? e;
  if (isDiskFull(cause)) {
    return new RequestError(
      "disk_full",
      "the server's disk is full; the message was not stored. Try again later",
      { cause: e },
    );
  }
  return new RequestError("internal", "the server could not store the message", { cause: e });
}
