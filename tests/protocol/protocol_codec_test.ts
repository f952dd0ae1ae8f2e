/**
 * Frame codec and header validation: round trips, input split at every byte
 * boundary, each limit refused before the memory for it is taken, and every
 * malformed header mapped to its typed error code.
 *
 * @module
 */
import { assert, assertEquals, assertThrows } from "@std/assert";
import {
  type DecodedFrame,
  encodeFrame,
  encodeHeader,
  FrameDecoder,
  type OutHeader,
  parseHeader,
  type RawHeader,
} from "../../protocol/frame_codec.ts";
import { type ErrorCode, ProtocolError } from "../../protocol/errors.ts";
import { DEFAULT_MAX_BODY, MAC_LENGTH, MAX_HEADER } from "../../protocol/limits.ts";
import { validateHandshake, validateHeader } from "../../protocol/messages.ts";
import { FrameReader } from "../../protocol/transport.ts";
import { concat, memoryPipe } from "./protocol_fixture.ts";

const enc = new TextEncoder();

function u32(n: number): Uint8Array {
  const b = new Uint8Array(4);
  new DataView(b.buffer).setUint32(0, n);
  return b;
}

/** A frame from raw header text (no validation by the encoder). */
function rawFrame(headerText: string | Uint8Array, body = new Uint8Array(0)): Uint8Array {
  const h = typeof headerText === "string" ? enc.encode(headerText) : headerText;
  return concat([u32(h.byteLength), h, body]);
}

function expectCode(code: ErrorCode, fn: () => unknown, what = ""): void {
  const e = assertThrows(fn, ProtocolError, undefined, what);
  assertEquals((e as ProtocolError).code, code, `${what}: ${(e as Error).message}`);
}

function decodeAll(dec: FrameDecoder): DecodedFrame[] {
  const out: DecodedFrame[] = [];
  for (let f = dec.next(); f; f = dec.next()) out.push(f);
  return out;
}

function summary(frames: DecodedFrame[]) {
  return frames.map((f) => ({ header: f.header, body: Array.from(f.body), tag: f.tag }));
}

/** A stream of frames covering empty, small and multi-chunk bodies, with MAC-like trailers. */
function sampleStream(tagged: boolean) {
  const headers: [OutHeader, Uint8Array][] = [
    [{ t: "ping", id: 1 }, new Uint8Array(0)],
    [{ t: "data", s: 1 }, Uint8Array.from({ length: 300 }, (_, i) => i & 0xff)],
    [{ t: "ev", ev: "chat.msg", data: { text: "héllo ✓ 🦕" } }, new Uint8Array(0)],
    [{ t: "data", s: 3, fin: true }, new Uint8Array([0, 0, 0, 0])],
    [{ t: "req", id: 2, op: "diag.echo", args: {} }, new Uint8Array(0)],
  ];
  const parts: Uint8Array[] = [];
  const expected: DecodedFrame[] = [];
  headers.forEach(([h, body], i) => {
    parts.push(encodeFrame(h, body));
    const tag = tagged ? new Uint8Array(MAC_LENGTH).fill(i + 1) : undefined;
    if (tag) parts.push(tag);
    const header = body.byteLength > 0 ? { ...h, len: body.byteLength } : h;
    expected.push({
      header: header as RawHeader,
      headerBytes: encodeHeader(h, body.byteLength),
      body,
      tag,
    });
  });
  return { bytes: concat(parts), expected };
}

Deno.test("encodeFrame and FrameDecoder round-trip headers and bodies", () => {
  const cases: [OutHeader, number][] = [
    [{ t: "ping", id: 0 }, 0],
    [{ t: "data", s: 7, fin: true }, 1],
    [{ t: "data", s: 9 }, 65_536],
    [{ t: "data", s: 11 }, DEFAULT_MAX_BODY],
    [{ t: "ev", ev: "x", data: { nested: [1, "two", null, { u: "\u2028" }] } }, 0],
  ];
  for (const [h, n] of cases) {
    const body = Uint8Array.from({ length: n }, (_, i) => (i * 7) & 0xff);
    const dec = new FrameDecoder();
    dec.push(encodeFrame(h, body));
    const f = dec.next()!;
    assertEquals(f.header, n > 0 ? { ...h, len: n } : h);
    assertEquals(f.body, body);
    assertEquals(f.tag, undefined);
    assertEquals(dec.next(), undefined);
    assertEquals(dec.buffered, 0);
  }
});

