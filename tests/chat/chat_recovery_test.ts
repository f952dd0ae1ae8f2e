import { assertEquals } from "@std/assert";
import { ChatClient } from "../../client/chat/chat_client.ts";
import { startTestServer } from "../helpers.ts";
import { record, waitFor } from "./chat_helpers.ts";

Deno.test("a client that drops and reconnects receives exactly the messages it missed", async () => {
  await using t = await startTestServer({ features: { chat: { rateBurst: 1000 } } });
  const ada = await ChatClient.start(await t.connect("ada"));
  const bob = await ChatClient.start(
    await t.connect("bob", { reconnect: true, backoffMs: 300, maxBackoffMs: 300 }),
  );
  const got = record(bob);
  await ada.join("lobby");
  await bob.join("lobby");
  await bob.client.call("chat.ignore", {}); // a round trip: both are set up
  const sent: string[] = [];
  const say = async (text: string) => {
    await ada.send({ room: "lobby" }, text);
    sent.push(text);
  };
  for (let i = 0; i < 5; i++) await say(`before ${i}`);
  await waitFor(() => got.msgs.length === 5, "messages before the drop");
  // cut bob's connection from the server side, then talk while he is away
  for (const ctx of t.server.byUser("bob")) await ctx.session.close();
  await waitFor(() => t.server.byUser("bob").length === 0, "bob's logout");
  for (let i = 0; i < 20; i++) await say(`during ${i}`);
  await ada.send({ to: "bob" }, "a DM while away");
  // messages keep flowing while bob reconnects and resyncs
  const racing = (async () => {
    for (let i = 0; i < 20; i++) await say(`racing ${i}`);
  })();
  await waitFor(
    () => got.events.some((e) => e.kind === "connection" && e.state === "restored"),
    "reconnect",
  );
  await racing;
  for (let i = 0; i < 5; i++) await say(`after ${i}`);
  const roomMsgs = () => got.msgs.filter((m) => m.room === "lobby");
  await waitFor(() => roomMsgs().length >= sent.length, "all room messages");
  await new Promise((r) => setTimeout(r, 100)); // room for a duplicate to show up
  assertEquals(roomMsgs().map((m) => m.text), sent);
  assertEquals(got.msgs.filter((m) => m.to === "bob").map((m) => m.text), ["a DM while away"]);
  assertEquals(got.events.filter((e) => e.kind === "connection").map((e) => e.kind), [
    "connection",
    "connection",
  ]);
  ada.close();
  bob.close();
});

Deno.test("recovery after a long absence pages through history with no gaps", async () => {
  await using t = await startTestServer({
    features: { chat: { rateBurst: 5000, historyPerRoom: 2000 } },
  });
  const ada = await ChatClient.start(await t.connect("ada"));
  const bob = await ChatClient.start(
    await t.connect("bob", { reconnect: true, backoffMs: 200, maxBackoffMs: 200 }),
  );
  const got = record(bob);
  await bob.join("lobby");
  await ada.send({ room: "lobby" }, "first");
  await waitFor(() => got.msgs.length === 1, "first message");
  for (const ctx of t.server.byUser("bob")) await ctx.session.close();
  await waitFor(() => t.server.byUser("bob").length === 0, "bob's logout");
  const sends = [];
  for (let i = 0; i < 1200; i++) sends.push(ada.send({ room: "lobby" }, `m${i}`));
  await Promise.all(sends);
  await waitFor(() => got.msgs.length === 1201, "1201 messages", 20_000);
  const ids = got.msgs.map((m) => Number(m.id));
  assertEquals(new Set(ids).size, 1201);
  assertEquals(ids, [...ids].sort((a, b) => a - b));
  ada.close();
  bob.close();
});
