/**
 * The receiver rules of PROTOCOL.md that an implementation written from the
 * text alone would otherwise have to guess, each checked against the real
 * server with frames written by hand: the `hello.maxBody` range, how text
 * limits count, the fatal codes and when they are sent, keepalive, frames
 * that name streams never opened, unsolicited frames, repeated request ids
 * and JSON keys, integers written as `1.0`, the reply to a request whose
 * stream the requester reset, streams refused by the cap, a refused
 * `welcome`, and the §12 details (lobby membership, history order, codes).
 *
 * @module
 */
import { assert, assertEquals, assertRejects, assertStringIncludes } from "@std/assert";
import { encodeHex } from "@std/encoding/hex";
import { concat } from "@std/bytes/concat";
import { encodeFrame, encodeHeader, type OutHeader } from "../../protocol/frame_codec.ts";
import type { RawHeader } from "../../protocol/frame_codec.ts";
import { type AuthenticatedLink, clientHandshake } from "../../protocol/handshake.ts";
import { PROTOCOL_VERSION } from "../../protocol/limits.ts";
import { FrameReader, writeAll } from "../../protocol/transport.ts";
import { RemoteError } from "../../protocol/errors.ts";
import { keyBytes, startTestServer, type TestServer } from "../helpers.ts";
import { startMitm } from "./protocol_fixture.ts";
import { sleepMarker, startExecServer, waitGoneWith } from "../exec/exec_fixtures.ts";

const enc = new TextEncoder();
/** An emoji: one code point, two UTF-16 code units, four UTF-8 bytes. */
const WIDE = "\u{1F600}";

/** Rejects after `ms` with `what` (and closes `conn`), so no read waits forever. */
async function bounded<T>(p: Promise<T>, ms: number, what: string, conn: Deno.Conn): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      try {
        conn.close();
      } catch {
        // closed already
      }
      reject(new Error(`no answer within ${ms} ms: ${what}`));
    }, ms);
  });
  try {
    return await Promise.race([p, late]);
  } finally {
    clearTimeout(timer);
  }
}

/** Keys of the accounts each test server has, by user. */
const _keys = new WeakMap<TestServer, Map<string, Uint8Array>>();

/** A logged-in connection that writes frames by hand (header text as given) with valid MACs. */
class Wire implements AsyncDisposable {
  readonly conn: Deno.Conn;
  readonly link: AuthenticatedLink;
  /** Frames read so far, in order. */
  readonly seen: RawHeader[] = [];

  private constructor(conn: Deno.Conn, link: AuthenticatedLink) {
    this.conn = conn;
    this.link = link;
  }

  static async login(
    t: TestServer,
    user: string,
    options: { maxBody?: number; port?: number } = {},
  ): Promise<Wire> {
    let keys = _keys.get(t);
    if (!keys) _keys.set(t, keys = new Map());
    let key = keys.get(user);
    if (!key) keys.set(user, key = keyBytes(await t.addUser(user)));
    return Wire.loginWith(options.port ?? t.port, user, key, options);
  }

  static async loginWith(
    port: number,
    user: string,
    key: Uint8Array,
    options: { maxBody?: number } = {},
  ): Promise<Wire> {
    const conn = await Deno.connect({ hostname: "127.0.0.1", port });
    try {
      // No feature offered (§4.4): frames one by one, each MAC over its body, as an older peer.
      const link = await clientHandshake(conn, {
        user,
        key,
        batch: false,
        digest: false,
        timeoutMs: 5000,
        ...(options.maxBody ? { maxBody: options.maxBody } : {}),
      });
      return new Wire(conn, link);
    } catch (e) {
      conn.close();
      throw e;
    }
  }

  /** Sends a frame whose header is exactly `text`. */
  async sendText(text: string, body: Uint8Array = new Uint8Array(0)): Promise<void> {
    const hb = enc.encode(text);
    const prefix = new Uint8Array(4);
    new DataView(prefix.buffer).setUint32(0, hb.byteLength);
    const tag = this.link.sendMac!.next(hb, body);
    await writeAll(this.conn, concat([prefix, hb, body, tag]));
  }

  /** Sends several frames in one write. */
  async sendAll(headers: OutHeader[]): Promise<void> {
    const parts = headers.map((h) => {
      const hb = encodeHeader(h, 0);
      const prefix = new Uint8Array(4);
      new DataView(prefix.buffer).setUint32(0, hb.byteLength);
      return concat([prefix, hb, this.link.sendMac!.next(hb, new Uint8Array(0))]);
    });
    await writeAll(this.conn, concat(parts));
  }

