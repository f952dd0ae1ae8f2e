/**
 * Authentication over real TCP: the handshake, wrong keys and unknown users,
 * replayed and reflected proofs, and a man in the middle that tampers with,
 * reorders, replays, injects or drops authenticated frames.
 *
 * @module
 */
import { assert, assertEquals, assertNotEquals, assertRejects } from "@std/assert";
import { clientHandshake } from "../../protocol/handshake.ts";
import { encodeFrame, type RawHeader } from "../../protocol/frame_codec.ts";
import { ProtocolError, RemoteError } from "../../protocol/errors.ts";
import { FrameReader, writeAll } from "../../protocol/transport.ts";
import type { Session } from "../../protocol/session.ts";
import {
  concat,
  connectSession,
  type Direction,
  type FrameHook,
  hex,
  type MitmProxy,
  startMitm,
  startProtocolServer,
  TEST_KEY,
  unhex,
} from "./protocol_fixture.ts";

const OTHER_KEY = new Uint8Array(32).fill(0x5a);

/** Connects a raw socket and reads the server's frames (no MAC: handshake only). */
async function rawHandshakeConn(port: number) {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  const reader = new FrameReader(conn, { maxBody: 1 << 20 });
  return {
    conn,
    send: (bytes: Uint8Array) => writeAll(conn, bytes),
    next: async () => (await reader.next())?.header as RawHeader | undefined,
    [Symbol.dispose]() {
      try {
        conn.close();
      } catch {
        // closed by the server already
      }
    },
  };
}

/** Awaits `p`, failing the test if it has not settled after 5 s. */
async function within<T>(p: Promise<T>, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const guard = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`gave up waiting for ${what}`)), 5000);
  });
  try {
    return await Promise.race([p, guard]);
  } finally {
    clearTimeout(timer);
  }
}

function codeOf(e: unknown): string | undefined {
  return e instanceof ProtocolError || e instanceof RemoteError ? e.code : undefined;
}

Deno.test("a client and server authenticate each other over TCP and exchange requests", async () => {
  await using srv = startProtocolServer();
  await using session = await connectSession(srv.port);
  assertEquals(await session.call("diag.echo", { n: 1 }), { n: 1 });
  assertEquals(srv.sessions.length, 1);
  assert((await session.ping()) >= 0);
  assertEquals(srv.handshakeErrors, []);
});

Deno.test("a wrong key is refused with auth_failed on both sides", async () => {
  await using srv = startProtocolServer();
  const e = await assertRejects(() => connectSession(srv.port, { key: OTHER_KEY }), RemoteError);
  assertEquals(e.code, "auth_failed");
  assertEquals(srv.sessions.length, 0);
  assertEquals(codeOf(srv.handshakeErrors[0]), "auth_failed");
});

Deno.test("an unknown user gets exactly the same answer as a wrong key", async () => {
  await using srv = startProtocolServer();
  const wrongKey = await assertRejects(
    () => connectSession(srv.port, { key: OTHER_KEY }),
    RemoteError,
  );
  const unknown = await assertRejects(
    () => connectSession(srv.port, { user: "nobody" }),
    RemoteError,
  );
  assertEquals(unknown.code, wrongKey.code);
  assertEquals(unknown.message, wrongKey.message);
});

Deno.test("a server that does not know the key is refused by the client", async () => {
  await using srv = startProtocolServer({ users: { ada: OTHER_KEY } });
  // The server fails the client's proof first; the client never sees a server proof.
  const e = await assertRejects(() => connectSession(srv.port), RemoteError);
  assertEquals(e.code, "auth_failed");
});

Deno.test("a recorded client proof replayed into a new session is refused", async () => {
  await using srv = startProtocolServer();
  await using mitm = startMitm(srv.port);
  {
    await using s = await connectSession(mitm.port);
    await s.call("diag.echo", {});
  }
  const [hello, auth] = mitm.frames.c2s;
  using raw = await rawHandshakeConn(srv.port);
  await raw.send(hello!);
  assertEquals((await raw.next())?.t, "challenge");
  await raw.send(auth!);
  const reply = await raw.next();
  assertEquals(reply?.t, "error");
  assertEquals(reply?.code, "auth_failed");
  assertEquals(await raw.next(), undefined, "connection closed");
  assertEquals(srv.sessions.length, 1);
});

