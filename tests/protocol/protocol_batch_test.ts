/**
 * Batch frames (PROTOCOL.md §5.5): agreed in the handshake or not used at
 * all, several control frames under one MAC when agreed, and every malformed
 * batch refused with its documented code. Real sockets, the real Session.
 *
 * @module
 */
import { assert, assertEquals } from "@std/assert";
import { encodeBatchBody, splitBatch } from "../../protocol/frame_batch.ts";
import { clientHandshake } from "../../protocol/handshake.ts";
import { Session } from "../../protocol/session.ts";
import { RemoteError } from "../../protocol/errors.ts";
import {
  type FrameHook,
  handshakeWithForgedWelcome,
  RawPeer,
  startMitm,
  startProtocolServer,
  TEST_KEY,
} from "./protocol_fixture.ts";

const enc = new TextEncoder();
const headers = (...texts: string[]) => texts.map((t) => enc.encode(t));

Deno.test("a client that offers batch frames gets them from the server, one MAC for many replies", async () => {
  await using srv = startProtocolServer();
  await using peer = await RawPeer.connect(srv.port, { batch: true });
  // Three pings in one write: the server answers the three pongs in one turn, as one batch.
  await peer.send({
    t: "batch",
  }, encodeBatchBody(headers('{"t":"ping","id":1}', '{"t":"ping","id":2}', '{"t":"ping","id":3}')));
  const f = await peer.next();
  if (f === null) throw new Error("closed before the pongs");
  assertEquals(f.header.t, "batch");
  assertEquals(splitBatch(f.body).map((x) => x.header), [
    { t: "pong", id: 1 },
    { t: "pong", id: 2 },
    { t: "pong", id: 3 },
  ]);
  // The session is still in step: a lone request gets a lone reply.
  await peer.send({ t: "req", id: 1, op: "diag.echo", args: { a: 1 } });
  const r = await peer.next();
  assertEquals(r?.header, { t: "res", id: 1, ok: true, data: { a: 1 } });
});

Deno.test("a client that does not offer batch frames never gets one, and may not send one", async () => {
  await using srv = startProtocolServer();
  await using peer = await RawPeer.connect(srv.port); // offers nothing, as an older client
  await peer.send({ t: "ping", id: 1 });
  await peer.send({ t: "ping", id: 2 });
  const got = [(await peer.next())?.header, (await peer.next())?.header];
  assertEquals(got, [{ t: "pong", id: 1 }, { t: "pong", id: 2 }]);
  await peer.send({ t: "batch" }, encodeBatchBody(headers('{"t":"ping","id":3}')));
  const e = await peer.expectError();
  assertEquals(e.code, "unknown_type");
});

/** Batch bodies that are fatal, with the code each gets (§5.5). */
const BAD: [string, Uint8Array, string][] = [
  ["an empty batch", new Uint8Array(0), "bad_header"],
  [
    "an inner frame that announces a body",
    encodeBatchBody(headers('{"t":"ev","ev":"x","len":3}')),
    "bad_header",
  ],
  ["a batch inside a batch", encodeBatchBody(headers('{"t":"batch"}')), "bad_header"],
  [
    "a data frame inside",
    encodeBatchBody(headers('{"t":"data","s":1,"fin":true}')),
    "bad_header",
  ],
  ["a handshake frame inside", encodeBatchBody(headers('{"t":"hello"}')), "unknown_type"],
  ["a cut inner length", Uint8Array.from([0, 0, 0]), "bad_frame"],
  ["a cut inner header", Uint8Array.from([0, 0, 0, 9, 0x7b]), "bad_frame"],
  ["an inner header length of 0", Uint8Array.from([0, 0, 0, 0]), "bad_frame"],
  ["inner JSON that is not an object", encodeBatchBody(headers("[1]")), "bad_header"],
  ["inner bytes that are not JSON", encodeBatchBody(headers("{nope")), "bad_json"],
  [
    "an inner header that is not UTF-8, after a good one",
    encodeBatchBody([
      enc.encode('{"t":"ping","id":1}'),
      Uint8Array.from([...enc.encode('{"t":"ping","x":"'), 0xc3, 0x28, ...enc.encode('"}')]),
    ]),
    "bad_utf8",
  ],
  [
    "an encoded surrogate in an inner header",
    encodeBatchBody([
      Uint8Array.from([...enc.encode('{"t":"ping","x":"'), 0xed, 0xa0, 0x80, 0x22, 0x7d]),
    ]),
    "bad_utf8",
  ],
];

Deno.test("inner headers split exactly, ASCII or not, whatever bytes their lengths hold", () => {
  // Lengths whose low byte is 0x80 or more, text in several scripts, escapes and C1-range bytes.
  const values = [
    "plain",
    "héllo wörld",
    "日本語のテキスト",
    "emoji 😀 and ✓",
    '\u0000 " quote',
    "x".repeat(200),
  ];
  const sent = values.map((v, i) => ({
    t: "ev",
    ev: "chat.msg",
    id: i,
    data: { text: v + "y".repeat(i * 37) },
  }));
  const got = splitBatch(encodeBatchBody(sent.map((h) => enc.encode(JSON.stringify(h)))));
  assertEquals(got.map((f) => f.header), sent);
  assertEquals(
    got.map((f) => new TextDecoder().decode(f.headerBytes)),
    sent.map((h) => JSON.stringify(h)),
  );
});

