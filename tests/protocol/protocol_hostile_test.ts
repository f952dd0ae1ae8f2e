/**
 * Hostile input against the real Parley server: malformed, oversized and
 * out-of-place frames before and after login each get an `error` frame with
 * their code and a closed connection, while another client of the same server
 * keeps working, mid-transfer, untouched.
 *
 * @module
 */
import { assertEquals } from "@std/assert";
import { FrameReader, writeAll } from "../../protocol/transport.ts";
import { keyBytes, startTestServer } from "../helpers.ts";
import { concat, hex, RawPeer, readAll, sha256 } from "./protocol_fixture.ts";

const enc = new TextEncoder();
const NONCE = hex(new Uint8Array(32).fill(1));

function u32(n: number): Uint8Array {
  const b = new Uint8Array(4);
  new DataView(b.buffer).setUint32(0, n);
  return b;
}
function raw(header: string | Uint8Array, body = new Uint8Array(0)): Uint8Array {
  const h = typeof header === "string" ? enc.encode(header) : header;
  return concat([u32(h.byteLength), h, body]);
}

/** Bytes sent before login, and the error code the server must answer with. */
const PRE_AUTH: [string, Uint8Array, string][] = [
  ["header length 0", u32(0), "bad_frame"],
  ["header length 2^32-1", u32(2 ** 32 - 1), "frame_too_large"],
  ["header length 64 KiB + 1", u32(64 * 1024 + 1), "frame_too_large"],
  [
    "a body during the handshake",
    raw(`{"t":"hello","len":10}`, new Uint8Array(10)),
    "frame_too_large",
  ],
  ["invalid UTF-8", raw(Uint8Array.from([0x7b, 0xc3, 0x28, 0x7d])), "bad_utf8"],
  ["not JSON", raw("GET / HTTP/1.1"), "bad_json"],
  ["a JSON array", raw("[1,2]"), "bad_header"],
  ["a frame type from after the handshake", raw(`{"t":"ping","id":1}`), "unknown_type"],
  ["auth before hello", raw(`{"t":"auth","proof":"${NONCE}"}`), "bad_header"],
  [
    "a future version",
    raw(`{"t":"hello","v":3,"user":"ada","nonce":"${NONCE}"}`),
    "unsupported_version",
  ],
  [
    "a version 1 client",
    raw(`{"t":"hello","v":1,"user":"ada","nonce":"${NONCE}"}`),
    "unsupported_version",
  ],
  ["a short nonce", raw(`{"t":"hello","v":2,"user":"ada","nonce":"abcd"}`), "bad_header"],
  ["a numeric user", raw(`{"t":"hello","v":2,"user":5,"nonce":"${NONCE}"}`), "bad_header"],
];

Deno.test("bad frames before login get an error frame with their code and a closed connection", async () => {
  await using t = await startTestServer();
  const bystander = await t.connect("bob");
  for (const [what, bytes, code] of PRE_AUTH) {
    const conn = await Deno.connect({ hostname: "127.0.0.1", port: t.port });
    try {
      await writeAll(conn, bytes);
      const reader = new FrameReader(conn);
      const f = await reader.next();
      assertEquals([f?.header.t, f?.header.code], ["error", code], what);
      assertEquals(await reader.next(), null, `${what}: connection closed`);
    } finally {
      conn.close();
    }
    assertEquals(await bystander.call("diag.echo", { what }), { what });
  }
});

Deno.test("protocol violations after login close only the offending connection", async () => {
  await using t = await startTestServer();
  const key = keyBytes(await t.addUser("mallory"));
  const bystander = await t.connect("bob");

  // A transfer in flight on the bystander's connection for the whole test.
  const payload = crypto.getRandomValues(new Uint8Array(60_000));
  const { stream, result } = bystander.open("diag.stream", {});
  const echoed = readAll(stream);
  let sent = 0;
  const writeSome = async () => {
    for (let i = 0; i < 4; i++, sent++) await stream.write(payload);
  };

  const cases: [string, (p: RawPeer) => Promise<void>, string][] = [
    ["an unknown frame type", (p) => p.send({ t: "bogus" }), "unknown_type"],
    ["a wrong field type", (p) => p.send({ t: "req", id: "x", op: "diag.echo" }), "bad_header"],
    ["a reply to no request", (p) => p.send({ t: "res", id: 77, ok: true }), "bad_header"],
    [
      "a forged MAC",
      (p) => writeAll(p.conn, p.frame({ t: "ping", id: 1 }, undefined, new Uint8Array(32))),
      "bad_mac",
    ],
    [
      "a body over the limit",
      (p) => writeAll(p.conn, raw(`{"t":"data","s":1,"len":2000000}`)),
      "frame_too_large",
    ],
    ["header length 0", (p) => writeAll(p.conn, u32(0)), "bad_frame"],
    ["invalid JSON", (p) => writeAll(p.conn, raw("{nope")), "bad_json"],
    [
      "a body on a plain request",
      (p) => p.send({ t: "req", id: 1, op: "diag.echo" }, new Uint8Array(3)),
      "bad_header",
    ],
  ];
  for (const [what, attack, code] of cases) {
    await using peer = await RawPeer.connect(t.port, { user: "mallory", key });
    await writeSome();
    await attack(peer);
    const err = await peer.expectError();
    assertEquals(err.code, code, `${what}: ${err.msg}`);
    await peer.expectClosed();
    assertEquals(await bystander.call("diag.echo", { what }), { what });
  }
  stream.end();
  assertEquals(await result, { bytes: sent * payload.byteLength });
  const expected = concat(Array.from({ length: sent }, () => payload));
  assertEquals(await sha256(await echoed), await sha256(expected));
});

Deno.test("hand-written frames after the handshake get the replies PROTOCOL.md describes", async () => {
  // The same frames a client in another language would write by hand.
  await using t = await startTestServer();
  const key = keyBytes(await t.addUser("ada"));
  await using peer = await RawPeer.connect(t.port, { user: "ada", key });
  await peer.send({ t: "req", id: 1, op: "diag.echo", args: { x: [1, 2] } });
  await peer.send(
    { t: "req", id: 2, op: "diag.sink", args: {}, s: 1, fin: true },
    enc.encode("hello"),
  );
  await peer.send({ t: "req", id: 3, op: "no.such.op", args: {} });
  await peer.send({ t: "ping", id: 42 });
  const seen = new Map<string, unknown>();
  while (seen.size < 4) {
    const f = await peer.next();
    if (!f) throw new Error("closed early");
    const h = f.header as Record<string, unknown>;
    if (h.t === "res") seen.set(`res${h.id}`, h);
    if (h.t === "pong") seen.set("pong", h);
  }
  assertEquals(seen.get("res1"), { t: "res", id: 1, ok: true, data: { x: [1, 2] } });
  assertEquals(seen.get("res2"), { t: "res", id: 2, ok: true, data: { bytes: 5 } });
  assertEquals((seen.get("res3") as { code: string }).code, "unknown_op");
  assertEquals(seen.get("pong"), { t: "pong", id: 42 });
});
