/**
 * Every connection limit in `config.json` is enforced: each test sets one
 * limit low, crosses it, and checks both the refusal and that other clients
 * keep working.
 *
 * @module
 */
import { assert, assertEquals, assertMatch, assertRejects } from "@std/assert";
import { join } from "@std/path";
import { DEFAULT_LIMITS, loadConfig } from "../server/config.ts";
import { RemoteError } from "../protocol/errors.ts";
import type { ParleyClient } from "../client/client.ts";
import { startTestServer } from "./helpers.ts";
import { dial, rawLogin, readUntilClosed } from "./hostile/raw.ts";

/** Retries `fn` until it succeeds (bounded): the server frees slots asynchronously. */
async function eventually<T>(fn: () => Promise<T>, tries = 100): Promise<T> {
  for (let i = 1;; i++) {
    try {
      return await fn();
    } catch (e) {
      if (i >= tries) throw e;
      await new Promise((r) => setTimeout(r, 50));
    }
  }
}

Deno.test("config.json limits override the defaults", async () => {
  const dir = await Deno.makeTempDir({ prefix: "parley-limits-" });
  try {
    await Deno.writeTextFile(
      join(dir, "config.json"),
      JSON.stringify({ limits: { maxPerIp: 7, idleTimeoutMs: 0 } }),
    );
    const config = await loadConfig({ dataDir: dir, limits: { maxStreams: 9 } });
    assertEquals(config.limits.maxPerIp, 7);
    assertEquals(config.limits.idleTimeoutMs, 0);
    assertEquals(config.limits.maxStreams, 9);
    assertEquals(config.limits.maxConnections, DEFAULT_LIMITS.maxConnections);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("config.json with an unknown or ill-typed limit is refused with a clear message", async () => {
  const dir = await Deno.makeTempDir({ prefix: "parley-limits-" });
  try {
    const cases: [unknown, RegExp][] = [
      [{ maxConection: 5 }, /unknown limit maxConection/],
      [{ maxPerIp: "ten" }, /maxPerIp/],
      [{ maxBody: 10 }, /maxBody/],
      [{ handshakeTimeoutMs: 1.5 }, /handshakeTimeoutMs/],
      [{ maxStreams: -1 }, /maxStreams/],
    ];
    for (const [limits, message] of cases) {
      await Deno.writeTextFile(join(dir, "config.json"), JSON.stringify({ limits }));
      const err = await assertRejects(() => loadConfig({ dataDir: dir }), TypeError);
      assertMatch(err.message, message);
    }
    await Deno.writeTextFile(join(dir, "config.json"), "[1, 2]");
    await assertRejects(() => loadConfig({ dataDir: dir }), TypeError, "JSON object");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("a connection beyond maxConnections gets a busy error; others keep working", async () => {
  await using t = await startTestServer({ limits: { maxConnections: 2 } });
  const a = await t.connect("ada");
  await t.connect("bob");
  const out = await readUntilClosed(await dial(t.port));
  assertEquals(out.error, "busy");
  assert(out.closed);
  assertEquals(await a.call("diag.echo", { ok: 1 }), { ok: 1 });
  await a.close();
  const c = await eventually(() => t.connect("cy"));
  assertEquals(await c.call("diag.echo", { ok: 2 }), { ok: 2 });
});

Deno.test("a connection beyond maxPerIp gets a busy error and a freed slot is reused", async () => {
  await using t = await startTestServer({ limits: { maxPerIp: 2 } });
  const a = await t.connect("ada");
  await t.connect("bob");
  const err = await assertRejects(() => t.connect("cy"), RemoteError);
  assertEquals(err.code, "busy");
  assertMatch(err.message, /per-ip/);
  await a.close();
  const c = await eventually(() => t.connect("cy"));
  assertEquals(await c.call("diag.echo", {}), {});
});

Deno.test("maxUnauthenticated drops the oldest unfinished handshake, so a new client logs in", async () => {
  await using t = await startTestServer({ limits: { maxUnauthenticated: 3 } });
  const idle = await Promise.all([dial(t.port), dial(t.port), dial(t.port)]);
  const oldest = readUntilClosed(idle[0]!);
  // Wait until the server has seen all three before adding a fourth.
  await eventually(() =>
    t.server.unauthenticatedCount === 3 ? Promise.resolve() : Promise.reject(new Error("not yet"))
  );
  const c = await t.connect("ada");
  assert((await oldest).closed, "the oldest idle handshake should have been closed");
  assertEquals(await c.call("diag.echo", { x: 1 }), { x: 1 });
  assert(t.server.unauthenticatedCount <= 3);
  for (const conn of idle.slice(1)) conn.close();
});

Deno.test("a handshake that does not finish within handshakeTimeoutMs is closed", async () => {
  await using t = await startTestServer({ limits: { handshakeTimeoutMs: 300 } });
  const out = await readUntilClosed(await dial(t.port), { timeoutMs: 10_000 });
  assert(out.closed, "the server should close a silent connection at its deadline");
  const c = await t.connect("ada");
  assertEquals(await c.call("diag.echo", {}), {});
});

Deno.test("a quiet client that answers keepalive pings stays connected past idleTimeoutMs", async () => {
  // Generous figures so a loaded machine still answers each ping well within the timeout.
  await using t = await startTestServer({ limits: { idleTimeoutMs: 2000 } });
  const c = await t.connect("ada");
  let state = "open";
  c.onState((s) => (state = s));
  await new Promise((r) => setTimeout(r, 5000)); // several idle periods without a request
  assertEquals(state, "open");
  assertEquals(await c.call("diag.echo", { still: "here" }), { still: "here" });
});

Deno.test("a client that never answers pings is closed with a timeout after idleTimeoutMs", async () => {
  await using t = await startTestServer({ limits: { idleTimeoutMs: 400 } });
  const key = await t.addUser("mute");
  const raw = await rawLogin(t.port, "mute", key);
  const out = await raw.outcome(10_000);
  assert(out.frames.some((f) => f.t === "ping"), "the server should ping a quiet client first");
  assertEquals(out.error, "timeout");
  assert(out.closed);
});

Deno.test("idleTimeoutMs 0 turns the idle timeout and pings off", async () => {
  await using t = await startTestServer({ limits: { idleTimeoutMs: 0 } });
  const key = await t.addUser("mute");
  const raw = await rawLogin(t.port, "mute", key);
  const out = await raw.outcome(800);
  assertEquals(out.frames, []);
  assertEquals(out.closed, false);
});

Deno.test("a frame body over the negotiated maxBody closes that connection only", async () => {
  await using t = await startTestServer({ limits: { maxBody: 64 * 1024 } });
  const other = await t.connect("bob");
  const key = await t.addUser("ada");
  const raw = await rawLogin(t.port, "ada", key);
  assertEquals(raw.link.maxBody, 64 * 1024);
  await raw.sendFrame(
    { t: "req", id: 1, op: "diag.sink", args: {}, s: 1 },
    new Uint8Array(65 * 1024),
  );
  const out = await raw.outcome();
  assertEquals(out.error, "frame_too_large");
  assert(out.closed);
  assertEquals(await other.call("diag.echo", { y: 1 }), { y: 1 });
});

Deno.test("streams beyond maxStreams are refused with stream_limit; open ones keep working", async () => {
  await using t = await startTestServer({ limits: { maxStreams: 2 } });
  const c: ParleyClient = await t.connect("ada");
  const s1 = c.open("diag.stream", {});
  const s2 = c.open("diag.stream", {});
  const s3 = c.open("diag.stream", {});
  const err = await assertRejects(() => s3.result, RemoteError);
  assertEquals(err.code, "stream_limit");
  for (const { stream, result } of [s1, s2]) {
    await stream.write(new Uint8Array([1, 2, 3]));
    stream.end();
    const got = [];
    for (let b = await stream.read(); b; b = await stream.read()) got.push(...b);
    assertEquals(got, [1, 2, 3]);
    assertEquals(await result, { bytes: 3 });
  }
  const s4 = c.open("diag.sink", {}, { fin: true });
  assertEquals(await s4.result, { bytes: 0 });
});

Deno.test("data beyond the granted stream window is a flow_control error", async () => {
  await using t = await startTestServer({
    limits: { streamWindow: 64 * 1024, maxBody: 256 * 1024 },
  });
  const key = await t.addUser("ada");
  const raw = await rawLogin(t.port, "ada", key);
  assertEquals(raw.link.peerWindow.s, 64 * 1024);
  await raw.sendFrame(
    { t: "req", id: 1, op: "diag.sink", args: {}, s: 1 },
    new Uint8Array(100_000),
  );
  const out = await raw.outcome();
  assertEquals(out.error, "flow_control");
  assert(out.closed);
});

Deno.test("a client that stops reading while data flows is disconnected after writeStallMs", async () => {
  await using t = await startTestServer({ limits: { writeStallMs: 300, idleTimeoutMs: 0 } });
  const other = await t.connect("bob");
  const key = await t.addUser("ada");
  // Grant far more credit than the socket buffers hold, then never read: the server's writes stall.
  const raw = await rawLogin(t.port, "ada", key, { window: { s: 2 ** 30, c: 2 ** 30 } });
  await raw.sendFrame({
    t: "req",
    id: 1,
    op: "diag.source",
    args: { bytes: 2 ** 30 },
    s: 1,
    fin: true,
  });
  await eventually(() => {
    assertEquals(t.server.connectionCount, 1, "the stalled client should be gone");
    return Promise.resolve();
  }, 200);
  assertEquals(await other.call("diag.echo", { still: "here" }), { still: "here" });
  const out = await raw.outcome(5_000);
  assert(out.closed);
});
