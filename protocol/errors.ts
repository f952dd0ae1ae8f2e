/**
 * Protocol errors. Every error that crosses the wire carries a stable
 * machine-readable `code` (see PROTOCOL.md §8) and a human message.
 *
 * @module
 */

import type { ChatErrorCode } from "./ops/chat.ts";
import type { FileErrorCode } from "./ops/files.ts";

/**
 * The codes of PROTOCOL.md §8: connection-level codes and the request-level
 * codes every feature may use.
 */
export type ProtocolErrorCode =
  | "bad_frame"
  | "frame_too_large"
  | "bad_utf8"
  | "bad_json"
  | "bad_header"
  | "unknown_type"
  | "unknown_op"
  | "unsupported_version"
  | "auth_failed"
  | "rate_limited"
  | "timeout"
  | "bad_mac"
  | "flow_control"
  | "stream_limit"
  | "stream_reset"
  | "cancel"
  | "closed"
  | "bad_request"
  | "not_found"
  | "exists"
  | "forbidden"
  | "too_large"
  | "quota"
  | "busy"
  | "unavailable"
  | "slow_consumer"
  | "internal";

/** Stable error codes used on the wire: §8's and the features' own (§12). */
export type ErrorCode = ProtocolErrorCode | ChatErrorCode | FileErrorCode;

/** An error defined by the Parley protocol, with a stable code. */
export class ProtocolError extends Error {
  /** Stable machine-readable code. */
  readonly code: ErrorCode;
  /** Whether the connection must be closed after reporting this error. */
  readonly fatal: boolean;

  constructor(
    code: ErrorCode,
    message: string,
    options: { cause?: unknown; fatal?: boolean } = {},
  ) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = "ProtocolError";
    this.code = code;
    this.fatal = options.fatal ?? true;
  }
}

/** The error a peer reported in a `res` or `error` frame. */
export class RemoteError extends Error {
  /** Code sent by the peer. */
  readonly code: string;

  constructor(code: string, message: string) {
    super(message);
    this.name = "RemoteError";
    this.code = code;
  }
}
