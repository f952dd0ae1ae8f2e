/**
 * Typed frame headers and their runtime validation (PROTOCOL.md §5–§7).
 * Every header that arrives goes through {@linkcode validateHeader} (after the
 * handshake) or {@linkcode validateHandshake} (before it); anything missing,
 * ill-typed or unknown becomes a {@linkcode ProtocolError}, never a crash.
 *
 * @module
 */
import { ProtocolError } from "./errors.ts";
import type { RawHeader } from "./frame_codec.ts";
import { PROTOCOL_VERSION } from "./limits.ts";
import { fitsCodePoints } from "./text.ts";

/** Smallest body limit a client may ask for in `hello.maxBody` (PROTOCOL.md §9). */
export const MIN_MAX_BODY = 1024;

/** Fields shared by JSON-object payloads. */
export type Json = Record<string, unknown>;

/** A request: exactly one `res` answers it. May open stream `s`. */
export interface ReqHeader {
  t: "req";
  id: number;
  op: string;
  args: Json;
  s?: number;
  fin?: boolean;
}
/** A successful or failed reply to a request. */
export type ResHeader =
  | { t: "res"; id: number; ok: true; data: unknown }
  | { t: "res"; id: number; ok: false; code: string; msg: string };
/** A one-way event. */
export interface EvHeader {
  t: "ev";
  ev: string;
  data: unknown;
}
/** Stream data; its body consumes flow-control credit. */
export interface DataHeader {
  t: "data";
  s: number;
  fin?: boolean;
}
/** Flow-control credit for stream `s` (0 = the connection). */
export interface WinHeader {
  t: "win";
  s: number;
  n: number;
}
/** Aborts stream `s` in both directions. */
export interface RstHeader {
  t: "rst";
  s: number;
  code: string;
  msg: string;
}
/** Liveness probe and its answer. */
export interface PingHeader {
  t: "ping" | "pong";
  id: number;
}
/** Fatal error; the sender closes the connection after it. */
export interface ErrorHeader {
  t: "error";
  code: string;
  msg: string;
}

/**
 * Several body-less frames under one MAC (PROTOCOL.md §5.5); only when both
 * sides agreed to batches in the handshake. Its body holds the inner frames.
 */
export interface BatchHeader {
  t: "batch";
}

/** Any header valid after the handshake. */
export type Header =
  | ReqHeader
  | ResHeader
  | EvHeader
  | DataHeader
  | WinHeader
  | RstHeader
  | PingHeader
  | ErrorHeader
  | BatchHeader;

/** Client's first frame. */
export interface HelloHeader {
  t: "hello";
  v: number;
  user: string;
  nonce: string;
  maxBody?: number;
  win?: { s: number; c: number };
  /** The client accepts and may send `batch` frames (§5.5). */
  batch?: boolean;
  /** The client offers the `digest` feature (§4.7). */
  digest?: boolean;
}
/** Server's answer to hello. */
export interface ChallengeHeader {
  t: "challenge";
  v: number;
  nonce: string;
}
/** Client's proof. */
export interface AuthHeader {
  t: "auth";
  proof: string;
}
/** Server's proof and the negotiated parameters. */
export interface WelcomeHeader {
  t: "welcome";
  proof: string;
  maxBody: number;
  win: { s: number; c: number };
  maxStreams: number;
  mac: boolean;
  /** Batch frames are on for the connection, both ways (§5.5); only when `hello.batch` was. */
  batch?: boolean;
  /** The `digest` feature is on (§4.7); only on plaintext, when `hello.digest` was. */
  digest?: boolean;
}
/** Any header valid during the handshake. */
export type HandshakeHeader =
  | HelloHeader
  | ChallengeHeader
  | AuthHeader
  | WelcomeHeader
  | ErrorHeader;

