/**
 * Streams and flow control over real TCP: a stalled receiver bounds what the
 * sender buffers while other streams keep moving, credit violations from a raw
 * peer are fatal, many concurrent streams stay byte-exact, and the stream cap
 * refuses the excess.
 *
 * @module
 */
import { assert, assertEquals, assertRejects } from "@std/assert";
import { RemoteError } from "../../protocol/errors.ts";
import type { MuxStream } from "../../protocol/mux_stream.ts";
import { type IncomingRequest, Session } from "../../protocol/session.ts";
import { FrameReader } from "../../protocol/transport.ts";
import {
  connectSession,
  echoHandler,
  memoryPipe,
  RawPeer,
  readAll,
  sha256,
  startProtocolServer,
  until,
} from "./protocol_fixture.ts";

const KiB = 1024;

function randomBytes(n: number): Uint8Array {
  const out = new Uint8Array(n);
  for (let off = 0; off < n; off += 65536) {
    crypto.getRandomValues(out.subarray(off, Math.min(n, off + 65536)));
  }
  return out;
}

/**
 * A server whose `hold` op keeps its stream unread until the test releases it,
 * then reads it to the end and returns the byte count and hash.
 */
function holdingServer(options: Parameters<typeof startProtocolServer>[0] = {}) {
  const held = new Map<number, { stream: MuxStream; release: () => void }>();
  const server = startProtocolServer({
    ...options,
    onRequest: async (req: IncomingRequest) => {
      if (req.op !== "hold") return echoHandler(req);
      const stream = req.stream!;
      await new Promise<void>((release) => held.set(stream.id, { stream, release }));
      const data = await readAll(stream);
      return { bytes: data.byteLength, sha256: await sha256(data) };
    },
  });
  return { server, held };
}

Deno.test("a receiver that stops reading stalls only its stream, bounded by the window", async () => {
  const window = { s: 64 * KiB, c: 1024 * KiB };
  const { server, held } = holdingServer({ window });
  await using _srv = server;
  await using client = await connectSession(server.port);

  const payload = randomBytes(512 * KiB);
  const { stream, result } = client.open("hold", {});
  let taken = 0;
  let writerDone = false;
  const writer = (async () => {
    for (let off = 0; off < payload.byteLength; off += 16 * KiB) {
      await stream.write(payload.subarray(off, off + 16 * KiB));
      taken += 16 * KiB;
    }
    stream.end();
    writerDone = true;
  })();

  await until(() => held.get(stream.id)?.stream.buffered === window.s, "the window to fill");
  const serverStream = held.get(stream.id)!.stream;
  // Round trips through both read loops: anything the client could still send has arrived.
  await client.ping();
  await server.sessions[0]!.ping();
  await client.ping();
  assertEquals(serverStream.buffered, window.s, "the receiver holds exactly one window");
  assert(taken <= window.s, `the sender's writes stopped resolving (${taken} bytes taken)`);
  assertEquals(writerDone, false);

  // Another stream on the same connection completes while the first is stalled.
  const other = client.open("echo", {});
  const otherData = randomBytes(1536 * KiB);
  const echoed = readAll(other.stream);
  await other.stream.write(otherData);
  other.stream.end();
  assertEquals(await other.result, { bytes: otherData.byteLength });
  assertEquals(await sha256(await echoed), await sha256(otherData));
  assertEquals(await client.call("diag.echo", { still: "interactive" }), { still: "interactive" });
  assertEquals(serverStream.buffered, window.s, "still stalled, still bounded");
  assertEquals(writerDone, false);

  // Once the receiver reads, everything arrives intact.
  held.get(stream.id)!.release();
  await writer;
  assertEquals(await result, { bytes: payload.byteLength, sha256: await sha256(payload) });
});

Deno.test("a sender waiting for credit does not hold up control frames", async () => {
  const { server, held } = holdingServer({ window: { s: 16 * KiB, c: 16 * KiB } });
  await using _srv = server;
  await using client = await connectSession(server.port);
  const { stream, result } = client.open("hold", {});
  const writing = stream.write(randomBytes(64 * KiB));
  await until(
    () => held.has(stream.id) && held.get(stream.id)!.stream.buffered === 16 * KiB,
    "fill",
  );
  // The whole connection window is used up, yet requests, replies and pings flow.
  for (let i = 0; i < 20; i++) assertEquals(await client.call("diag.echo", { i }), { i });
  await client.ping();
  held.get(stream.id)!.release();
  await writing;
  stream.end();
  assertEquals(((await result) as { bytes: number }).bytes, 64 * KiB);
});

