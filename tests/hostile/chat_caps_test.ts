/**
 * Hostile chat users: one user opening many connections and joining room
 * after room must not fill the server-wide room cap. Rooms joined per user
 * (across connections) and rooms created per user per minute are capped with
 * clear codes (`too_many_rooms`, `rate_limited`), and other users can still
 * create and join rooms.
 *
 * @module
 */
import { assert, assertEquals } from "@std/assert";
import type { ParleyClient } from "../../client/client.ts";
import { RemoteError } from "../../protocol/errors.ts";
import { startTarget } from "./harness.ts";

/** Joins `room`; returns "ok" or the error code. */
async function join(c: ParleyClient, room: string): Promise<string> {
  try {
    await c.call("chat.join", { room });
    return "ok";
  } catch (e) {
    if (e instanceof RemoteError) return e.code;
    throw e;
  }
}

/** Ten connections of `user` each join `perConn` new rooms; returns the count of each outcome. */
async function flood(
  connect: () => Promise<ParleyClient>,
  prefix: string,
  perConn: number,
): Promise<Map<string, number>> {
  const conns: ParleyClient[] = [];
  // one at a time: parallel logins of one user count against the login limiter
  for (let i = 0; i < 10; i++) conns.push(await connect());
  const out = new Map<string, number>();
  await Promise.all(conns.map(async (c, n) => {
    for (let i = 0; i < perConn; i += 10) {
      const codes = await Promise.all(
        Array.from({ length: 10 }, (_, k) => join(c, `${prefix}-${n}-${i + k}`)),
      );
      for (const code of codes) out.set(code, (out.get(code) ?? 0) + 1);
    }
  }));
  return out;
}

Deno.test("ten connections of one user joining 100 new rooms each cannot fill the room cap", async () => {
  await using target = await startTarget({ users: ["observer", "ada", "bob"] });
  const codes = await flood(() => target.client("ada"), "flood", 100);
  const seen = JSON.stringify([...codes]);
  assert((codes.get("ok") ?? 0) <= 20, `ada created too many rooms: ${seen}`);
  assert((codes.get("rate_limited") ?? 0) > 0, `no join was rate limited: ${seen}`);
  assert([...codes.keys()].every((c) => c === "ok" || c === "rate_limited"), seen);
  const bob = await target.client("bob");
  assertEquals(await join(bob, "bobs-own-room"), "ok", "another user cannot create a room");
  assertEquals(await join(bob, "lobby"), "ok", "another user cannot join a room");
  await bob.call("chat.send", { room: "bobs-own-room", text: "still works" });
  await target.check("room flood", { grows: ["chat/"] });
});

Deno.test("the rooms one user is in are capped across all their connections", async () => {
  await using target = await startTarget({
    users: ["observer", "ada", "bob"],
    config: {
      chat: { maxRoomsPerUser: 20, roomCreatePerMinute: 1_000_000, roomCreateBurst: 1_000_000 },
    },
  });
  const codes = await flood(() => target.client("ada"), "many", 10);
  const seen = JSON.stringify([...codes]);
  assertEquals(codes.get("ok"), 20, seen);
  assertEquals(codes.get("too_many_rooms"), 80, seen);
  const who = await (await target.client("observer")).call("chat.who", {}) as {
    users: { name: string; rooms: string[] }[];
  };
  assertEquals(who.users.find((u) => u.name === "ada")?.rooms.length, 20);
  const bob = await target.client("bob");
  assertEquals(await join(bob, "bobs-own-room"), "ok", "another user cannot create a room");
  await target.check("rooms per user");
});
