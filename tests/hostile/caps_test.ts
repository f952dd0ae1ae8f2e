/**
 * One user cannot take the server from the others: requests in flight are
 * capped per connection and per user (the excess is answered `busy` at once
 * and the connection stays usable), and the stream bytes the server buffers
 * for one user, over any number of connections, stay within that user's
 * budget (`maxBufferedPerUser`), as does data sent on a stream whose
 * operation has ended.
 *
 * @module
 */
import { assert, assertEquals, assertThrows } from "@std/assert";
import { createHash } from "node:crypto";
import type { RawHeader } from "../../protocol/frame_codec.ts";
import type { MuxStream } from "../../protocol/mux_stream.ts";
import { Session } from "../../protocol/session.ts";
import { rawLogin, type RawSession } from "./raw.ts";
import { startTarget } from "./harness.ts";
import { startTestServer } from "../helpers.ts";
import { DEFAULT_LIMITS, validateLimits } from "../../server/config.ts";
import { UserBudgets } from "../../server/user_budget.ts";
import { ProtocolError } from "../../protocol/errors.ts";

const KiB = 1024;
const MiB = 1024 * KiB;

/**
 * Reads frames from a raw session until `want` returns true for the replies
 * collected so far; closes the connection (and fails) after `timeoutMs`.
 */
async function replies(
  raw: RawSession,
  want: (res: Map<number, RawHeader>) => boolean,
  timeoutMs = 15_000,
): Promise<Map<number, RawHeader>> {
  const got = new Map<number, RawHeader>();
  const timer = setTimeout(() => raw.conn.close(), timeoutMs);
  try {
    while (!want(got)) {
      const frame = await raw.link.reader.next();
      if (frame === null) throw new Error(`connection closed; replies so far: ${[...got.keys()]}`);
      const h = frame.header;
      if (h.t === "error") throw new Error(`server closed the connection: ${h.code}`);
      if (h.t === "res") got.set(h.id as number, h);
    }
    return got;
  } finally {
    clearTimeout(timer);
  }
}

/** Opens `n` `diag.sink` streams that stay open (no fin): each holds a request in flight. */
async function holdSinks(raw: RawSession, firstId: number, n: number): Promise<number[]> {
  const ids: number[] = [];
  for (let i = 0; i < n; i++) {
    const id = firstId + i;
    ids.push(id);
    await raw.sendFrame({ t: "req", id, op: "diag.sink", args: {}, s: 2 * id - 1 });
  }
  return ids;
}

/** Ends the streams opened by {@linkcode holdSinks}: their requests complete. */
async function release(raw: RawSession, ids: number[]): Promise<void> {
  for (const id of ids) await raw.sendFrame({ t: "data", s: 2 * id - 1, fin: true });
}

function codes(res: Map<number, RawHeader>, ids: number[]): string[] {
  return ids.map((id) => res.get(id)?.ok === true ? "ok" : String(res.get(id)?.code));
}

Deno.test("requests past the per-connection cap get busy at once; the connection keeps working", async () => {
  await using target = await startTarget({
    limits: { maxRequestsPerConnection: 8, maxRequestsPerUser: 100 },
  });
  const raw = await rawLogin(target.port, "ada", target.keys.ada!);
  try {
    const held = await holdSinks(raw, 1, 8);
    const extra = [9, 10, 11, 12, 13];
    for (const id of extra) await raw.sendFrame({ t: "req", id, op: "diag.echo", args: { id } });
    const res = await replies(raw, (r) => extra.every((id) => r.has(id)));
    assertEquals(codes(res, extra), extra.map(() => "busy"));
    assert(
      /in flight on this connection \(limit 8\)/.test(String(res.get(9)?.msg)),
      `a clear message: ${res.get(9)?.msg}`,
    );
    assertEquals(held.filter((id) => res.has(id)), [], "the held requests are still running");

    // Once the held requests finish, the same connection is served again.
    await release(raw, held);
    await raw.sendFrame({ t: "req", id: 14, op: "diag.echo", args: { again: true } });
    const after = await replies(raw, (r) => [...held, 14].every((id) => r.has(id)));
    assertEquals(codes(after, [...held, 14]), [...held, 14].map(() => "ok"));
    assertEquals(after.get(14)?.data, { again: true });
  } finally {
    raw.conn.close();
  }
  await target.check("per-connection request cap");
});