  /** Sends a frame (its `len` set from the body). */
  send(header: OutHeader, body: Uint8Array = new Uint8Array(0)): Promise<void> {
    return this.sendText(new TextDecoder().decode(encodeHeader(header, body.byteLength)), body);
  }

  /** The next frame (MAC verified), or null when the server closed the connection. */
  async next(ms = 10_000): Promise<RawHeader | null> {
    const read = async () => {
      try {
        return await this.link.reader.next();
      } catch (e) {
        if (e instanceof Deno.errors.ConnectionReset) return null;
        throw e;
      }
    };
    const f = await bounded(read(), ms, "next frame", this.conn);
    if (f === null) return null;
    this.link.recvMac?.verify(f.headerBytes, f.body, f.tag);
    this.seen.push(f.header);
    return f.header;
  }

  /** Reads until a frame matches; throws if the connection closes first. */
  async until(match: (h: RawHeader) => boolean, what: string, ms = 10_000): Promise<RawHeader> {
    const deadline = Date.now() + ms;
    while (true) {
      const h = await this.next(Math.max(1, deadline - Date.now()));
      if (h === null) throw new Error(`closed before ${what}; saw ${JSON.stringify(this.seen)}`);
      if (match(h)) return h;
    }
  }

  /** The reply to request `id`. */
  reply(id: number): Promise<RawHeader> {
    return this.until((h) => h.t === "res" && h.id === id, `the reply to request ${id}`);
  }

  /** Sends a request without a stream and returns its reply. */
  async call(id: number, op: string, args: Record<string, unknown> = {}): Promise<RawHeader> {
    await this.send({ t: "req", id, op, args });
    return this.reply(id);
  }

  /** Reads until the server's `error` frame and the close; returns its code. */
  async fatal(): Promise<string> {
    const err = await this.until((h) => h.t === "error", "an error frame");
    while ((await this.next()) !== null) {
      // frames the server queued before the error
    }
    return err.code as string;
  }

  /** Checks the connection still works with one echo. */
  async alive(id: number): Promise<void> {
    assertEquals((await this.call(id, "diag.echo", { id })).data, { id });
  }

  [Symbol.asyncDispose](): Promise<void> {
    try {
      this.conn.close();
    } catch {
      // closed by the server
    }
    return Promise.resolve();
  }
}

/** Sends `bytes` before any handshake and returns the frames the server answers, untagged. */
async function preLogin(port: number, bytes: Uint8Array): Promise<RawHeader[]> {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  const frames: RawHeader[] = [];
  try {
    if (bytes.byteLength > 0) await writeAll(conn, bytes);
    const reader = new FrameReader(conn, { maxBody: 0 });
    while (true) {
      const f = await bounded(reader.next().catch(() => null), 10_000, "pre-login", conn);
      if (f === null) break;
      frames.push(f.header);
    }
  } finally {
    try {
      conn.close();
    } catch {
      // closed already
    }
  }
  return frames;
}

function hello(extra: Record<string, unknown>): Uint8Array {
  return encodeFrame({
    t: "hello",
    v: PROTOCOL_VERSION,
    user: "ada",
    nonce: encodeHex(new Uint8Array(32).fill(7)),
    ...extra,
  });
}

// --- §4.4 / §9: hello.maxBody ------------------------------------------------

Deno.test("hello.maxBody below 1024 is refused with bad_header; 1024 is granted exactly, never more", async () => {
  await using t = await startTestServer();
  for (const maxBody of [0, 1, 1023]) {
    const frames = await preLogin(t.port, hello({ maxBody }));
    assertEquals(frames.length, 1, JSON.stringify(frames));
    assertEquals([frames[0]!.t, frames[0]!.code], ["error", "bad_header"]);
    assertStringIncludes(frames[0]!.msg as string, "maxBody");
  }
  await using small = await Wire.login(t, "ada", { maxBody: 1024 });
  assertEquals(small.link.maxBody, 1024);
  // A body of exactly the limit is fine; one byte more is fatal.
  await small.send({ t: "req", id: 1, op: "diag.sink", args: {}, s: 1 }, new Uint8Array(1024));
  await small.send({ t: "data", s: 1, fin: true });
  assertEquals((await small.reply(1)).data, { bytes: 1024 });
  await small.send({ t: "req", id: 2, op: "diag.sink", args: {}, s: 3 }, new Uint8Array(1025));
  assertEquals(await small.fatal(), "frame_too_large");
  // Asking for more than the server's limit gets the server's limit.
  await using big = await Wire.login(t, "ada", { maxBody: 16 * 1024 * 1024 });
  assertEquals(big.link.maxBody, t.server.config.limits.maxBody);
});

