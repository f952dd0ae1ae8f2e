/**
 * Hostile handshakes: a slowloris client, hundreds of idle unauthenticated
 * connections and a login brute force. Each checks that other clients keep
 * logging in, no stored byte changed and memory returned near its baseline.
 *
 * @module
 */
import { assert, assertEquals, assertRejects } from "@std/assert";
import { ParleyClient } from "../../client/client.ts";
import { RemoteError } from "../../protocol/errors.ts";
import { keyBytes } from "../helpers.ts";
import { startTarget } from "./harness.ts";
import { dial, readUntilClosed, send } from "./raw.ts";
import { PROTOCOL_VERSION } from "../../protocol/limits.ts";

const enc = new TextEncoder();

Deno.test("a slowloris handshake (one byte a second) is cut off at the handshake deadline", async () => {
  await using target = await startTarget({ limits: { handshakeTimeoutMs: 1500 } });
  const hello = enc.encode(
    JSON.stringify({ t: "hello", v: PROTOCOL_VERSION, user: "ada", nonce: "cd".repeat(32) }),
  );
  const frame = new Uint8Array(4 + hello.byteLength);
  new DataView(frame.buffer).setUint32(0, hello.byteLength);
  frame.set(hello, 4);
  const conn = await dial(target.port);
  const closed = readUntilClosed(conn, { timeoutMs: 15_000 });
  let done = false;
  void closed.then(() => (done = true));
  let sent = 0;
  // At most 10 bytes: far fewer than the frame, so only the deadline can end it.
  while (!done && sent < 10) {
    if (!await send(conn, frame.subarray(sent, sent + 1))) break;
    sent++;
    // Meanwhile a normal client logs in and works.
    if (sent === 1) {
      const other = await target.client("ada");
      assertEquals(await other.call("diag.echo", { during: "slowloris" }), { during: "slowloris" });
    }
    await Promise.race([closed, new Promise((r) => setTimeout(r, 1000))]);
  }
  const out = await closed;
  assert(out.closed, "the server should close a handshake that misses its deadline");
  assert(sent < 10, `the server let ${sent} slow bytes through`);
  await target.check("slowloris");
});

Deno.test("500 idle unauthenticated connections are shed and other clients still log in", async () => {
  await using target = await startTarget({
    limits: { handshakeTimeoutMs: 1500, maxUnauthenticated: 100 },
  });
  const conns: Deno.TcpConn[] = [];
  for (let batch = 0; batch < 10; batch++) {
    conns.push(...await Promise.all(Array.from({ length: 50 }, () => dial(target.port))));
  }
  const outcomes = conns.map((c) => readUntilClosed(c, { timeoutMs: 20_000 }));
  // While they are held, a normal client logs in (the oldest idle one makes room).
  const c = await target.client("ada");
  assertEquals(await c.call("diag.echo", { during: "idle flood" }), { during: "idle flood" });
  const results = await Promise.all(outcomes);
  const open = results.filter((r) => !r.closed).length;
  assertEquals(open, 0, `${open} idle connections were never closed`);
  await target.check("500 idle connections");
});

Deno.test("a login brute force is rate limited; the right key still works for other users", async () => {
  await using target = await startTarget({
    limits: { loginFailuresPerUser: 5, loginFailuresPerAddress: 20, loginWindowMs: 1500 },
    users: ["observer", "ada", "victim"],
  });
  const attempt = (user: string, key: Uint8Array) =>
    ParleyClient.connect({ host: "127.0.0.1", port: target.port, user, key, tls: false });
  const codes: string[] = [];
  for (let i = 0; i < 8; i++) {
    const wrong = new Uint8Array(32).fill(i + 1);
    const err = await assertRejects(() => attempt("victim", wrong), RemoteError);
    codes.push(err.code);
  }
  assertEquals(codes.slice(0, 5), Array(5).fill("auth_failed"));
  assertEquals(codes.slice(5), Array(3).fill("rate_limited"));
  // While the victim's name is locked for this address, the right key is refused too...
  const locked = await assertRejects(
    () => attempt("victim", keyBytes(target.keys.victim!)),
    RemoteError,
  );
  assertEquals(locked.code, "rate_limited");
  // ...but other users log in from the same address.
  const ada = await attempt("ada", keyBytes(target.keys.ada!));
  assertEquals(await ada.call("diag.echo", { ok: true }), { ok: true });
  await ada.close();
  // Once the window has passed, the right key works again (bounded retries).
  let victim: ParleyClient | undefined;
  for (let i = 0; i < 40 && !victim; i++) {
    await new Promise((r) => setTimeout(r, 100));
    victim = await attempt("victim", keyBytes(target.keys.victim!)).catch((e) => {
      if (e instanceof RemoteError && e.code === "rate_limited") return undefined;
      throw e;
    });
  }
  if (!victim) throw new Error("the right key should work after the window");
  assertEquals(await victim.call("diag.echo", {}), {});
  await victim.close();
  await target.check("brute force");
});