Deno.test("one user's connections together past the per-user cap get busy; another user is unaffected", async () => {
  await using target = await startTarget({
    users: ["observer", "ada", "bob"],
    limits: { maxRequestsPerConnection: 8, maxRequestsPerUser: 12 },
  });
  const a = await rawLogin(target.port, "ada", target.keys.ada!);
  const b = await rawLogin(target.port, "ada", target.keys.ada!);
  const c = await rawLogin(target.port, "ada", target.keys.ada!);
  const bob = await rawLogin(target.port, "bob", target.keys.bob!);
  try {
    const onA = await holdSinks(a, 1, 8);
    // A connection's requests are handled in order: this reply comes after all eight.
    await a.sendFrame({ t: "req", id: 9, op: "diag.echo", args: {} });
    assertEquals((await replies(a, (r) => r.has(9))).get(9)?.code, "busy");
    const onB = await holdSinks(b, 1, 4);
    await b.sendFrame({ t: "req", id: 5, op: "diag.echo", args: {} });
    const onBRes = await replies(b, (r) => r.has(5));
    assertEquals(onBRes.get(5)?.code, "busy", "the user's twelve are in flight");
    assert(/for user ada across connections/.test(String(onBRes.get(5)?.msg)), "a clear message");
    await c.sendFrame({ t: "req", id: 1, op: "diag.echo", args: {} });
    assertEquals((await replies(c, (r) => r.has(1))).get(1)?.code, "busy", "a third connection");

    // Another user is not affected: a full connection's worth of requests is served.
    const bobHeld = await holdSinks(bob, 1, 8);
    await release(bob, bobHeld);
    const bobRes = await replies(bob, (r) => bobHeld.every((id) => r.has(id)));
    assertEquals(codes(bobRes, bobHeld), bobHeld.map(() => "ok"));

    // When ada's requests finish, her connections are served again.
    await release(a, onA);
    await replies(a, (r) => onA.every((id) => r.has(id)));
    await a.sendFrame({ t: "req", id: 10, op: "diag.echo", args: {} });
    assertEquals((await replies(a, (r) => r.has(10))).get(10)?.ok, true);
    await c.sendFrame({ t: "req", id: 2, op: "diag.echo", args: { back: 1 } });
    assertEquals((await replies(c, (r) => r.has(2))).get(2)?.ok, true);
    await release(b, onB);
    await replies(b, (r) => onB.every((id) => r.has(id)));
  } finally {
    for (const r of [a, b, c, bob]) r.conn.close();
  }
  await target.check("per-user request cap");
});

/** A logged-in protocol session of `user` that grants the server only `window` bytes. */
async function stalledClient(port: number, user: string, key: string): Promise<Session> {
  const raw = await rawLogin(port, user, key, { window: { s: 64 * KiB, c: 64 * KiB } });
  return new Session(raw.link);
}

/** Bytes the test's writes have handed to the sessions, over all streams. */
let handedOver = 0;

/**
 * Writes `bytes` to `stream` in 64 KiB pieces without waiting: the writes the
 * server has no credit for stay queued on our side. Failures at close are expected.
 */
function push(stream: MuxStream, bytes: number, pieceBytes = 64 * KiB): Promise<void> {
  const piece = new Uint8Array(pieceBytes);
  const writes: Promise<void>[] = [];
  for (let off = 0; off < bytes; off += piece.byteLength) {
    writes.push(stream.write(piece).then(() => void (handedOver += piece.byteLength)));
  }
  return Promise.allSettled(writes).then(() => {});
}

/**
 * Waits until the clients cannot send more: no stream has data and credit,
 * or the connection is out of credit, and no write progressed over three
 * ping round trips (window updates the server sent have arrived by then).
 */
async function untilStalled(sessions: Session[], streams: MuxStream[][]): Promise<void> {
  let last = -1;
  let still = 0;
  for (let i = 0; i < 600 && still < 3; i++) {
    await Promise.all(sessions.map((s) => s.ping()));
    await new Promise((r) => setTimeout(r, 30));
    const blocked = sessions.every((s, k) =>
      s.sendCredit === 0 || streams[k]!.every((st) => !st.sendable)
    );
    still = blocked && handedOver === last ? still + 1 : 0;
    last = handedOver;
  }
  if (still < 3) throw new Error("the clients never ran out of credit");
}

function sha(data: Uint8Array): string {
  return createHash("sha256").update(data).digest("hex");
}