Deno.test("malformed batches close the connection with their documented codes", async () => {
  await using srv = startProtocolServer();
  for (const [what, body, code] of BAD) {
    await using peer = await RawPeer.connect(srv.port, { batch: true });
    await peer.send({ t: "batch" }, body);
    const e = await peer.expectError();
    assertEquals(e.code, code, what);
    await peer.expectClosed();
  }
});

Deno.test("frames before a fatal inner frame are acted upon, those after it are not", async () => {
  await using srv = startProtocolServer();
  await using peer = await RawPeer.connect(srv.port, { batch: true });
  await peer.send(
    { t: "batch" },
    encodeBatchBody(headers('{"t":"ping","id":1}', '{"t":"nope"}', '{"t":"ping","id":2}')),
  );
  // The pong and the error may come as frames of their own or inside a batch: flatten.
  const seen: unknown[] = [];
  for (let f = await peer.next(); f && !seen.includes("unknown_type"); f = await peer.next()) {
    const inner = f.header.t === "batch" ? splitBatch(f.body).map((x) => x.header) : [f.header];
    for (const h of inner) {
      seen.push(h.t === "error" ? (h as unknown as { code: string }).code : h);
    }
  }
  assertEquals(seen, [{ t: "pong", id: 1 }, "unknown_type"]);
});

Deno.test("a welcome that turns on batch frames the client did not offer is refused", async () => {
  await using srv = startProtocolServer();
  assertEquals(
    await handshakeWithForgedWelcome(srv.port, { batch: true }, { batch: false }),
    "bad_header",
  );
});

Deno.test("a byte flipped inside a batch closes the connection with bad_mac", async () => {
  await using srv = startProtocolServer();
  // Frame 2 from the client is its first authenticated one: the batch of two requests.
  const flip: FrameHook = (dir, i, bytes) => {
    if (dir !== "c2s" || i !== 2) return bytes;
    const out = bytes.slice();
    const at = new TextDecoder().decode(out).indexOf('"b"');
    assert(at > 0, "the second request is inside the batch");
    out[at + 1]! ^= 0x01; // "b" → "c": a valid frame, but not the one that was sent
    return out;
  };
  await using mitm = startMitm(srv.port, flip);
  const conn = await Deno.connect({ hostname: "127.0.0.1", port: mitm.port });
  const link = await clientHandshake(conn, { user: "ada", key: TEST_KEY });
  assert(link.batch, "both sides agreed to batch frames");
  await using session = new Session(link);
  const calls = await Promise.allSettled([
    session.call("diag.echo", { a: 1 }),
    session.call("diag.echo", { b: 2 }),
  ]);
  assert(calls.every((c) => c.status === "rejected"), "no request ran");
  const closed = await session.closed;
  if (!(closed instanceof RemoteError)) throw new Error(`closed with ${closed}`);
  assertEquals(closed.code, "bad_mac");
  assertEquals(
    await srv.sessions[0]!.closed.then((e) => (e as { code?: string })?.code),
    "bad_mac",
  );
});

Deno.test("an event queued while the request is being handled goes out with its reply, in one write", async () => {
  // As a chat message echoed to its sender: the event is queued first, the reply some
  // microtasks later. Sent apart, over TLS the reply would wait on Nagle's algorithm.
  await using srv = startProtocolServer({
    onRequest: async (req, session) => {
      session.emit("note", { for: req.id });
      for (let i = 0; i < 20; i++) await Promise.resolve();
      return { done: true };
    },
  });
  await using peer = await RawPeer.connect(srv.port, { batch: true });
  for (const id of [1, 2, 3]) {
    await peer.send({ t: "req", id, op: "x", args: {} });
    const f = await peer.next();
    if (f === null) throw new Error("closed before the reply");
    assertEquals(f.header.t, "batch", `request ${id}: event and reply came apart`);
    assertEquals(splitBatch(f.body).map((x) => x.header), [
      { t: "ev", ev: "note", data: { for: id } },
      { t: "res", id, ok: true, data: { done: true } },
    ]);
  }
  // An event with no request in hand still goes out at once.
  srv.sessions[0]!.emit("alone", null);
  assertEquals((await peer.next())?.header, { t: "ev", ev: "alone", data: null });
});

Deno.test("events queued one by one in one turn of the event loop go out in one write", async () => {
  // As a cluster feed hands over messages as they arrive: each event is queued
  // in its own microtask, with no request in hand.
  await using srv = startProtocolServer();
  await using peer = await RawPeer.connect(srv.port, { batch: true });
  await peer.send({ t: "ping", id: 1 });
  assertEquals((await peer.next())?.header, { t: "pong", id: 1 });
  const session = srv.sessions[0]!;
  for (let n = 0; n < 10; n++) {
    session.emit("msg", { n });
    await Promise.resolve();
  }
  const f = await peer.next();
  if (f === null) throw new Error("closed before the events");
  assertEquals(f.header.t, "batch", "the events came apart");
  assertEquals(
    splitBatch(f.body).map((x) => x.header),
    Array.from({ length: 10 }, (_, n) => ({ t: "ev", ev: "msg", data: { n } })),
  );
});