// --- §1: what a "character" is ----------------------------------------------

Deno.test("text limits count code points, name and path limits count UTF-8 bytes", async () => {
  await using t = await startTestServer();
  await using w = await Wire.login(t, "ada");
  // op: at most 64 code points (128 UTF-16 code units here): accepted, then unknown.
  assertEquals((await w.call(1, WIDE.repeat(64))).code, "unknown_op");
  // chat.time format: at most 200 code points.
  const ok = await w.call(2, "chat.time", { format: WIDE.repeat(200) });
  assertEquals(ok.ok, true, JSON.stringify(ok));
  const long = await w.call(3, "chat.time", { format: WIDE.repeat(201) });
  assertEquals(long.code, "bad_request");
  // A file name in a chat message: at most 255 UTF-8 bytes (128 x "é" is 256 bytes).
  const file = { path: "shared:" + "0".repeat(32), name: "\u00e9".repeat(128), size: 1 };
  const sent = await w.call(4, "chat.send", {
    text: "",
    file: { ...file, sha256: "0".repeat(64) },
  });
  assertEquals(sent.code, "bad_request");
  assertStringIncludes(sent.msg as string, "UTF-8 bytes");
  // op: 65 code points is a malformed header.
  await w.send({ t: "req", id: 5, op: WIDE.repeat(65), args: {} });
  assertEquals(await w.fatal(), "bad_header");
});

// --- §8: fatal codes outside the handshake ------------------------------------

Deno.test("busy before hello: a connection over the cap gets one untagged error frame", async () => {
  await using t = await startTestServer({ limits: { maxConnections: 1 } });
  await using first = await Wire.login(t, "ada");
  const frames = await preLogin(t.port, new Uint8Array(0));
  assertEquals(frames.map((f) => [f.t, f.code]), [["error", "busy"]]);
  await first.alive(1);
});

Deno.test("forbidden after welcome: a banned user's login ends with a tagged error frame", async () => {
  await using t = await startTestServer();
  _keys.set(t, new Map([["mod", keyBytes(await t.addUser("mod", { admin: true }))]]));
  await using mod = await Wire.login(t, "mod");
  await using bob0 = await Wire.login(t, "bob"); // creates the account
  assertEquals((await mod.call(1, "chat.ban", { user: "bob" })).ok, true);
  assertEquals(await bob0.fatal(), "forbidden");
  // The handshake completes (welcome arrives), then the first frame, tagged, is the refusal.
  await using bob = await Wire.login(t, "bob");
  const first = await bob.next();
  assertEquals([first?.t, first?.code], ["error", "forbidden"]);
  assertEquals(await bob.next(), null);
});

Deno.test("keepalive: answering pings keeps a quiet client; not answering ends in error timeout", async () => {
  const idle = 600;
  await using t = await startTestServer({ limits: { idleTimeoutMs: idle } });
  await using w = await Wire.login(t, "ada");
  // Quiet for about 4 idle periods, answering only the server's pings.
  let pings = 0;
  const until = Date.now() + 4 * idle;
  while (Date.now() < until) {
    let h: RawHeader | null;
    try {
      h = await w.next(Math.max(1, until - Date.now()));
    } catch {
      break; // no frame before the end of the quiet spell: bounded() closed the socket
    }
    if (h === null) throw new Error(`closed although every ping was answered: ${w.seen}`);
    if (h.t === "ping") {
      pings++;
      await w.send({ t: "pong", id: h.id as number });
    }
  }
  assert(pings >= 2, `only ${pings} pings in ${4 * idle} ms`);
  await using quiet = await Wire.login(t, "ada");
  // This one answers nothing: a ping, then error timeout.
  const ping = await quiet.until((h) => h.t === "ping", "a keepalive ping");
  assertEquals(typeof ping.id, "number");
  assertEquals(await quiet.fatal(), "timeout");
});

