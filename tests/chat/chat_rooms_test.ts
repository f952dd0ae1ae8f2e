import { assert, assertEquals, assertRejects } from "@std/assert";
import { ChatClient } from "../../client/chat/chat_client.ts";
import { RemoteError } from "../../protocol/errors.ts";
import { startTestServer } from "../helpers.ts";
import { record, waitFor } from "./chat_helpers.ts";

Deno.test("three clients in a room see each other's messages in order", async () => {
  await using t = await startTestServer();
  for (const u of ["ada", "bob", "cy"]) await t.addUser(u);
  const chats = await Promise.all(
    ["ada", "bob", "cy"].map(async (u) => await ChatClient.start(await t.connect(u))),
  );
  const logs = chats.map(record);
  for (const c of chats) await c.join("lobby");
  const sends = [];
  for (let i = 0; i < 10; i++) {
    for (const [n, c] of chats.entries()) sends.push(c.send({ room: "lobby" }, `m${n}-${i}`));
  }
  await Promise.all(sends);
  await waitFor(() => logs.every((l) => l.msgs.length === 30), "30 messages each");
  const order = logs[0]!.msgs.map((m) => m.id);
  for (const l of logs) {
    assertEquals(l.msgs.map((m) => m.id), order);
    const ids = l.msgs.map((m) => Number(m.id));
    assertEquals(ids, [...ids].sort((a, b) => a - b));
  }
  for (const [n] of chats.entries()) {
    const mine = logs[0]!.msgs.filter((m) => m.from === ["ada", "bob", "cy"][n]);
    assertEquals(mine.map((m) => m.text), Array.from({ length: 10 }, (_, i) => `m${n}-${i}`));
  }
  for (const c of chats) c.close();
});

Deno.test("joining a room returns recent history and the users in it", async () => {
  await using t = await startTestServer();
  const ada = await ChatClient.start(await t.connect("ada"));
  await ada.join("dev");
  for (let i = 0; i < 3; i++) await ada.send({ room: "dev" }, `hello ${i}`);
  const bob = await ChatClient.start(await t.connect("bob"));
  const r = await bob.join("dev");
  assertEquals(r.history.map((m) => m.text), ["hello 0", "hello 1", "hello 2"]);
  assertEquals(r.users, ["ada", "bob"]);
  const rooms = await bob.client.call("chat.rooms") as { rooms: { room: string }[] };
  assertEquals(rooms.rooms.map((x) => x.room), ["dev"]);
  ada.close();
  bob.close();
});

Deno.test("a direct message to an offline user arrives at their next login", async () => {
  await using t = await startTestServer();
  await t.addUser("bob");
  const ada = await ChatClient.start(await t.connect("ada"));
  await ada.send({ to: "bob" }, "are you there?");
  await ada.send({ to: "bob" }, "call me", { me: true });
  const bob = await ChatClient.start(await t.connect("bob"));
  const got = record(bob);
  // delivered by start(); recorded from the message cache
  const dms = bob.recent().filter((m) => m.to === "bob");
  assertEquals(dms.map((m) => [m.from, m.text, m.me ?? false]), [
    ["ada", "are you there?", false],
    ["ada", "call me", true],
  ]);
  // a second login does not get them again
  const again = await ChatClient.start(await t.connect("bob"));
  assertEquals(again.recent().length, 0);
  // a live DM reaches every connection of the recipient
  await ada.send({ to: "bob" }, "live");
  await waitFor(() => got.msgs.length === 1, "live DM");
  assertEquals(got.msgs[0]!.text, "live");
  for (const c of [ada, bob, again]) c.close();
});

Deno.test("a direct message to an unknown user is refused", async () => {
  await using t = await startTestServer();
  const ada = await ChatClient.start(await t.connect("ada"));
  const e = await assertRejects(() => ada.send({ to: "nobody" }, "hi"), RemoteError);
  assertEquals(e.code, "not_found");
  ada.close();
});

