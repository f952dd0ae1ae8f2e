/**
 * Hostile frames after a real login: replayed, reordered, bit-flipped and
 * forged frames (the per-frame MAC must catch them), frames of the wrong
 * shape with valid MACs, and a client that never reads. After each case the
 * server still serves others, no stored byte changed and memory returned
 * near its baseline.
 *
 * @module
 */
import { assert, assertEquals } from "@std/assert";
import { encodeHeader, type OutHeader } from "../../protocol/frame_codec.ts";
import { FrameMac } from "../../protocol/auth.ts";
import { startTarget, type Target } from "./harness.ts";
import { concat, macFrame, rawFrame, rawLogin, type RawSession, send } from "./raw.ts";
import { PROTOCOL_VERSION } from "../../protocol/limits.ts";

const ECHO: OutHeader = { t: "req", id: 1, op: "diag.echo", args: { a: 1 } };

/** A post-login case: `attack` writes to the raw session; the server must answer `code` and close. */
interface Case {
  name: string;
  code: string;
  attack: (raw: RawSession) => Promise<unknown>;
}

/** Frame bytes with a valid MAC for the next sequence number. */
const framed = (raw: RawSession, h: OutHeader, body?: Uint8Array) => macFrame(raw.mac, h, body);

const CASES: Case[] = [
  {
    name: "a replayed frame",
    code: "bad_mac",
    attack: async (raw) => {
      const f = framed(raw, ECHO);
      await send(raw.conn, f);
      await send(raw.conn, f);
    },
  },
  {
    name: "two frames swapped in order",
    code: "bad_mac",
    attack: (raw) => {
      const first = framed(raw, ECHO);
      const second = framed(raw, { ...ECHO, id: 2 });
      return send(raw.conn, concat(second, first));
    },
  },
  {
    name: "a dropped frame (sequence gap)",
    code: "bad_mac",
    attack: (raw) => {
      framed(raw, ECHO); // computed, never sent
      return send(raw.conn, framed(raw, { ...ECHO, id: 2 }));
    },
  },
  {
    name: "a bit flipped in the header (still valid JSON)",
    code: "bad_mac",
    attack: (raw) => {
      const f = framed(raw, { ...ECHO, id: 1 });
      const i = f.indexOf(0x31, 4); // the "1" of the id: "1" ^ 0x02 = "3"
      f[i]! ^= 0x02;
      return send(raw.conn, f);
    },
  },
  {
    name: "a bit flipped in the body",
    code: "bad_mac",
    attack: (raw) => {
      const f = framed(
        raw,
        { t: "req", id: 1, op: "diag.sink", args: {}, s: 1 },
        new Uint8Array(64),
      );
      f[f.byteLength - 40]! ^= 0x80;
      return send(raw.conn, f);
    },
  },
  {
    name: "a bit flipped in the MAC",
    code: "bad_mac",
    attack: (raw) => {
      const f = framed(raw, ECHO);
      f[f.byteLength - 1]! ^= 0x01;
      return send(raw.conn, f);
    },
  },
  {
    name: "a frame with no MAC",
    code: "bad_mac",
    attack: (raw) => send(raw.conn, concat(rawFrame(encodeHeader(ECHO, 0)), new Uint8Array(40))),
  },
  {
    name: "a frame signed with another session's key",
    code: "bad_mac",
    attack: (raw) => send(raw.conn, macFrame(new FrameMac(new Uint8Array(32).fill(9)), ECHO)),
  },
  {
    name: "a body longer than declared",
    code: "bad_mac",
    attack: (raw) => {
      const h = encodeHeader({ t: "req", id: 1, op: "diag.sink", args: {}, s: 1 }, 8);
      const body = new Uint8Array(8);
      const tag = raw.mac.next(h, body);
      return send(raw.conn, concat(rawFrame(h, body), new Uint8Array(5), tag));
    },
  },
  {
    name: "a request id that is a string",
    code: "bad_header",
    attack: (raw) => raw.sendFrame({ t: "req", id: "1", op: "diag.echo" }),
  },
  {
    name: "a numeric op",
    code: "bad_header",
    attack: (raw) => raw.sendFrame({ t: "req", id: 1, op: 42 }),
  },
  {
    name: "an op name of 65 characters",
    code: "bad_header",
    attack: (raw) => raw.sendFrame({ t: "req", id: 1, op: "x".repeat(65) }),
  },
  {
    name: "args that are an array",
    code: "bad_header",
    attack: (raw) => raw.sendFrame({ t: "req", id: 1, op: "diag.echo", args: [1] }),
  },
  {
    name: "a request body without a stream",
    code: "bad_header",
    attack: (raw) => raw.sendFrame({ t: "req", id: 1, op: "diag.echo" }, new Uint8Array(3)),
  },
  {
    name: "an even (server-side) stream id from the client",
    code: "bad_header",
    attack: (raw) => raw.sendFrame({ t: "req", id: 1, op: "diag.sink", args: {}, s: 2 }),
  },
  {
    name: "a negative stream id in data",
    code: "bad_header",
    attack: (raw) => raw.sendFrame({ t: "data", s: -1 }),
  },
  {
    name: "data for a stream never opened",
    code: "bad_header",
    attack: (raw) => raw.sendFrame({ t: "data", s: 99 }, new Uint8Array(4)),
  },
  {
    name: "a zero window update",
    code: "flow_control",
    attack: (raw) => raw.sendFrame({ t: "win", s: 0, n: 0 }),
  },
  {
    name: "a window update that overflows 2^31-1",
    code: "flow_control",
    attack: (raw) => raw.sendFrame({ t: "win", s: 0, n: 2 ** 31 - 1 }),
  },
  {
    name: "a reply to a request never made",
    code: "bad_header",
    attack: (raw) => raw.sendFrame({ t: "res", id: 77, ok: true, data: null }),
  },
  {
    name: "an unknown frame type after login",
    code: "unknown_type",
    attack: (raw) => raw.sendFrame({ t: "teleport" }),
  },
  {
    name: "a handshake frame after login",
    code: "unknown_type",
    attack: (raw) =>
      raw.sendFrame({ t: "hello", v: PROTOCOL_VERSION, user: "ada", nonce: "00".repeat(32) }),
  },
];