Deno.test("a client that never reads is closed; an error frame, if one gets through, says slow_consumer", async () => {
  await using t = await startTestServer({ limits: { maxPendingBytes: 64 * 1024 } });
  await using w = await Wire.login(t, "ada");
  const args = { pad: "p".repeat(32 * 1024) };
  let sent = 0;
  try {
    for (; sent < 1000; sent++) await w.send({ t: "req", id: sent + 1, op: "diag.echo", args });
  } catch {
    // the server closed the connection while we were still writing
  }
  const codes: string[] = [];
  let replies = 0;
  while (true) {
    let h: RawHeader | null;
    try {
      h = await w.next();
    } catch {
      break; // reset, or a frame cut short by the close
    }
    if (h === null) break;
    if (h.t === "res") replies++;
    if (h.t === "error") codes.push(h.code as string);
  }
  assert(replies < sent, `all ${sent} replies were queued for a client that never reads`);
  assert(codes.every((c) => c === "slow_consumer"), JSON.stringify(codes));
});

// --- §5, §6: receiver rules ------------------------------------------------------

Deno.test("win and rst for a stream that is not open, gone or never opened, are ignored", async () => {
  await using t = await startTestServer();
  await using w = await Wire.login(t, "ada");
  await w.send({ t: "req", id: 1, op: "diag.sink", args: {}, s: 1, fin: true });
  assertEquals((await w.reply(1)).data, { bytes: 0 });
  await w.until((h) => h.t === "data" && h.s === 1 && h.fin === true, "the server's fin");
  await w.sendAll([
    { t: "win", s: 1, n: 100 }, // gone
    { t: "rst", s: 1, code: "cancel" },
    { t: "win", s: 3, n: 100 }, // an odd id the client has not opened yet
    { t: "win", s: 7, n: 100 },
    { t: "win", s: 2, n: 100 }, // an even id: the server opened none
    { t: "rst", s: 7, code: "cancel" },
    { t: "rst", s: 2, code: "cancel" },
    { t: "rst", s: 0, code: "cancel" },
  ]);
  await w.alive(2);
  // An id named by an ignored win can still be opened.
  await w.send({ t: "req", id: 3, op: "diag.sink", args: {}, s: 3, fin: true });
  assertEquals((await w.reply(3)).data, { bytes: 0 });
  assertEquals(w.seen.filter((h) => h.t === "rst" || h.t === "error"), []);
  // Data is different: for a stream never opened it is fatal.
  await w.send({ t: "data", s: 9 }, enc.encode("x"));
  assertEquals(await w.fatal(), "bad_header");
});

Deno.test("an unsolicited pong and an event from the client are ignored", async () => {
  await using t = await startTestServer();
  await using w = await Wire.login(t, "ada");
  await w.send({ t: "pong", id: 12345 });
  await w.send({ t: "ev", ev: "chat.msg", data: { text: "not from a client" } });
  await w.send({ t: "ev", ev: "no.such.event" });
  await w.alive(1);
  assertEquals(w.seen.filter((h) => h.t !== "res"), []);
});

Deno.test("a request id still awaiting its reply may not be reused; an answered one may", async () => {
  await using t = await startTestServer();
  await using w = await Wire.login(t, "ada");
  await w.alive(7);
  await w.alive(7); // answered, so free again
  await w.send({ t: "req", id: 5, op: "diag.sink", args: {}, s: 1 }); // stays open
  await w.send({ t: "req", id: 5, op: "diag.echo", args: {} });
  assertEquals(await w.fatal(), "bad_header");
  assert(!w.seen.some((h) => h.t === "res" && h.id === 5), JSON.stringify(w.seen));
});

Deno.test("a repeated key in any object of a header is bad_header", async () => {
  await using t = await startTestServer();
  for (
    const text of [
      '{"t":"req","id":1,"op":"diag.echo","op":"chat.send","args":{}}',
      '{"t":"req","id":1,"op":"diag.echo","args":{"a":1,"a":2}}',
      '{"t":"req","id":1,"op":"diag.echo","args":{"a":1,"\\u0061":2}}',
      '{"t":"req","id":1,"op":"diag.echo","args":{"x":[{"k":1,"k":1}]}}',
    ]
  ) {
    await using w = await Wire.login(t, "ada");
    await w.sendText(text);
    assertEquals(await w.fatal(), "bad_header", text);
  }
  // The same key in different objects is fine.
  await using w = await Wire.login(t, "ada");
  await w.sendText('{"t":"req","id":1,"op":"diag.echo","args":{"t":{"t":1},"id":[{"id":2}]}}');
  assertEquals((await w.reply(1)).data, { t: { t: 1 }, id: [{ id: 2 }] });
  // Before the handshake too.
  const text = `{"t":"hello","v":${PROTOCOL_VERSION},"v":${PROTOCOL_VERSION},"user":"ada"}`;
  const b = enc.encode(text);
  const frames = await preLogin(t.port, concat([new Uint8Array([0, 0, 0, b.byteLength]), b]));
  assertEquals(frames.map((f) => [f.t, f.code]), [["error", "bad_header"]]);
});