Deno.test("encodeFrame writes len only for a non-empty body", () => {
  const dec = new FrameDecoder();
  dec.push(encodeFrame({ t: "data", s: 1 }));
  assertEquals(new TextDecoder().decode(dec.next()!.headerBytes), '{"t":"data","s":1}');
  dec.push(encodeFrame({ t: "data", s: 1 }, new Uint8Array(3)));
  assertEquals(new TextDecoder().decode(dec.next()!.headerBytes), '{"t":"data","s":1,"len":3}');
});

Deno.test("many frames arriving in one read all decode", () => {
  for (const tagged of [false, true]) {
    const { bytes, expected } = sampleStream(tagged);
    const dec = new FrameDecoder({ tagLength: tagged ? MAC_LENGTH : 0 });
    dec.push(bytes);
    assertEquals(summary(decodeAll(dec)), summary(expected));
    assertEquals(dec.buffered, 0);
  }
});

Deno.test("a frame stream split at every byte boundary decodes the same", () => {
  for (const tagged of [false, true]) {
    const { bytes, expected } = sampleStream(tagged);
    for (let cut = 0; cut <= bytes.byteLength; cut++) {
      const dec = new FrameDecoder({ tagLength: tagged ? MAC_LENGTH : 0 });
      dec.push(bytes.slice(0, cut));
      const got = decodeAll(dec);
      dec.push(bytes.slice(cut));
      got.push(...decodeAll(dec));
      assertEquals(summary(got), summary(expected), `cut at ${cut}`);
      assertEquals(dec.buffered, 0);
    }
  }
});

Deno.test("a frame stream fed one byte at a time decodes the same", () => {
  for (const tagged of [false, true]) {
    const { bytes, expected } = sampleStream(tagged);
    const dec = new FrameDecoder({ tagLength: tagged ? MAC_LENGTH : 0 });
    const got: DecodedFrame[] = [];
    for (let i = 0; i < bytes.byteLength; i++) {
      dec.push(bytes.slice(i, i + 1));
      got.push(...decodeAll(dec));
    }
    assertEquals(summary(got), summary(expected));
  }
});

Deno.test("the MAC trailer length switches at a frame boundary", () => {
  const first = encodeFrame({ t: "welcome" });
  const second = concat([encodeFrame({ t: "ping", id: 1 }), new Uint8Array(MAC_LENGTH).fill(9)]);
  const dec = new FrameDecoder();
  dec.push(concat([first, second]));
  assertEquals(dec.next()!.tag, undefined);
  dec.tagLength = MAC_LENGTH;
  assertEquals(dec.next()!.tag, new Uint8Array(MAC_LENGTH).fill(9));
});

Deno.test("decoder refuses a bad header length as soon as the 4 length bytes arrive", () => {
  const cases: [number, ErrorCode][] = [
    [0, "bad_frame"],
    [MAX_HEADER + 1, "frame_too_large"],
    [2 ** 31, "frame_too_large"],
    [2 ** 32 - 1, "frame_too_large"],
  ];
  for (const [len, code] of cases) {
    const dec = new FrameDecoder();
    dec.push(u32(len).subarray(0, 3));
    assertEquals(dec.next(), undefined, "needs the 4th byte");
    dec.push(u32(len).subarray(3));
    // Nothing beyond the prefix was sent: the decoder did not wait for (or allocate) the header.
    expectCode(code, () => dec.next(), `header length ${len}`);
    assertEquals(dec.buffered, 4);
  }
});

