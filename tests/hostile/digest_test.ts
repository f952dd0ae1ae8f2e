/**
 * Tampering with the bytes of a file transfer on a plaintext connection under
 * the `digest` feature (PROTOCOL.md §4.7), where a data frame's tag covers its
 * stream's running SHA-256 instead of its body: a byte flipped in any data
 * frame of an upload or a download closes the connection with `bad_mac`
 * before the byte is used, and no file is stored. Real server, real sockets,
 * a proxy in between that flips one byte.
 *
 * @module
 */
import { assert, assertEquals } from "@std/assert";
import { join } from "@std/path";
import { ProtocolError, RemoteError } from "../../protocol/errors.ts";
import { clientHandshake } from "../../protocol/handshake.ts";
import { Session } from "../../protocol/session.ts";
import { keyBytes, startTestServer } from "../helpers.ts";
import { type Direction, type FrameHook, sha256, startMitm } from "../protocol/protocol_fixture.ts";

const SIZE = 700_000; // three data frames of at most 256 KiB
const data = Uint8Array.from({ length: SIZE }, (_, i) => (i * 31 + 7) & 255);

/** Flips one byte in the body of data frame number `nth` (0-based) going `dir`, `at` bytes in. */
function flipData(dir: Direction, nth: number, at: "first" | "last"): FrameHook {
  let seen = 0;
  return (d, i, bytes) => {
    if (d !== dir || i < 2) return bytes;
    const h = new DataView(bytes.buffer, bytes.byteOffset).getUint32(0);
    const header = JSON.parse(new TextDecoder().decode(bytes.subarray(4, 4 + h)));
    if (header.t !== "data" || !(header.len > 0) || seen++ !== nth) return bytes;
    const out = bytes.slice();
    out[at === "first" ? 4 + h : 4 + h + header.len - 1]! ^= 0x20;
    return out;
  };
}

async function login(port: number, key: string): Promise<Session> {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  const link = await clientHandshake(conn, { user: "ada", key: keyBytes(key) });
  assert(link.digest, "plaintext with both sides offering: digest is on");
  return new Session(link);
}

async function assertBadMac(session: Session): Promise<void> {
  // The server's error frame (upload), or the client's own check (download).
  const closed = await session.closed;
  if (!(closed instanceof RemoteError || closed instanceof ProtocolError)) {
    throw new Error(`closed with ${closed}`);
  }
  assertEquals(closed.code, "bad_mac");
}

Deno.test("a byte flipped in any data frame of an upload is bad_mac and stores nothing", async () => {
  for (const [nth, at] of [[0, "first"], [1, "last"], [2, "last"]] as const) {
    await using t = await startTestServer();
    const key = await t.addUser("ada");
    await using mitm = startMitm(t.port, flipData("c2s", nth, at));
    const session = await login(mitm.port, key);
    // A tagged upload: the checksum is only known at the end, so the MAC is what catches it.
    const { stream, result } = session.open("file.put", { path: "f.bin", size: SIZE, tag: "t1" });
    const wrote = stream.write(data).then(() => stream.write(new Uint8Array(32)));
    wrote.catch(() => {});
    await result.then(() => assert(false, "the upload was accepted"), () => {});
    await assertBadMac(session);
    const stored = await Deno.stat(join(t.dataDir, "files", "home", "ada", "f.bin")).then(
      () => true,
      () => false,
    );
    assertEquals(stored, false, `frame ${nth} ${at}: a tampered upload was stored`);
  }
});

Deno.test("a byte flipped in any data frame of a download is caught by the client with bad_mac", async () => {
  await using t = await startTestServer();
  const key = await t.addUser("ada");
  {
    const session = await login(t.port, key);
    const { stream, result } = session.open("file.put", {
      path: "g.bin",
      size: SIZE,
      sha256: await sha256(data),
    });
    await stream.write(data);
    stream.end();
    await result;
    await session.close();
  }
  for (const [nth, at] of [[0, "first"], [2, "last"]] as const) {
    await using mitm = startMitm(t.port, flipData("s2c", nth, at));
    const session = await login(mitm.port, key);
    const { stream, result } = session.open("file.get", { path: "g.bin" }, { fin: true });
    result.catch(() => {});
    const got: Uint8Array[] = [];
    try {
      for (let c = await stream.read(); c; c = await stream.read()) got.push(c);
    } catch {
      // the stream fails with the session
    }
    await assertBadMac(session);
    // Nothing past the tampered frame was handed to the reader.
    const n = got.reduce((a, c) => a + c.byteLength, 0);
    assert(n < SIZE, `frame ${nth}: all ${n} bytes were delivered`);
  }
});