Deno.test("50 concurrent streams over one connection arrive byte-exact", async () => {
  await using srv = startProtocolServer({ window: { s: 32 * KiB, c: 256 * KiB } });
  await using client = await connectSession(srv.port, { window: { s: 48 * KiB, c: 192 * KiB } });
  const runs = Array.from({ length: 50 }, async (_, i) => {
    const data = randomBytes(1 + ((i * 7919) % (160 * KiB)));
    const { stream, result } = client.open("echo", { i });
    const back = readAll(stream);
    for (let off = 0; off < data.byteLength; off += 10_000) {
      await stream.write(data.subarray(off, off + 10_000));
    }
    stream.end();
    assertEquals(await result, { bytes: data.byteLength });
    assertEquals(await sha256(await back), await sha256(data), `stream ${i}`);
  });
  await Promise.all(runs);
  assertEquals(client.streamCount, 0, "every stream was released");
  await until(() => srv.sessions[0]!.streamCount === 0, "server streams released");
});

Deno.test("streams beyond the cap are refused with stream_limit, and the cap frees up", async () => {
  const { server, held } = holdingServer({ maxStreams: 3 });
  await using _srv = server;
  await using client = await connectSession(server.port);
  const opened = [1, 2, 3].map(() => client.open("hold", {}, { fin: true }));
  await until(() => held.size === 3, "three held streams");
  const extra = client.open("hold", {}, { fin: true });
  const e = await assertRejects(() => extra.result, RemoteError);
  assertEquals(e.code, "stream_limit");
  await assertRejects(() => extra.stream.read());
  assertEquals(await client.call("diag.echo", { ok: 1 }), { ok: 1 }, "the connection is fine");

  const first = opened[0]!;
  held.get(first.stream.id)!.release();
  assertEquals(await first.result, { bytes: 0, sha256: await sha256(new Uint8Array(0)) });
  assertEquals(await first.stream.read(), null);
  const again = client.open("hold", {}, { fin: true });
  await until(() => held.has(again.stream.id), "the new stream to be accepted");
  for (const h of held.values()) h.release();
  await Promise.all([again.result, opened[1]!.result, opened[2]!.result]);
});

// --- violations by a raw peer ------------------------------------------------

async function expectFatal(
  setup: (peer: RawPeer) => Promise<void>,
  code: string,
  options: Parameters<typeof startProtocolServer>[0] = {},
): Promise<void> {
  const { server } = holdingServer(options);
  await using srv = server;
  await using peer = await RawPeer.connect(srv.port);
  await setup(peer);
  const err = await peer.expectError();
  assertEquals(err.code, code, err.msg);
  await peer.expectClosed();
  const why = await srv.sessions[0]!.closed;
  assertEquals((why as { code?: string }).code, code);
}

Deno.test("data beyond a stream's credit is a flow_control error", async () => {
  await expectFatal(
    async (peer) => {
      await peer.send({ t: "req", id: 1, op: "hold", args: {}, s: 1 });
      await peer.send({ t: "data", s: 1 }, new Uint8Array(2048));
      await peer.send({ t: "data", s: 1 }, new Uint8Array(1));
    },
    "flow_control",
    { window: { s: 2048, c: 1 << 20 } },
  );
});

Deno.test("a stream-opening body beyond the stream window is a flow_control error", async () => {
  await expectFatal(
    async (peer) => {
      await peer.send({ t: "req", id: 1, op: "hold", args: {}, s: 1 }, new Uint8Array(2049));
    },
    "flow_control",
    { window: { s: 2048, c: 1 << 20 } },
  );
});

Deno.test("data beyond the connection's credit is a flow_control error", async () => {
  await expectFatal(
    async (peer) => {
      await peer.send({ t: "req", id: 1, op: "hold", args: {}, s: 1 }, new Uint8Array(1500));
      await peer.send({ t: "req", id: 2, op: "hold", args: {}, s: 3 }, new Uint8Array(1500));
    },
    "flow_control",
    { window: { s: 4096, c: 2048 } },
  );
});

