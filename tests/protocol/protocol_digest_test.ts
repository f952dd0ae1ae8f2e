/**
 * The `digest` feature (PROTOCOL.md §4.7): agreed only on plaintext and only
 * when offered; a data frame's tag then covers its stream's running SHA-256,
 * which the stream hands to its reader and writer as the SHA-256 of its bytes.
 *
 * @module
 */
import { assert, assertEquals } from "@std/assert";
import { encodeHeader } from "../../protocol/frame_codec.ts";
import {
  connectSession,
  handshakeWithForgedWelcome,
  hex,
  RawPeer,
  sha256,
  startProtocolServer,
} from "./protocol_fixture.ts";

const bytes = (n: number, seed: number) =>
  Uint8Array.from({ length: n }, (_, i) => (i * seed) & 255);

Deno.test("both sides agree to digest on plaintext; a stream's running SHA-256 is its bytes' SHA-256", async () => {
  // The default echo handler sends the stream's bytes back: both directions are hashed.
  await using srv = startProtocolServer();
  await using session = await connectSession(srv.port);
  const data = bytes(700_000, 7); // several data frames
  const { stream, result } = session.open("diag.echo", {});
  assert(stream.hashesReads && stream.hashesWrites, "the session keeps the stream's SHA-256");
  const wrote = stream.write(data);
  stream.end();
  await wrote;
  assertEquals(hex(stream.sentSha256!), await sha256(data));
  let n = 0;
  for (let c = await stream.read(); c; c = await stream.read()) n += c.byteLength;
  await result;
  assertEquals(n, data.byteLength);
  assertEquals(hex(stream.readSha256!), await sha256(data));
});

Deno.test("a data frame tagged over its body instead of the stream's SHA-256 is bad_mac", async () => {
  await using srv = startProtocolServer();
  await using peer = await RawPeer.connect(srv.port, { digest: true });
  // Correct under §4.7 first, so the connection is known to be in step…
  await peer.send({ t: "req", id: 1, op: "diag.sink", args: {}, s: 1 });
  await peer.send({ t: "data", s: 1 }, bytes(1000, 3));
  // …then a frame whose tag covers the body, as without the feature.
  const body = bytes(10, 5);
  const hb = encodeHeader({ t: "data", s: 1 }, body.byteLength);
  const asBody = peer.frameTaggedOverBody({ t: "data", s: 1 }, body, hb);
  await peer.conn.write(asBody);
  assertEquals((await peer.expectError()).code, "bad_mac");
});

Deno.test("a client that does not offer digest keeps tags over bodies; digest is never on over an offer not made", async () => {
  await using srv = startProtocolServer();
  await using peer = await RawPeer.connect(srv.port); // offers nothing
  await peer.send({ t: "req", id: 1, op: "diag.sink", args: {}, s: 1 });
  await peer.send({ t: "data", s: 1, fin: true }, bytes(5000, 9));
  let r = await peer.next(); // the echoed data (tagged over its body, checked) and the reply
  while (r && r.header.t !== "res") r = await peer.next();
  assertEquals(r?.header, { t: "res", id: 1, ok: true, data: { bytes: 5000 } });
  // A welcome that turns digest on though the client did not offer it is refused.
  assertEquals(
    await handshakeWithForgedWelcome(srv.port, { digest: true }, { digest: false }),
    "bad_header",
  );
});

Deno.test("late data for a stream the receiver reset still verifies; the connection goes on", async () => {
  await using srv = startProtocolServer({
    onRequest: async (req) => {
      if (!req.stream) return req.args;
      await req.stream.read(); // one chunk, then give up on the rest
      req.stream.reset("cancel", "enough");
      return null;
    },
  });
  await using session = await connectSession(srv.port);
  const { stream, result } = session.open("diag.sink", {});
  // The client keeps sending after the server's rst until it sees it.
  const writes = stream.write(bytes(2_000_000, 11)).catch(() => {});
  await result.catch(() => {});
  await writes;
  assertEquals(await session.call("diag.echo", { still: "here" }), { still: "here" });
  assertEquals(session.state, "open");
});