async function login(target: Target): Promise<RawSession> {
  return await rawLogin(target.port, "ada", target.keys.ada!);
}

Deno.test("forged, replayed and ill-typed frames after login close only that connection", async (t) => {
  await using target = await startTarget();
  for (const c of CASES) {
    await t.step(c.name, async () => {
      const raw = await login(target);
      await c.attack(raw);
      const out = await raw.outcome(5000);
      assertEquals(out.error, c.code, JSON.stringify(out.frames));
      assert(out.closed);
      await target.check(c.name);
    });
  }
});

Deno.test("non-fatal abuse after login gets an error reply and the session stays usable", async () => {
  await using target = await startTarget();
  const raw = await login(target);
  const reader = raw.link.reader;
  await raw.sendFrame({ t: "req", id: 1, op: "no.such.op", args: {} });
  let f = await reader.next();
  assertEquals([f?.header.t, f?.header.ok, f?.header.code], ["res", false, "unknown_op"]);
  // A reset for a stream that does not exist is ignored.
  await raw.sendFrame({ t: "rst", s: 5, code: "x", msg: "" });
  // Deeply nested arguments: parsed, and the reply is either the echo or a clean error.
  const deep = "[".repeat(20_000) + "]".repeat(20_000);
  const header = new TextEncoder().encode(
    `{"t":"req","id":2,"op":"diag.echo","args":{"d":${deep}}}`,
  );
  await send(raw.conn, concat(rawFrame(header), raw.mac.next(header, new Uint8Array(0))));
  f = await reader.next();
  assertEquals([f?.header.t, f?.header.id], ["res", 2]);
  await raw.sendFrame({ t: "req", id: 3, op: "diag.echo", args: { still: "ok" } });
  f = await reader.next();
  assertEquals(f?.header.data, { still: "ok" });
  raw.conn.close();
  await target.check("non-fatal abuse");
});

Deno.test("a client that never reads is disconnected once maxPendingBytes queue up", async () => {
  await using target = await startTarget({ limits: { maxPendingBytes: 256 * 1024 } });
  const raw = await login(target);
  const args = { pad: "p".repeat(32 * 1024) };
  // 1000 echoes of 32 KiB: far more reply bytes than socket buffers plus the limit.
  let sent = 0;
  while (sent < 1000) {
    if (!await send(raw.conn, framed(raw, { t: "req", id: sent + 1, op: "diag.echo", args }))) {
      break;
    }
    sent++;
  }
  // Only now start reading: without the limit every reply would arrive and the
  // connection would stay open.
  const out = await raw.outcome(10_000);
  const replies = out.frames.filter((f) => f.t === "res").length;
  assert(out.closed, "the server should close a connection whose client never reads");
  assert(replies < sent, `all ${sent} replies were queued for a client that never reads`);
  await target.check("slow consumer");
});

Deno.test("a client that asks for a huge download and never reads holds one window, not the file", async () => {
  await using target = await startTarget({ limits: { idleTimeoutMs: 1500 } });
  const raw = await login(target);
  await raw.sendFrame({
    t: "req",
    id: 1,
    op: "diag.source",
    args: { bytes: 2 ** 30 },
    s: 1,
    fin: true,
  });
  // The server can send at most the stream window; then it waits. Its pings go
  // unanswered, so the idle timeout ends the connection.
  const out = await raw.outcome(20_000);
  assert(out.closed);
  const data = out.frames.filter((f) => f.t === "data").reduce((n, f) => n + Number(f.len ?? 0), 0);
  assert(data <= 4 * 1024 * 1024, `the server sent ${data} bytes beyond the window`);
  assertEquals(out.error, "timeout");
  await target.check("never-reading download");
});