Deno.test("a server proof reflected back as a client proof is refused, even with equal nonces", async () => {
  // A server with a fixed nonce lets the attacker reproduce the exact nonces of a
  // recorded session; only the role byte in the proof then stands in the way.
  const sn = new Uint8Array(32).fill(0x33);
  await using srv = startProtocolServer({ nonce: sn });
  await using mitm = startMitm(srv.port);
  {
    await using s = await connectSession(mitm.port);
    await s.call("diag.echo", {});
  }
  const [hello, auth] = mitm.frames.c2s;
  const welcome = new TextDecoder().decode(mitm.frames.s2c[1]!.subarray(4));
  const serverProof = (JSON.parse(welcome) as { proof: string }).proof;
  const clientProof = (JSON.parse(new TextDecoder().decode(auth!.subarray(4))) as { proof: string })
    .proof;
  assertNotEquals(serverProof, clientProof);

  // Sanity: with these nonces, the recorded client proof itself is accepted.
  {
    using raw = await rawHandshakeConn(srv.port);
    await raw.send(hello!);
    assertEquals((await raw.next())?.nonce, hex(sn));
    await raw.send(auth!);
    assertEquals((await raw.next())?.t, "welcome");
  }
  // The server's proof for the same nonces is not.
  using raw = await rawHandshakeConn(srv.port);
  await raw.send(hello!);
  assertEquals((await raw.next())?.t, "challenge");
  await raw.send(encodeFrame({ t: "auth", proof: serverProof }));
  const reply = await raw.next();
  assertEquals([reply?.t, reply?.code], ["error", "auth_failed"]);
});

/** Asserts that a client's handshake with whatever listens on `port` fails with auth_failed. */
async function assertClientRefuses(port: number): Promise<void> {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  try {
    const e = await assertRejects(
      () => clientHandshake(conn, { user: "ada", key: TEST_KEY }),
      ProtocolError,
    );
    assertEquals(e.code, "auth_failed");
  } finally {
    conn.close();
  }
}

Deno.test("a fake server that reflects the client's own proof is refused by the client", async () => {
  using listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const fake = (async () => {
    using conn = await listener.accept();
    const reader = new FrameReader(conn);
    await reader.next(); // hello
    const nonce = hex(crypto.getRandomValues(new Uint8Array(32)));
    await writeAll(conn, encodeFrame({ t: "challenge", v: 2, nonce }));
    const auth = (await reader.next())!.header as RawHeader & { proof: string };
    await writeAll(
      conn,
      encodeFrame({
        t: "welcome",
        proof: auth.proof,
        maxBody: 1 << 20,
        win: { s: 1 << 20, c: 1 << 22 },
        maxStreams: 8,
        mac: true,
      }),
    );
    await reader.next().catch(() => null); // wait for the client to hang up
  })();
  await assertClientRefuses((listener.addr as Deno.NetAddr).port);
  await fake;
});

Deno.test("a welcome that switches the MAC off on plaintext is refused", async () => {
  await using srv = startProtocolServer();
  const downgrade: FrameHook = (dir, i, bytes) => {
    if (dir !== "s2c" || i !== 1) return bytes;
    const h = JSON.parse(new TextDecoder().decode(bytes.subarray(4)));
    return encodeFrame({ ...h, mac: false });
  };
  await using mitm = startMitm(srv.port, downgrade);
  await assertClientRefuses(mitm.port);
});

// --- frames altered after login ----------------------------------------------

/** Runs a client through a proxy with `hook`, sends two requests, returns both sides' close errors. */
async function attack(
  hook: FrameHook,
  drive: (s: Session) => Promise<unknown>,
): Promise<{ client: Error | undefined; server: Error | undefined; mitm: MitmProxy }> {
  await using srv = startProtocolServer();
  const mitm = startMitm(srv.port, hook);
  try {
    await using session = await connectSession(mitm.port);
    await within(drive(session).catch(() => {}), "the requests to settle");
    // A guard, not a timing assertion: an undetected attack leaves both sessions open.
    const client = await within(session.closed, "the client session to close");
    const server = await within(srv.sessions[0]!.closed, "the server session to close");
    return { client, server, mitm };
  } finally {
    await mitm[Symbol.asyncDispose]();
  }
}

/** Two requests in two frames: the second is queued after the first was written. */
const twoCalls = async (s: Session) => {
  const first = s.call("diag.echo", { a: 1 });
  first.catch(() => {}); // settled below; an attack may fail it while we wait
  await new Promise((r) => setTimeout(r, 0));
  return await Promise.allSettled([first, s.call("diag.echo", { b: 2 })]);
};

/** Flips one bit at `offset` from the start (negative: from the end) of a frame. */
function flip(bytes: Uint8Array, offset: number): Uint8Array {
  const out = bytes.slice();
  const at = offset < 0 ? out.byteLength + offset : offset;
  out[at]! ^= 0x01;
  return out;
}

/** A hook that rewrites frame `index` of direction `dir` with `edit` and passes the others on. */
function atFrame(
  dir: Direction,
  index: number,
  edit: (bytes: Uint8Array) => Uint8Array,
): FrameHook {
  return (d, i, bytes) => (d === dir && i === index ? edit(bytes) : bytes);
}