Deno.test("20 connections of one user pushing unread stream data hold at most that user's budget", async () => {
  const budget = 16 * MiB;
  await using target = await startTarget({
    users: ["observer", "ada", "bob"],
    limits: { maxBufferedPerUser: budget, maxRequestsPerUser: 1000, idleTimeoutMs: 0 },
  });
  const before = await target.rss();
  const sessions: Session[] = [];
  const streams: MuxStream[][] = [];
  const pushes: Promise<unknown>[] = [];
  try {
    for (let i = 0; i < 20; i++) {
      const s = await stalledClient(target.port, "ada", target.keys.ada!);
      sessions.push(s);
      const mine: MuxStream[] = [];
      // diag.stream echoes what it reads; we never read the echo, so after
      // our 64 KiB of credit the server stops reading and the rest piles up.
      for (let k = 0; k < 4; k++) {
        const { stream, result } = s.open("diag.stream", {});
        pushes.push(result.catch(() => {}));
        pushes.push(push(stream, 4 * MiB));
        mine.push(stream);
      }
      // A stream whose operation ends at once and is never read by anyone.
      const { stream, result } = s.open("diag.echo", { unclaimed: true });
      pushes.push(result.catch(() => {}));
      pushes.push(push(stream, 4 * MiB));
      mine.push(stream);
      streams.push(mine);
    }
    await untilStalled(sessions, streams);
    const held = await target.rss() - before;
    // Before the budget each connection buffered its whole window (16 MiB):
    // 320 MiB for 20 connections. Now the user's budget bounds it, plus the
    // initial 64 KiB of each connection and one echoed piece per stream.
    const bound = budget + 48 * MiB;
    assert(
      held <= bound,
      `server RSS grew by ${(held / MiB).toFixed(1)} MiB, bound ${(bound / MiB).toFixed(0)} MiB`,
    );
    console.log(`RSS growth with 20 stalled connections: ${(held / MiB).toFixed(1)} MiB`);

    // Another user can still upload while ada's data sits unread.
    const bob = await target.client("bob");
    const data = new Uint8Array(8 * MiB).map((_, i) => (i * 31) & 0xff);
    const { stream, result } = bob.open("file.put", {
      path: "after-flood.bin",
      size: data.byteLength,
      sha256: sha(data),
      offset: 0,
    });
    for (let off = 0; off < data.byteLength; off += 256 * KiB) {
      await stream.write(data.subarray(off, off + 256 * KiB));
    }
    stream.end();
    await result;
  } finally {
    await Promise.all(sessions.map((s) => s.close()));
    await Promise.all(pushes);
  }
  await target.check("unread stream data", { grows: ["files/"] });
});

Deno.test("data sent on a stream whose operation has ended is dropped and its credit returned", async () => {
  await using target = await startTarget();
  const raw = await rawLogin(target.port, "ada", target.keys.ada!);
  const s = new Session(raw.link);
  try {
    // diag.echo answers at once and never reads its stream: nobody ever will.
    const { stream, result } = s.open("diag.echo", { unclaimed: true });
    assertEquals(await result, { unclaimed: true });
    const total = 3 * raw.link.peerWindow.s; // three stream windows
    const start = handedOver;
    const pushed = push(stream, total, 256 * KiB);
    await untilStalled([s], [[stream]]);
    assertEquals(handedOver - start, total, "the server returned the credit of the dropped bytes");
    stream.end();
    await pushed;
    assertEquals(await s.call("diag.echo", { still: "open" }), { still: "open" });
  } finally {
    await s.close();
  }
  await target.check("unclaimed stream data");
});

Deno.test("the credit granted to one user's connections stays within the budget; each still moves data", async () => {
  const budget = 8 * MiB;
  await using t = await startTestServer({
    limits: { maxBufferedPerUser: budget, maxRequestsPerUser: 1000, idleTimeoutMs: 0 },
  });
  const key = await t.addUser("ada");
  const sessions: Session[] = [];
  const streams: MuxStream[][] = [];
  const pushes: Promise<unknown>[] = [];
  try {
    for (let i = 0; i < 10; i++) {
      const s = await stalledClient(t.port, "ada", key);
      sessions.push(s);
      const mine: MuxStream[] = [];
      for (let k = 0; k < 2; k++) {
        const { stream, result } = s.open("diag.stream", {});
        pushes.push(result.catch(() => {}), push(stream, 4 * MiB));
        mine.push(stream);
      }
      streams.push(mine);
    }
    await untilStalled(sessions, streams);
    const held = t.server.budgets.heldBy("ada");
    const perSession = t.server.byUser("ada").map((c) => c.session.recvReserved);
    assertEquals(perSession.reduce((a, b) => a + b, 0), held, "the pool counts every session");
    assert(held <= budget + 10 * 64 * KiB, `ada holds ${held} bytes of credit`);
    assert(held > budget / 2, `the connections grew past their first grants: ${held}`);

    // Another connection of the same user, with the budget used up, is slowed, not stopped.
    const late = await stalledClient(t.port, "ada", key);
    sessions.push(late);
    const { stream, result } = late.open("diag.sink", {});
    await push(stream, 2 * MiB);
    stream.end();
    assertEquals(await result, { bytes: 2 * MiB });
    assert(t.server.budgets.heldBy("ada") <= budget + 11 * 64 * KiB);

    // Closed connections give their credit back to the user's pool.
    await Promise.all(sessions.filter((s) => s !== late).map((s) => s.close()));
    for (let i = 0; i < 200 && t.server.byUser("ada").length > 1; i++) {
      await new Promise((r) => setTimeout(r, 25));
    }
    const [left] = t.server.byUser("ada");
    assertEquals(t.server.byUser("ada").length, 1, "the server saw the others leave");
    assertEquals(t.server.budgets.heldBy("ada"), left!.session.recvReserved);
  } finally {
    await Promise.all(sessions.map((s) => s.close()));
    await Promise.all(pushes);
  }
});

