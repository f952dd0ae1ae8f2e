/**
 * Error helpers for the file operations: client path problems become
 * `bad_request` replies, and two file-specific codes are added to the
 * protocol's set (PROTOCOL.md "Operations: files"):
 * `checksum` (the bytes do not match the SHA-256) and `changed` (the file
 * changed since the offset or size the client named).
 *
 * @module
 */
import type { ErrorCode } from "../../protocol/errors.ts";
import { RequestError } from "../errors.ts";
import { PathError } from "./remote_path.ts";

/** Codes the file operations reply with. */
export type FileErrorCode = ErrorCode;

/** A request error with a file-specific code. */
export function fileError(code: FileErrorCode, message: string): RequestError {
  return new RequestError(code as ErrorCode, message);
}

/** Maps a {@linkcode PathError} to a `bad_request` reply; rethrows anything else. */
export function asRequestError(e: unknown): unknown {
  if (e instanceof PathError) return new RequestError("bad_request", e.message, { cause: e });
  return e;
}