Deno.test("integers are JSON numbers compared by value: 1.0 and 1e0 are 1, 1.5 is refused", async () => {
  await using t = await startTestServer();
  await using w = await Wire.login(t, "ada");
  await w.sendText('{"t":"req","id":1.0,"op":"diag.echo","args":{}}');
  assertEquals((await w.reply(1)).ok, true);
  await w.sendText('{"t":"req","id":2e0,"op":"diag.echo","args":{}}');
  assertEquals((await w.reply(2)).ok, true);
  await w.sendText('{"t":"req","id":30E-1,"op":"chat.history","args":{"limit":1.0e1}}');
  assertEquals((await w.reply(3)).ok, true);
  await w.sendText('{"t":"req","id":1.5,"op":"diag.echo","args":{}}');
  assertEquals(await w.fatal(), "bad_header");
});

// --- §6.2, §6.3: resets and the stream cap ----------------------------------------

Deno.test("a request whose stream the requester reset is answered with cancel, whatever the op", async () => {
  await using t = await startTestServer();
  await using w = await Wire.login(t, "ada");
  // Client → server (the server reads), server → client (the server writes), both ways.
  await w.send({ t: "req", id: 1, op: "diag.sink", args: {}, s: 1 }, enc.encode("some"));
  await w.send({ t: "req", id: 2, op: "diag.source", args: { bytes: 2 ** 30 }, s: 3, fin: true });
  await w.send({ t: "req", id: 3, op: "diag.stream", args: {}, s: 5 }, enc.encode("echo"));
  await w.until((h) => h.t === "data" && h.s === 3, "data from diag.source");
  await w.until((h) => h.t === "data" && h.s === 5, "data from diag.stream");
  await w.sendAll([1, 3, 5].map((s) => ({ t: "rst", s, code: "cancel", msg: "gave up" })));
  for (const id of [1, 2, 3]) {
    const r = await w.reply(id);
    assertEquals([r.ok, r.code], [false, "cancel"], JSON.stringify(r));
  }
  // The server sends no rst back for a stream the requester reset.
  assertEquals(w.seen.filter((h) => h.t === "rst"), []);
  await w.alive(4);
});

Deno.test("an exec run and its stderr stream reset by the requester are answered with cancel", async () => {
  await using t = await startExecServer({ sandbox: false }); // the same replies with or without bwrap
  _keys.set(t, new Map([["eve", keyBytes(await t.addUser("eve", { exec: true }))]]));
  await using w = await Wire.login(t, "eve");
  const m = sleepMarker();
  const token = "resetbyrequester";
  await w.send({ t: "req", id: 1, op: "exec.stderr", args: { token }, s: 1, fin: true });
  const argv = ["sh", "-c", `echo up; sleep ${m}`];
  await w.send({ t: "req", id: 2, op: "exec.run", args: { token, argv }, s: 3, fin: true });
  await w.until((h) => h.t === "data" && h.s === 3, "the command's output");
  // In one write, so that both arrive while the command still runs.
  await w.sendAll([{ t: "rst", s: 3, code: "cancel" }, { t: "rst", s: 1, code: "cancel" }]);
  for (const id of [1, 2]) {
    const r = await w.reply(id);
    assertEquals([r.ok, r.code], [false, "cancel"], JSON.stringify(r));
  }
  assertEquals(await waitGoneWith(m), [], "the command was not killed");
  // exec.run's cwd is limited in UTF-8 bytes: 2049 x "é" is 2049 code units but 4098 bytes.
  const cwd = "\u00e9".repeat(2049);
  await w.send({
    t: "req",
    id: 3,
    op: "exec.stderr",
    args: { token: "cwdtoolong" },
    s: 5,
    fin: true,
  });
  await w.send({ t: "req", id: 4, op: "exec.run", args: { token: "cwdtoolong", argv, cwd }, s: 7 });
  const refused = await w.reply(4);
  assertEquals(refused.code, "bad_request");
  assertStringIncludes(refused.msg as string, "UTF-8 bytes");
});

