/**
 * Hostile framing before login: malformed, oversized, truncated and
 * ill-typed frames, unknown types and versions. Each case expects one error
 * frame with a stable code, then the connection closed; after each, the
 * server still serves others, no stored byte changed and memory is back near
 * its baseline.
 *
 * @module
 */
import { assert, assertEquals } from "@std/assert";
import { encodeFrame } from "../../protocol/frame_codec.ts";
import { startTarget } from "./harness.ts";
import {
  concat,
  dial,
  HEADER_LIMIT,
  lengthPrefix,
  rawFrame,
  readUntilClosed,
  send,
} from "./raw.ts";
import { PROTOCOL_VERSION } from "../../protocol/limits.ts";

const enc = new TextEncoder();
const NONCE = "ab".repeat(32);
const hello = (extra: Record<string, unknown> = {}) =>
  JSON.stringify({ t: "hello", v: PROTOCOL_VERSION, user: "ada", nonce: NONCE, ...extra });

/** One case: the bytes to send and the error code expected (undefined: any, or none). */
interface Case {
  name: string;
  bytes: Uint8Array;
  code: string | undefined;
  /** Half-close our side after sending (the server sees EOF). */
  eof?: boolean;
}

const text = (s: string) => rawFrame(enc.encode(s));

const CASES: Case[] = [
  { name: "a header length of 0", bytes: lengthPrefix(0), code: "bad_frame" },
  { name: "a header length of 2^32-1", bytes: lengthPrefix(2 ** 32 - 1), code: "frame_too_large" },
  {
    name: "a header length just over 64 KiB",
    bytes: lengthPrefix(HEADER_LIMIT + 1),
    code: "frame_too_large",
  },
  {
    // Exactly at the limit the header is read and judged on its content.
    name: "a header of exactly 64 KiB (read, then refused for its type)",
    bytes: text(JSON.stringify({ t: "req", pad: "x".repeat(HEADER_LIMIT - 20) })),
    code: "unknown_type",
  },
  {
    name: "a hello announcing a body (no body allowed before login)",
    bytes: text(hello({ len: 10 })),
    code: "frame_too_large",
  },
  {
    name: "a body longer than declared (the excess is read as a next frame)",
    bytes: concat(text(hello()), enc.encode("garbage after the frame")),
    code: "frame_too_large",
  },
  {
    name: "a frame truncated in its length prefix",
    bytes: new Uint8Array([0, 0]),
    code: undefined,
    eof: true,
  },
  {
    name: "a frame truncated in its header",
    bytes: text(hello()).subarray(0, 30),
    code: undefined,
    eof: true,
  },
  {
    name: "a header that is not UTF-8",
    bytes: rawFrame(new Uint8Array([0x7b, 0xff, 0xfe, 0x7d])),
    code: "bad_utf8",
  },
  {
    name: "an overlong UTF-8 encoding",
    bytes: rawFrame(new Uint8Array([0x7b, 0x22, 0xc0, 0xaf, 0x22, 0x7d])),
    code: "bad_utf8",
  },
  { name: "a header that is not JSON", bytes: text("{t: hello}"), code: "bad_json" },
  { name: "truncated JSON", bytes: text('{"t":"hello"'), code: "bad_json" },
  { name: "a JSON array header", bytes: text("[1,2,3]"), code: "bad_header" },
  { name: "a JSON string header", bytes: text('"hello"'), code: "bad_header" },
  { name: "a JSON null header", bytes: text("null"), code: "bad_header" },
  { name: "a header without t", bytes: text('{"v":1}'), code: "bad_header" },
  { name: "a numeric t", bytes: text('{"t":5}'), code: "bad_header" },
  { name: "an empty t", bytes: text('{"t":""}'), code: "bad_header" },
  { name: "a negative len", bytes: text('{"t":"hello","len":-1}'), code: "bad_header" },
  { name: "a fractional len", bytes: text('{"t":"hello","len":1.5}'), code: "bad_header" },
  { name: "a string len", bytes: text('{"t":"hello","len":"9"}'), code: "bad_header" },
  { name: "an enormous len", bytes: text('{"t":"hello","len":1e300}'), code: "bad_header" },
  { name: "a hello with a string version", bytes: text(hello({ v: "1" })), code: "bad_header" },
  { name: "a hello with a numeric user", bytes: text(hello({ user: 7 })), code: "bad_header" },
  {
    name: "a hello with a 65-character user",
    bytes: text(hello({ user: "a".repeat(65) })),
    code: "bad_header",
  },
  { name: "a hello with a short nonce", bytes: text(hello({ nonce: "abcd" })), code: "bad_header" },
  {
    name: "a hello with a non-hex nonce",
    bytes: text(hello({ nonce: "zz".repeat(32) })),
    code: "bad_header",
  },
  {
    name: "a hello with an upper-case nonce",
    bytes: text(hello({ nonce: "AB".repeat(32) })),
    code: "bad_header",
  },
  { name: "a hello with maxBody -1", bytes: text(hello({ maxBody: -1 })), code: "bad_header" },
  {
    name: "a hello with a zero window",
    bytes: text(hello({ win: { s: 0, c: 1 } })),
    code: "bad_header",
  },
  { name: "a hello with an array window", bytes: text(hello({ win: [1, 2] })), code: "bad_header" },
  { name: "an unknown frame type", bytes: text('{"t":"bogus"}'), code: "unknown_type" },
  { name: "protocol version 1", bytes: text(hello({ v: 1 })), code: "unsupported_version" },
  { name: "protocol version 3", bytes: text(hello({ v: 3 })), code: "unsupported_version" },
  { name: "protocol version 0", bytes: text(hello({ v: 0 })), code: "unsupported_version" },
  {
    name: "a request before the handshake",
    bytes: encodeFrame({ t: "req", id: 1, op: "diag.echo", args: {} }),
    code: "unknown_type",
  },
  {
    name: "data before the handshake",
    bytes: encodeFrame({ t: "data", s: 1 }),
    code: "unknown_type",
  },
  {
    name: "a ping before the handshake",
    bytes: encodeFrame({ t: "ping", id: 1 }),
    code: "unknown_type",
  },
  {
    name: "an auth before the hello",
    bytes: encodeFrame({ t: "auth", proof: "00".repeat(32) }),
    code: "bad_header",
  },
  {
    name: "a second hello instead of the auth",
    bytes: concat(text(hello()), text(hello())),
    code: "bad_header",
  },
  {
    name: "an auth with a wrong proof",
    bytes: concat(text(hello()), encodeFrame({ t: "auth", proof: "00".repeat(32) })),
    code: "auth_failed",
  },
  {
    name: "an unknown user",
    bytes: concat(
      text(hello({ user: "mallory" })),
      encodeFrame({ t: "auth", proof: "11".repeat(32) }),
    ),
    code: "auth_failed",
  },
];

Deno.test("hostile frames before login get a clear error and a closed connection", async (t) => {
  await using target = await startTarget({ limits: { handshakeTimeoutMs: 3000 } });
  for (const c of CASES) {
    await t.step(c.name, async () => {
      const conn = await dial(target.port);
      await send(conn, c.bytes);
      if (c.eof) await conn.closeWrite();
      const out = await readUntilClosed(conn);
      assert(out.closed, "the server should close the connection");
      if (c.code !== undefined) assertEquals(out.error, c.code, JSON.stringify(out.frames));
      await target.check(c.name);
    });
  }
});