Deno.test("decoder accepts a header of exactly 64 KiB", () => {
  const skeleton = '{"t":"ev","ev":"x","data":""}';
  const text = skeleton.replace('""', `"${"a".repeat(MAX_HEADER - skeleton.length)}"`);
  assertEquals(enc.encode(text).byteLength, MAX_HEADER);
  const dec = new FrameDecoder();
  dec.push(rawFrame(text));
  assertEquals(dec.next()!.header.t, "ev");
  expectCode(
    "frame_too_large",
    () => encodeHeader({ t: "ev", ev: "x", data: "a".repeat(MAX_HEADER) }, 0),
  );
});

Deno.test("decoder refuses a body over the limit before any body byte arrives", () => {
  const dec = new FrameDecoder({ maxBody: 1000 });
  dec.push(rawFrame(`{"t":"data","s":1,"len":1000}`));
  assertEquals(dec.next(), undefined, "a body of exactly the limit is awaited");
  dec.push(new Uint8Array(1000));
  assertEquals(dec.next()!.body.byteLength, 1000);
  for (const len of [1001, DEFAULT_MAX_BODY, 2 ** 32 - 1, Number.MAX_SAFE_INTEGER]) {
    const d = new FrameDecoder({ maxBody: 1000 });
    const header = rawFrame(`{"t":"data","s":1,"len":${len}}`);
    d.push(header);
    expectCode("frame_too_large", () => d.next(), `len ${len}`);
    assertEquals(d.buffered, 0, "only the header was consumed");
  }
});

Deno.test("a body limit of zero refuses any body (the handshake setting)", () => {
  const dec = new FrameDecoder({ maxBody: 0 });
  dec.push(rawFrame(`{"t":"hello","len":1}`, new Uint8Array(1)));
  expectCode("frame_too_large", () => dec.next());
});

Deno.test("malformed headers are refused with typed codes", () => {
  const bad: [string, Uint8Array, ErrorCode][] = [
    ["lone continuation byte", new Uint8Array([0x80]), "bad_utf8"],
    ["0xff byte", Uint8Array.from([0x7b, 0xff, 0x7d]), "bad_utf8"],
    ["overlong slash", Uint8Array.from([0x22, 0xc0, 0xaf, 0x22]), "bad_utf8"],
    ["encoded surrogate", Uint8Array.from([0x22, 0xed, 0xa0, 0x80, 0x22]), "bad_utf8"],
    ["truncated sequence", Uint8Array.from([0x22, 0xe2, 0x82]), "bad_utf8"],
    ["byte order mark", enc.encode('\ufeff{"t":"ping","id":1}'), "bad_json"],
    ["not JSON", enc.encode("hello"), "bad_json"],
    ["truncated JSON", enc.encode('{"t":"ping"'), "bad_json"],
    ["trailing garbage", enc.encode('{"t":"ping"}x'), "bad_json"],
    ["single quotes", enc.encode("{'t':'ping'}"), "bad_json"],
    ["array", enc.encode('["t","ping"]'), "bad_header"],
    ["string", enc.encode('"ping"'), "bad_header"],
    ["number", enc.encode("42"), "bad_header"],
    ["null", enc.encode("null"), "bad_header"],
    ["true", enc.encode("true"), "bad_header"],
    ["no t", enc.encode('{"id":1}'), "bad_header"],
    ["empty t", enc.encode('{"t":""}'), "bad_header"],
    ["numeric t", enc.encode('{"t":1}'), "bad_header"],
    ["object t", enc.encode('{"t":{}}'), "bad_header"],
    ["negative len", enc.encode('{"t":"data","s":1,"len":-1}'), "bad_header"],
    ["fractional len", enc.encode('{"t":"data","s":1,"len":1.5}'), "bad_header"],
    ["string len", enc.encode('{"t":"data","s":1,"len":"5"}'), "bad_header"],
    ["null len", enc.encode('{"t":"data","s":1,"len":null}'), "bad_header"],
    ["huge len", enc.encode('{"t":"data","s":1,"len":1e300}'), "bad_header"],
    ["unsafe len", enc.encode('{"t":"data","s":1,"len":9007199254740993}'), "bad_header"],
  ];
  for (const [what, bytes, code] of bad) {
    expectCode(code, () => parseHeader(bytes, DEFAULT_MAX_BODY), what);
    const dec = new FrameDecoder();
    dec.push(rawFrame(bytes));
    expectCode(code, () => dec.next(), `${what} through the decoder`);
  }
});