Deno.test("a stream refused by the cap gets stream_limit and no rst; later data for it is dropped", async () => {
  await using t = await startTestServer({ limits: { maxStreams: 2 } });
  await using w = await Wire.login(t, "ada");
  await w.send({ t: "req", id: 1, op: "diag.sink", args: {}, s: 1 });
  await w.send({ t: "req", id: 2, op: "diag.sink", args: {}, s: 3 });
  await w.send({ t: "req", id: 3, op: "diag.sink", args: {}, s: 5 }, enc.encode("refused"));
  assertEquals((await w.reply(3)).code, "stream_limit");
  await w.send({ t: "data", s: 5, fin: true }, enc.encode("dropped"));
  await w.alive(4);
  assertEquals(w.seen.filter((h) => h.t === "rst"), []);
  // The refused id counts as used: it cannot be opened again.
  await w.send({ t: "req", id: 5, op: "diag.sink", args: {}, s: 5 });
  assertEquals(await w.fatal(), "bad_header");
});

Deno.test("a client that refuses welcome closes without sending an error frame", async () => {
  await using t = await startTestServer();
  const key = keyBytes(await t.addUser("ada"));
  // Flip one hex digit of the server proof in welcome.
  await using mitm = startMitm(t.port, (dir, _i, bytes) => {
    const text = new TextDecoder().decode(bytes);
    const at = text.indexOf('"proof":"');
    if (dir !== "s2c" || !text.includes('"welcome"') || at < 0) return bytes;
    const out = bytes.slice();
    const i = at + 9;
    out[i] = out[i] === 0x30 ? 0x31 : 0x30;
    return out;
  });
  const e = await assertRejects(() => Wire.loginWith(mitm.port, "ada", key), Error);
  assertEquals((e as { code?: string }).code, "auth_failed");
  // Let the proxy see the close, then check the client sent nothing after its auth.
  for (let i = 0; i < 100 && mitm.frames.s2c.length < 2; i++) {
    await new Promise((r) => setTimeout(r, 20));
  }
  const sent = mitm.frames.c2s.map((b) => JSON.parse(new TextDecoder().decode(b.subarray(4))).t);
  assertEquals(sent, ["hello", "auth"]);
});

// --- §12 details -------------------------------------------------------------------

Deno.test("§12: no room without chat.join, history oldest first, codes of rmdir, get on a directory", async () => {
  await using t = await startTestServer();
  await using w = await Wire.login(t, "ada");
  // Not in the default room until chat.join.
  const before = await w.call(1, "chat.who", { room: "lobby" });
  assertEquals((before.data as { users: unknown[] }).users, []);
  for (let i = 0; i < 3; i++) await w.call(10 + i, "chat.send", { text: `m${i}` });
  const joined = await w.call(2, "chat.join", {});
  const names = (await w.call(3, "chat.who", { room: "lobby" })).data as {
    users: { name: string }[];
  };
  assertEquals(names.users.map((u) => u.name), ["ada"]);
  const history = (joined.data as { history: { id: string; text: string }[] }).history;
  assertEquals(history.map((m) => m.text), ["m0", "m1", "m2"]);
  const page = (await w.call(4, "chat.history", { limit: 2 })).data as {
    messages: { text: string }[];
  };
  assertEquals(page.messages.map((m) => m.text), ["m1", "m2"]);
  // Files: rmdir of a non-empty directory, get of a directory.
  await w.call(5, "file.mkdir", { path: "d" });
  await w.call(6, "file.mkdir", { path: "d/e" });
  assertEquals((await w.call(7, "file.rmdir", { path: "d" })).code, "bad_request");
  await w.send({ t: "req", id: 8, op: "file.get", args: { path: "d" }, s: 1, fin: true });
  assertEquals((await w.reply(8)).code, "bad_request");
  // file.stat/file.ls take sha256 as a flag; file.put/file.offset as hex.
  const stat = await w.call(9, "file.stat", { path: "d", sha256: true });
  assertEquals(stat.ok, true);
  const offset = await w.call(20, "file.offset", { path: "x", size: 1, sha256: true });
  assertEquals(offset.code, "bad_request");
  const hexed = await w.call(21, "file.offset", { path: "x", size: 1, sha256: "0".repeat(64) });
  assertEquals(hexed.data, { offset: 0, busy: false });
});

Deno.test("the reference client reports a server refusal as a RemoteError with the code", async () => {
  await using t = await startTestServer();
  const c = await t.connect("ada");
  const e = await assertRejects(() => c.call("chat.time", { format: WIDE.repeat(201) }));
  assert(e instanceof RemoteError && e.code === "bad_request", String(e));
});
