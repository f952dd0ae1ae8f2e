import { assert, assertEquals, assertRejects } from "@std/assert";
import { ChatClient } from "../../client/chat/chat_client.ts";
import { RemoteError } from "../../protocol/errors.ts";
import type { ChatRoomsReply } from "../../protocol/ops/chat.ts";
import { startTestServer } from "../helpers.ts";
import { record, waitFor } from "./chat_helpers.ts";

Deno.test("a connection that joined a room may not post to a room it is not in", async () => {
  await using t = await startTestServer();
  const ada = await t.connect("ada");
  await ada.call("chat.join", { room: "lobby" });
  const e = await assertRejects(
    () => ada.call("chat.send", { room: "dev", text: "hi" }),
    RemoteError,
  );
  assertEquals(e.code, "not_joined");
  assertEquals(e.message, "you are not in #dev; /join dev first");
  // after a leave, the room it left is refused too; a DM still goes
  await ada.call("chat.leave", { room: "lobby" });
  const left = await assertRejects(
    () => ada.call("chat.send", { room: "lobby", text: "hi" }),
    RemoteError,
  );
  assertEquals(left.code, "not_joined");
  await t.connect("bob");
  await ada.call("chat.send", { to: "bob", text: "a dm" });
  // /me goes the same way
  const me = await assertRejects(
    () => ada.call("chat.send", { room: "lobby", text: "waves", me: true }),
    RemoteError,
  );
  assertEquals(me.code, "not_joined");
});

Deno.test("a connection that never joined a room (a one-shot send) may post to any room", async () => {
  await using t = await startTestServer();
  const bob = await ChatClient.start(await t.connect("bob"));
  const got = record(bob);
  await bob.join("lobby");
  const ada = await t.connect("ada");
  await ada.call("chat.send", { room: "lobby", text: "from outside" });
  await waitFor(() => got.msgs.length === 1, "the message at bob");
  assertEquals(got.msgs[0]!.text, "from outside");
  bob.close();
});

Deno.test("a kicked connection's next send to the room is refused", async () => {
  await using t = await startTestServer();
  await t.addUser("root", { admin: true });
  const root = await ChatClient.start(await t.connect("root"));
  const eve = await ChatClient.start(await t.connect("eve"));
  const seen = record(eve);
  await root.join("lobby");
  await eve.join("lobby");
  await eve.send({ room: "lobby" }, "before the kick");
  await root.client.call("chat.kick", { user: "eve", room: "lobby" });
  await waitFor(() => seen.events.some((e) => e.kind === "kicked"), "the kick event");
  const e = await assertRejects(() => eve.send({ room: "lobby" }, "still here"), RemoteError);
  assertEquals(e.code, "not_joined");
  // rejoining lifts it
  await eve.join("lobby");
  await eve.send({ room: "lobby" }, "back");
  root.close();
  eve.close();
});

Deno.test("room names are folded to lower case", async () => {
  await using t = await startTestServer();
  const ada = await t.connect("ada");
  const r = await ada.call("chat.join", { room: "Dev" }) as { room: string };
  assertEquals(r.room, "dev");
  await ada.call("chat.send", { room: "DEV", text: "hi" });
  const rooms = await ada.call("chat.rooms", {}) as ChatRoomsReply;
  assert(rooms.rooms.some((x) => x.room === "dev" && x.joined));
  assert(!rooms.rooms.some((x) => x.room === "Dev"));
});

Deno.test("chat.rooms tells the client the limits and whether it is an admin", async () => {
  await using t = await startTestServer();
  await t.addUser("root", { admin: true });
  const root = await t.connect("root");
  const ada = await t.connect("ada");
  const r = await root.call("chat.rooms", {}) as ChatRoomsReply;
  assertEquals(r.admin, true);
  assertEquals(r.limits, { ratePerSecond: 5, rateBurst: 10, maxTextBytes: 4096 });
  assertEquals((await ada.call("chat.rooms", {}) as ChatRoomsReply).admin, false);
});