// --- header validation -------------------------------------------------------

const N = "ab".repeat(32);

Deno.test("validateHeader accepts every well-formed frame type", () => {
  const good: RawHeader[] = [
    { t: "req", id: 1, op: "diag.echo", args: { a: 1 } },
    { t: "req", id: 2, op: "diag.sink", args: {}, s: 1, fin: true },
    { t: "res", id: 1, ok: true, data: [1] },
    { t: "res", id: 1, ok: false, code: "not_found", msg: "no such file" },
    { t: "ev", ev: "chat.msg", data: { text: "hi" } },
    { t: "data", s: 1 },
    { t: "data", s: 2, fin: false, len: 0 },
    { t: "win", s: 0, n: 1 },
    { t: "win", s: 5, n: 2 ** 31 - 1 },
    { t: "rst", s: 3, code: "cancel", msg: "" },
    { t: "ping", id: 0 },
    { t: "pong", id: 9 },
    { t: "error", code: "bad_mac", msg: "frame authentication failed" },
  ];
  for (const h of good) assertEquals(validateHeader({ ...h }).t, h.t);
});

Deno.test("validateHeader fills documented defaults", () => {
  assertEquals(validateHeader({ t: "req", id: 1, op: "x" }), {
    t: "req",
    id: 1,
    op: "x",
    args: {},
  });
  assertEquals(validateHeader({ t: "rst", s: 1, code: "cancel" }), {
    t: "rst",
    s: 1,
    code: "cancel",
    msg: "",
  });
  assertEquals(validateHeader({ t: "res", id: 1, ok: true }), {
    t: "res",
    id: 1,
    ok: true,
    data: null,
  });
  assertEquals(validateHeader({ t: "ev", ev: "x" }), { t: "ev", ev: "x", data: null });
});

Deno.test("validateHeader refuses wrong field types with typed codes", () => {
  const long = "x".repeat(65);
  const bad: [RawHeader, ErrorCode][] = [
    [{ t: "hello" }, "unknown_type"],
    [{ t: "welcome" }, "unknown_type"],
    [{ t: "bogus" }, "unknown_type"],
    [{ t: "req", op: "x" }, "bad_header"],
    [{ t: "req", id: "1", op: "x" }, "bad_header"],
    [{ t: "req", id: -1, op: "x" }, "bad_header"],
    [{ t: "req", id: 0.5, op: "x" }, "bad_header"],
    [{ t: "req", id: 1 }, "bad_header"],
    [{ t: "req", id: 1, op: 5 }, "bad_header"],
    [{ t: "req", id: 1, op: long }, "bad_header"],
    [{ t: "req", id: 1, op: "x", args: [] }, "bad_header"],
    [{ t: "req", id: 1, op: "x", args: null }, "bad_header"],
    [{ t: "req", id: 1, op: "x", args: "a" }, "bad_header"],
    [{ t: "req", id: 1, op: "x", s: "1" }, "bad_header"],
    [{ t: "req", id: 1, op: "x", s: 1, fin: 1 }, "bad_header"],
    [{ t: "res", id: 1 }, "bad_header"],
    [{ t: "res", id: 1, ok: "yes" }, "bad_header"],
    [{ t: "res", id: 1, ok: false, msg: "m" }, "bad_header"],
    [{ t: "res", id: 1, ok: false, code: "x" }, "bad_header"],
    [{ t: "res", id: 1, ok: false, code: "x", msg: "m".repeat(4097) }, "bad_header"],
    [{ t: "ev" }, "bad_header"],
    [{ t: "ev", ev: 1 }, "bad_header"],
    [{ t: "data" }, "bad_header"],
    [{ t: "data", s: -1 }, "bad_header"],
    [{ t: "data", s: 1, fin: "true" }, "bad_header"],
    [{ t: "win", s: 1 }, "bad_header"],
    [{ t: "win", s: 1, n: -5 }, "bad_header"],
    [{ t: "win", s: 1, n: 0 }, "flow_control"],
    [{ t: "win", s: 0, n: 0 }, "flow_control"],
    [{ t: "rst", s: 1 }, "bad_header"],
    [{ t: "rst", s: 1, code: "x", msg: 3 }, "bad_header"],
    [{ t: "ping" }, "bad_header"],
    [{ t: "pong", id: null }, "bad_header"],
    [{ t: "error", code: "x" }, "bad_header"],
    [{ t: "error", msg: "x" }, "bad_header"],
  ];
  for (const [h, code] of bad) expectCode(code, () => validateHeader({ ...h }), JSON.stringify(h));
});