Deno.test("a shared file reference is stored and delivered with the message", async () => {
  await using t = await startTestServer();
  const ada = await ChatClient.start(await t.connect("ada"));
  const bob = await ChatClient.start(await t.connect("bob"));
  const got = record(bob);
  await bob.join("lobby");
  const file = { path: "shared/a.txt", name: "a.txt", size: 3, sha256: "ab".repeat(32) };
  const { id } = await ada.send({ room: "lobby" }, "", { file });
  await waitFor(() => got.msgs.length === 1, "file message");
  assertEquals(got.msgs[0]!.file, file);
  const r = await bob.client.call("chat.get", { id }) as { message: { file: unknown } };
  assertEquals(r.message.file, file);
  const bad = await assertRejects(
    () => ada.send({ room: "lobby" }, "x", { file: { ...file, sha256: "nothex" } }),
    RemoteError,
  );
  assertEquals(bad.code, "bad_request");
  ada.close();
  bob.close();
});

Deno.test("an oversize message is refused with too_large while others keep chatting", async () => {
  await using t = await startTestServer({ features: { chat: { maxTextBytes: 100 } } });
  const ada = await ChatClient.start(await t.connect("ada"));
  const bob = await ChatClient.start(await t.connect("bob"));
  const got = record(bob);
  await bob.join("lobby");
  const e = await assertRejects(() => ada.send({ room: "lobby" }, "x".repeat(101)), RemoteError);
  assertEquals(e.code, "too_large");
  assert(e.message.includes("limit is 100"), e.message);
  await ada.send({ room: "lobby" }, "still here");
  await bob.send({ room: "lobby" }, "me too");
  await waitFor(() => got.msgs.length === 2, "two messages");
  assertEquals(got.msgs.map((m) => m.text), ["still here", "me too"]);
  ada.close();
  bob.close();
});

Deno.test("flood control answers rate_limited and keeps the connection open", async () => {
  await using t = await startTestServer({
    features: { chat: { ratePerSecond: 0.5, rateBurst: 3 } },
  });
  const ada = await ChatClient.start(await t.connect("ada"));
  for (let i = 0; i < 3; i++) await ada.send({ room: "lobby" }, `ok ${i}`);
  const e = await assertRejects(() => ada.send({ room: "lobby" }, "too many"), RemoteError);
  assertEquals(e.code, "rate_limited");
  assertEquals(await ada.client.call("diag.echo", { still: "open" }), { still: "open" });
  const h = await ada.client.call("chat.history", { room: "lobby" }) as { messages: unknown[] };
  assertEquals(h.messages.length, 3);
  ada.close();
});

Deno.test("/time formats the server clock with a strftime format", async () => {
  await using t = await startTestServer();
  const c = await t.connect("ada");
  const r = await c.call("chat.time", { format: "%Y|%m|%%|%s" }) as { ts: number; text: string };
  const d = new Date(r.ts);
  assertEquals(
    r.text,
    `${d.getFullYear()}|${String(d.getMonth() + 1).padStart(2, "0")}|%|${Math.floor(r.ts / 1000)}`,
  );
});

Deno.test("mentions are listed and ignored users are not delivered", async () => {
  await using t = await startTestServer();
  const ada = await ChatClient.start(await t.connect("ada"));
  const bob = await ChatClient.start(await t.connect("bob"));
  const got = record(bob);
  await bob.join("lobby");
  await bob.client.call("chat.ignore", { user: "ada" });
  await ada.send({ room: "lobby" }, "you won't see this @bob");
  await ada.send({ to: "bob" }, "nor this");
  await bob.client.call("chat.ignore", { user: "ada", off: true });
  const { id } = await ada.send({ room: "lobby" }, "hi @bob!");
  await waitFor(() => got.msgs.length === 1, "one message");
  assertEquals(got.msgs[0]!.id, id);
  assertEquals(got.msgs[0]!.mentions, ["bob"]);
  ada.close();
  bob.close();
});

Deno.test("bad chat arguments get bad_request with the field named", async () => {
  await using t = await startTestServer();
  const c = await t.connect("ada");
  const cases: [string, Record<string, unknown>][] = [
    ["chat.send", { room: "Bad Room", text: "x" }],
    ["chat.send", { room: "lobby" }],
    ["chat.send", { room: "lobby", to: "ada", text: "x" }],
    ["chat.send", { room: "lobby", text: "   " }],
    ["chat.join", { room: "../etc" }],
    ["chat.history", { room: "lobby", after: "abc" }],
    ["chat.get", { id: "999999" }],
  ];
  for (const [op, args] of cases) {
    const e = await assertRejects(() => c.call(op, args), RemoteError, undefined, op);
    assert(
      ["bad_request", "not_found"].includes(e.code),
      `${op} ${JSON.stringify(args)}: ${e.code}`,
    );
  }
});