Deno.test("a window update of zero is a flow_control error", async () => {
  await expectFatal((peer) => peer.send({ t: "win", s: 0, n: 0 }), "flow_control");
  await expectFatal(async (peer) => {
    await peer.send({ t: "req", id: 1, op: "hold", args: {}, s: 1 });
    await peer.send({ t: "win", s: 1, n: 0 });
  }, "flow_control");
});

Deno.test("a window update past 2^31-1 is a flow_control error", async () => {
  await expectFatal((peer) => peer.send({ t: "win", s: 0, n: 2 ** 31 - 1 }), "flow_control");
  await expectFatal(async (peer) => {
    await peer.send({ t: "req", id: 1, op: "hold", args: {}, s: 1 });
    await peer.send({ t: "win", s: 1, n: 2 ** 31 - 1 });
  }, "flow_control");
});

Deno.test("a window update up to exactly 2^31-1 is accepted", async () => {
  const { server } = holdingServer();
  await using srv = server;
  await using peer = await RawPeer.connect(srv.port);
  // The client granted the default 16 MiB connection window in its hello.
  await peer.send({ t: "win", s: 0, n: 2 ** 31 - 1 - 16 * 1024 * 1024 });
  await peer.send({ t: "ping", id: 5 });
  const f = await peer.next();
  assertEquals(f?.header, { t: "pong", id: 5 });
});

Deno.test("data for a stream that was never opened is refused, data after fin too", async () => {
  await expectFatal((peer) => peer.send({ t: "data", s: 7 }, new Uint8Array(1)), "bad_header");
  await expectFatal(async (peer) => {
    await peer.send({ t: "req", id: 1, op: "hold", args: {}, s: 1, fin: true });
    await peer.send({ t: "data", s: 1 }, new Uint8Array(1));
  }, "bad_header");
});

Deno.test("a stream id that is not new and odd from the client is refused", async () => {
  for (const s of [0, 2]) {
    await expectFatal(
      (peer) => peer.send({ t: "req", id: 1, op: "hold", args: {}, s }),
      "bad_header",
    );
  }
  await expectFatal(async (peer) => {
    await peer.send({ t: "req", id: 1, op: "hold", args: {}, s: 5 });
    await peer.send({ t: "req", id: 2, op: "hold", args: {}, s: 3 });
  }, "bad_header");
});

Deno.test("late data for a stream that is gone is dropped and its credit returned", async () => {
  // Stream 1 is reset by the client, then 3 KiB more arrive for it: the server
  // discards them, and the connection window keeps working afterwards.
  const window = { s: 4096, c: 4096 };
  const { server } = holdingServer({ window });
  await using srv = server;
  await using peer = await RawPeer.connect(srv.port);
  await peer.send({ t: "req", id: 1, op: "hold", args: {}, s: 1 });
  await peer.send({ t: "rst", s: 1, code: "cancel" });
  await peer.send({ t: "data", s: 1 }, new Uint8Array(3000));
  await peer.send({ t: "req", id: 2, op: "echo", args: {}, s: 3, fin: true }, new Uint8Array(3000));
  const seen: string[] = [];
  while (true) {
    const f = await peer.next();
    if (!f) throw new Error("the connection closed");
    seen.push(f.header.t);
    if (f.header.t === "win" && f.header.s === 0) break; // credit for the dropped bytes came back
    assert(f.header.t !== "error", JSON.stringify(f.header));
  }
  assert(seen.includes("win"));
});

Deno.test("closing a session fails pending pings and requests instead of leaving them hanging", async () => {
  // The peer end of the pipe never answers, so both are pending when the session closes.
  const [near, _far] = memoryPipe();
  const session = new Session({
    role: "client",
    transport: near,
    reader: new FrameReader(near),
    sendMac: undefined,
    recvMac: undefined,
    maxBody: 1 << 20,
    localWindow: { s: 1 << 20, c: 1 << 22 },
    peerWindow: { s: 1 << 20, c: 1 << 22 },
    maxStreams: 8,
  });
  const call = session.call("diag.echo", {});
  const ping = session.ping();
  await session.close();
  await assertRejects(() => call);
  await assertRejects(() => ping);
  await assertRejects(() => session.ping());
});