Deno.test("validateHandshake accepts well-formed handshake frames", () => {
  const good: RawHeader[] = [
    { t: "hello", v: 2, user: "ada", nonce: N },
    { t: "hello", v: 2, user: "ada", nonce: N, maxBody: 4096, win: { s: 1, c: 2 ** 31 - 1 } },
    { t: "challenge", v: 2, nonce: N },
    { t: "auth", proof: N },
    { t: "welcome", proof: N, maxBody: 1024, win: { s: 10, c: 20 }, maxStreams: 1, mac: true },
    { t: "error", code: "auth_failed", msg: "authentication failed" },
  ];
  for (const h of good) assertEquals(validateHandshake({ ...h }, 32).t, h.t);
});

Deno.test("validateHandshake refuses bad handshake frames with typed codes", () => {
  const hello = { t: "hello", v: 2, user: "ada", nonce: N };
  const welcome = {
    t: "welcome",
    proof: N,
    maxBody: 1024,
    win: { s: 1, c: 1 },
    maxStreams: 1,
    mac: true,
  };
  const bad: [RawHeader, ErrorCode][] = [
    [{ t: "req", id: 1, op: "x" }, "unknown_type"],
    [{ t: "ping", id: 1 }, "unknown_type"],
    [{ ...hello, v: 1 }, "unsupported_version"],
    [{ ...hello, v: 3 }, "unsupported_version"],
    [{ ...hello, v: 0 }, "unsupported_version"],
    // The version is judged before the rest: a future hello of another shape gets a clear answer.
    [{ t: "hello", v: 3, nonce: 7 }, "unsupported_version"],
    [{ ...hello, v: "1" }, "bad_header"],
    [{ ...hello, user: undefined }, "bad_header"],
    [{ ...hello, user: 7 }, "bad_header"],
    [{ ...hello, user: "u".repeat(65) }, "bad_header"],
    [{ ...hello, nonce: N.toUpperCase() }, "bad_header"],
    [{ ...hello, nonce: N.slice(2) }, "bad_header"],
    [{ ...hello, nonce: N + "00" }, "bad_header"],
    [{ ...hello, nonce: N.slice(2) + "zz" }, "bad_header"],
    [{ ...hello, maxBody: -1 }, "bad_header"],
    [{ ...hello, maxBody: "big" }, "bad_header"],
    [{ ...hello, win: 5 }, "bad_header"],
    [{ ...hello, win: { s: 0, c: 1 } }, "bad_header"],
    [{ ...hello, win: { s: 1, c: 2 ** 31 } }, "bad_header"],
    [{ ...hello, win: { s: 1 } }, "bad_header"],
    [{ t: "challenge", v: 2 }, "bad_header"],
    [{ t: "challenge", v: 3, nonce: N }, "unsupported_version"],
    [{ t: "auth" }, "bad_header"],
    [{ t: "auth", proof: N.slice(0, 62) }, "bad_header"],
    [{ ...welcome, mac: "yes" }, "bad_header"],
    [{ ...welcome, mac: undefined }, "bad_header"],
    [{ ...welcome, maxStreams: -1 }, "bad_header"],
    [{ ...welcome, win: undefined }, "bad_header"],
    [{ ...welcome, proof: 1 }, "bad_header"],
    [{ t: "error", code: 5, msg: "x" }, "bad_header"],
  ];
  for (const [h, code] of bad) {
    expectCode(code, () => validateHandshake({ ...h } as RawHeader, 32), JSON.stringify(h));
  }
});