function _bad(t: string, field: string, want: string): never {
  throw new ProtocolError("bad_header", `${t} frame: field ${field} must be ${want}`);
}
function _uint(h: RawHeader, f: string): number {
  const v = h[f];
  if (typeof v !== "number" || !Number.isSafeInteger(v) || v < 0) {
    _bad(h.t, f, "an unsigned integer");
  }
  return v;
}
function _str(h: RawHeader, f: string, max = 4096): string {
  const v = h[f];
  if (typeof v !== "string" || !fitsCodePoints(v, max)) {
    _bad(h.t, f, `a string of at most ${max} characters (code points)`);
  }
  return v;
}
function _optBool(h: RawHeader, f: string): void {
  const v = h[f];
  if (v !== undefined && typeof v !== "boolean") _bad(h.t, f, "a boolean");
}
function _obj(h: RawHeader, f: string): Json {
  const v = h[f];
  if (typeof v !== "object" || v === null || Array.isArray(v)) _bad(h.t, f, "an object");
  return v as Json;
}
function _hex(h: RawHeader, f: string, bytes: number): string {
  const v = h[f];
  if (typeof v !== "string" || v.length !== bytes * 2 || !/^[0-9a-f]+$/.test(v)) {
    _bad(h.t, f, `${bytes} bytes as lowercase hex`);
  }
  return v;
}
// The version is checked before any other field: a newer peer may shape the
// rest of its hello differently, and deserves "unsupported_version", not "bad_header".
function _version(h: RawHeader): void {
  const v = _uint(h, "v");
  if (v !== PROTOCOL_VERSION) {
    throw new ProtocolError(
      "unsupported_version",
      `protocol version ${v} is not supported (this side speaks ${PROTOCOL_VERSION}); upgrade the older side`,
    );
  }
}
function _win(h: RawHeader): void {
  const w = _obj(h, "win");
  for (const k of ["s", "c"]) {
    const n = w[k];
    if (typeof n !== "number" || !Number.isSafeInteger(n) || n < 1 || n > 2 ** 31 - 1) {
      _bad(h.t, `win.${k}`, "an integer in 1..2^31-1");
    }
  }
}

/** Validates a post-handshake header. Throws {@linkcode ProtocolError}. */
export function validateHeader(h: RawHeader): Header {
  switch (h.t) {
    case "data":
      _uint(h, "s");
      _optBool(h, "fin");
      break;
    case "win":
      _uint(h, "s");
      if (_uint(h, "n") === 0) {
        throw new ProtocolError("flow_control", "win frame: a window update of 0 is not allowed");
      }
      break;
    case "req":
      _uint(h, "id");
      _str(h, "op", 64);
      if (h.args === undefined) h.args = {};
      else _obj(h, "args");
      if (h.s !== undefined) _uint(h, "s");
      _optBool(h, "fin");
      break;
    case "res":
      _uint(h, "id");
      if (h.ok === true) {
        if (h.data === undefined) h.data = null;
        break;
      }
      if (h.ok !== false) _bad(h.t, "ok", "a boolean");
      _str(h, "code", 64);
      _str(h, "msg");
      break;
    case "ev":
      _str(h, "ev", 64);
      if (h.data === undefined) h.data = null;
      break;
    case "rst":
      _uint(h, "s");
      _str(h, "code", 64);
      if (h.msg === undefined) h.msg = "";
      else _str(h, "msg");
      break;
    case "ping":
    case "pong":
      _uint(h, "id");
      break;
    case "error":
      _str(h, "code", 64);
      _str(h, "msg");
      break;
    case "batch":
      // The body is checked where it is split (splitBatch), the inner frames one by one.
      break;
    default:
      throw new ProtocolError("unknown_type", `unknown frame type ${JSON.stringify(h.t)}`);
  }
  return h as unknown as Header;
}

/** Validates a handshake header. Throws {@linkcode ProtocolError}. */
export function validateHandshake(h: RawHeader, nonceBytes: number): HandshakeHeader {
  switch (h.t) {
    case "hello":
      _version(h);
      _str(h, "user", 64);
      _hex(h, "nonce", nonceBytes);
      if (h.maxBody !== undefined && _uint(h, "maxBody") < MIN_MAX_BODY) {
        _bad(h.t, "maxBody", `at least ${MIN_MAX_BODY} (bytes)`);
      }
      if (h.win !== undefined) _win(h);
      _optBool(h, "batch");
      _optBool(h, "digest");
      break;
    case "challenge":
      _version(h);
      _hex(h, "nonce", nonceBytes);
      break;
    case "auth":
      _hex(h, "proof", 32);
      break;
    case "welcome":
      _hex(h, "proof", 32);
      _uint(h, "maxBody");
      _win(h);
      _uint(h, "maxStreams");
      if (typeof h.mac !== "boolean") _bad(h.t, "mac", "a boolean");
      _optBool(h, "batch");
      _optBool(h, "digest");
      break;
    case "error":
      _str(h, "code", 64);
      _str(h, "msg");
      break;
    default:
      throw new ProtocolError(
        "unknown_type",
        `unexpected frame type ${JSON.stringify(h.t)} during the handshake`,
      );
  }
  return h as unknown as HandshakeHeader;
}
