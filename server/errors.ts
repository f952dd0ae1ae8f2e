/**
 * Server-side domain errors. They extend {@linkcode ProtocolError} with
 * `fatal: false`, so a request handler that throws one sends a clear error
 * reply and the connection stays open.
 *
 * @module
 */
import { type ErrorCode, ProtocolError } from "../protocol/errors.ts";

/** A request failed for a reason the client can act on. */
export class RequestError extends ProtocolError {
  constructor(code: ErrorCode, message: string, options: { cause?: unknown } = {}) {
    super(code, message, { ...options, fatal: false });
    this.name = "RequestError";
  }
}