// --- FrameReader -------------------------------------------------------------

Deno.test("FrameReader returns null at a clean end and bad_frame mid-frame", async () => {
  const [a, b] = memoryPipe();
  const reader = new FrameReader(b);
  const frame = encodeFrame({ t: "ping", id: 1 });
  await a.write(frame);
  await a.write(frame.subarray(0, 6));
  a.close();
  assertEquals((await reader.next())?.header, { t: "ping", id: 1 });
  const e = await reader.next().then(() => undefined, (e) => e);
  assert(e instanceof ProtocolError);
  assertEquals(e.code, "bad_frame");

  const [c, d] = memoryPipe();
  const r2 = new FrameReader(d);
  await c.write(frame);
  c.close();
  assertEquals((await r2.next())?.header.t, "ping");
  assertEquals(await r2.next(), null);
});

Deno.test("FrameReader decodes large frames that span many reads", async () => {
  const [a, b] = memoryPipe();
  const reader = new FrameReader(b, { maxBody: DEFAULT_MAX_BODY });
  const bodies = [1, DEFAULT_MAX_BODY, 70_000, 0, 3].map((n) =>
    Uint8Array.from({ length: n }, (_, i) => (i * 13 + n) & 0xff)
  );
  const all = concat(bodies.map((body, i) => encodeFrame({ t: "data", s: i + 1 }, body)));
  // Deliver in odd-sized pieces so frames straddle reads.
  for (let off = 0; off < all.byteLength; off += 40_009) {
    await a.write(all.subarray(off, off + 40_009));
  }
  a.close();
  for (const [i, body] of bodies.entries()) {
    const f = await reader.next();
    assertEquals(f?.header.s, i + 1);
    assertEquals(f?.body, body);
  }
  assertEquals(await reader.next(), null);
});

Deno.test("FrameReader over TCP: large frames read in place come out whole, a cut one is bad_frame", async () => {
  using listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const accepted = listener.accept();
  const conn = await Deno.connect({ hostname: "127.0.0.1", port: listener.addr.port });
  const server = await accepted;
  try {
    const reader = new FrameReader(server, { maxBody: DEFAULT_MAX_BODY, tagLength: MAC_LENGTH });
    const bodies = [200_000, 17, DEFAULT_MAX_BODY, 65_536].map((n) =>
      Uint8Array.from({ length: n }, (_, i) => (i * 7 + n) & 0xff)
    );
    const tag = (i: number) => new Uint8Array(MAC_LENGTH).fill(i + 1);
    const frames = bodies.map((b, i) => concat([encodeFrame({ t: "data", s: 1 }, b), tag(i)]));
    const cut = concat([encodeFrame({ t: "data", s: 1 }, bodies[0]!), tag(9)]).subarray(0, 90_000);
    const writing = (async () => {
      const all = concat([...frames, cut]);
      // Pieces of odd sizes, some smaller than a header, with pauses between them.
      for (let off = 0, k = 0; off < all.byteLength; k++) {
        const n = [3, 50_000, 7, 131_071, 16_385][k % 5]!;
        const piece = all.subarray(off, off + n);
        for (let w = 0; w < piece.byteLength;) w += await conn.write(piece.subarray(w));
        off += n;
        if (k % 3 === 0) await new Promise((r) => setTimeout(r, 1));
      }
      conn.close();
    })();
    for (const [i, body] of bodies.entries()) {
      const f = await reader.next();
      assertEquals(f?.body, body, `frame ${i}`);
      assertEquals(f?.tag, tag(i), `tag ${i}`);
    }
    const e = await reader.next().then(() => undefined, (e) => e);
    assert(e instanceof ProtocolError, String(e));
    assertEquals(e.code, "bad_frame");
    await writing;
  } finally {
    server.close();
  }
});