Deno.test("a bit flipped in an authenticated client frame closes the connection with bad_mac", async () => {
  // Offsets: inside the op name in the header ("diag.echo" → "diag.dcho"), and in the tag.
  for (const where of ["header", "tag"] as const) {
    const hook: FrameHook = (dir, i, bytes) => {
      if (dir !== "c2s" || i !== 2) return bytes;
      if (where === "tag") return flip(bytes, -1);
      const at = new TextDecoder().decode(bytes).indexOf("echo");
      return flip(bytes, at);
    };
    const r = await attack(hook, twoCalls);
    assertEquals(codeOf(r.server), "bad_mac", where);
    assert(r.server instanceof ProtocolError, "the server detected it");
    assertEquals(codeOf(r.client), "bad_mac", "the client was told why");
    assert(r.client instanceof RemoteError);
  }
});

Deno.test("a bit flipped in a stream's data body closes the connection with bad_mac", async () => {
  const hook: FrameHook = (dir, _i, bytes) => {
    const head = new TextDecoder().decode(bytes.subarray(4, 40));
    return dir === "c2s" && head.startsWith('{"t":"data"') ? flip(bytes, -40) : bytes;
  };
  const r = await attack(hook, async (s) => {
    const { stream, result } = s.open("diag.stream", {});
    await stream.write(new Uint8Array(1000).fill(7));
    stream.end();
    await result;
  });
  assertEquals(codeOf(r.server), "bad_mac");
});

Deno.test("a bit flipped in a server frame is caught by the client with bad_mac", async () => {
  const hook = atFrame("s2c", 2, (bytes) => flip(bytes, -5));
  const r = await attack(hook, twoCalls);
  assert(r.client instanceof ProtocolError, "the client detected it");
  assertEquals(codeOf(r.client), "bad_mac");
  assertEquals(codeOf(r.server), "bad_mac", "the server was told why");
});

Deno.test("two authenticated frames swapped in transit are refused", async () => {
  let held: Uint8Array | undefined;
  const hook: FrameHook = (dir, i, bytes) => {
    if (dir !== "c2s") return bytes;
    if (i === 2) {
      held = bytes;
      return new Uint8Array(0);
    }
    if (i === 3) return concat([bytes, held!]);
    return bytes;
  };
  const r = await attack(hook, twoCalls);
  assertEquals(codeOf(r.server), "bad_mac");
  assertEquals(r.mitm.frames.c2s.length >= 4, true);
});

Deno.test("an authenticated frame replayed in the same session is refused", async () => {
  const hook = atFrame("c2s", 2, (bytes) => concat([bytes, bytes]));
  const r = await attack(hook, (s) => s.call("diag.echo", {}));
  assertEquals(codeOf(r.server), "bad_mac");
});

Deno.test("an injected frame with a made-up MAC is refused", async () => {
  const forged = concat([encodeFrame({ t: "ping", id: 99 }), new Uint8Array(32).fill(0xee)]);
  const hook = atFrame("c2s", 2, (bytes) => concat([forged, bytes]));
  const r = await attack(hook, (s) => s.call("diag.echo", {}));
  assertEquals(codeOf(r.server), "bad_mac");
});

Deno.test("a frame injected into the server's direction is refused by the client", async () => {
  const forged = concat([
    encodeFrame({ t: "ev", ev: "chat.msg", data: { text: "fake" } }),
    unhex("00".repeat(32)),
  ]);
  const hook = atFrame("s2c", 2, (bytes) => concat([forged, bytes]));
  const r = await attack(hook, (s) => s.call("diag.echo", {}));
  assertEquals(codeOf(r.client), "bad_mac");
});

Deno.test("a dropped authenticated frame is detected by the next frame's sequence number", async () => {
  const hook = atFrame("c2s", 2, () => new Uint8Array(0));
  const r = await attack(hook, twoCalls);
  assertEquals(codeOf(r.server), "bad_mac");
});

Deno.test("the proxy passes an untouched session through unharmed", async () => {
  // The control case for the attacks above: same proxy, identity hook.
  await using srv = startProtocolServer();
  await using mitm = startMitm(srv.port);
  await using s = await connectSession(mitm.port);
  const results = await twoCalls(s);
  assertEquals(results.map((r) => r.status), ["fulfilled", "fulfilled"]);
  const { stream, result } = s.open("diag.stream", {});
  const writing = stream.write(new Uint8Array(300_000).fill(1)).then(() => stream.end());
  let n = 0;
  for (let b = await stream.read(); b; b = await stream.read()) n += b.byteLength;
  await writing;
  assertEquals(await result, { bytes: 300_000 });
  assertEquals(n, 300_000);
});