Deno.test("the request caps and the per-user budget are validated limits with defaults", () => {
  assertEquals(DEFAULT_LIMITS.maxRequestsPerConnection, 32);
  assertEquals(DEFAULT_LIMITS.maxRequestsPerUser, 64);
  assertEquals(DEFAULT_LIMITS.maxBufferedPerUser, 64 * MiB);
  const bad: [Record<string, unknown>, string][] = [
    [{ maxRequestsPerConnection: 0 }, "maxRequestsPerConnection"],
    [{ maxRequestsPerUser: 1.5 }, "maxRequestsPerUser"],
    [{ maxBufferedPerUser: 1024 }, "maxBufferedPerUser"],
    [{ maxBufferedPerUser: "64M" }, "maxBufferedPerUser"],
  ];
  for (const [limits, key] of bad) {
    assertThrows(() => validateLimits(limits), TypeError, key);
  }
  assertEquals(validateLimits({ maxRequestsPerUser: 5 }), { maxRequestsPerUser: 5 });
});

Deno.test("requests still running after their connection closed keep counting for the user", () => {
  const budgets = new UserBudgets({
    maxRequestsPerConnection: 4,
    maxRequestsPerUser: 4,
    maxBufferedPerUser: MiB,
  });
  const first = budgets.open("ada");
  const running = [1, 2, 3, 4].map(() => first.admit());
  first.close(); // the client hung up; its four operations go on
  const second = budgets.open("ada");
  const e = assertThrows(() => second.admit(), ProtocolError, "for user ada");
  assertEquals(e.code, "busy");
  running[0]!();
  const done = second.admit(); // one ended: there is room for one
  assertEquals(budgets.requestsOf("ada"), 4);
  for (const r of [...running, done]) r();
  second.close();
  assertEquals(budgets.requestsOf("ada"), 0);
  assertEquals(budgets.heldBy("ada"), 0);
});

Deno.test("when more connections of a user arrive, an active one grants less and the others can grow", async () => {
  const budget = 8 * MiB;
  await using t = await startTestServer({ limits: { maxBufferedPerUser: budget } });
  const key = await t.addUser("ada");
  const clients: Session[] = [];
  const upload = async (s: Session, bytes: number) => {
    const { stream, result } = s.open("diag.sink", {});
    await push(stream, bytes, 256 * KiB);
    stream.end();
    assertEquals(await result, { bytes });
  };
  const reserved = () => t.server.byUser("ada").map((c) => c.session.recvReserved);
  try {
    const a = new Session((await rawLogin(t.port, "ada", key)).link);
    clients.push(a);
    await upload(a, 16 * MiB);
    assertEquals(reserved(), [budget], "alone, a connection may use the whole budget");

    for (let i = 0; i < 3; i++) {
      clients.push(new Session((await rawLogin(t.port, "ada", key)).link));
    }
    for (let i = 0; i < 200 && reserved().length < 4; i++) {
      await new Promise((r) => setTimeout(r, 25));
    }
    await upload(a, 16 * MiB);
    const fair = budget / 4;
    assert(reserved()[0]! <= fair, `the active connection gave credit back: ${reserved()}`);
    await upload(clients[1]!, 16 * MiB);
    assertEquals(reserved()[1], fair, `the next one grew to its share: ${reserved()}`);
    assert(t.server.budgets.heldBy("ada") <= budget);
  } finally {
    await Promise.all(clients.map((s) => s.close()));
  }
});
