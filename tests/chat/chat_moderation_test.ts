import { assert, assertEquals, assertRejects } from "@std/assert";
import { ChatClient } from "../../client/chat/chat_client.ts";
import { ParleyClient } from "../../client/client.ts";
import { RemoteError } from "../../protocol/errors.ts";
import { keyBytes, startTestServer } from "../helpers.ts";
import { record, waitFor } from "./chat_helpers.ts";

Deno.test("only admins can kick, ban and mute", async () => {
  await using t = await startTestServer();
  const bob = await t.connect("bob");
  await t.connect("eve");
  for (
    const [op, args] of [
      ["chat.kick", { user: "eve", room: "lobby" }],
      ["chat.ban", { user: "eve" }],
      ["chat.mute", { user: "eve" }],
    ] as const
  ) {
    const e = await assertRejects(() => bob.call(op, args), RemoteError);
    assertEquals(e.code, "forbidden");
  }
});

Deno.test("a kicked user leaves the room and is told so", async () => {
  await using t = await startTestServer();
  await t.addUser("root", { admin: true });
  const root = await ChatClient.start(await t.connect("root"));
  const eve = await ChatClient.start(await t.connect("eve"));
  const seen = record(eve);
  const rootSeen = record(root);
  await root.join("lobby");
  await eve.join("lobby");
  await root.client.call("chat.kick", { user: "eve", room: "lobby", reason: "spam" });
  await waitFor(() => seen.events.some((e) => e.kind === "kicked"), "kick event");
  assertEquals(eve.rooms, []);
  await waitFor(
    () => rootSeen.events.some((e) => e.kind === "left" && e.kicked === "root"),
    "left event",
  );
  await root.send({ room: "lobby" }, "after the kick");
  await eve.client.call("chat.ignore", {}); // round trip
  assertEquals(seen.msgs.length, 0);
  root.close();
  eve.close();
});

Deno.test("a muted user cannot post until unmuted", async () => {
  await using t = await startTestServer();
  await t.addUser("root", { admin: true });
  const root = await ChatClient.start(await t.connect("root"));
  const eve = await ChatClient.start(await t.connect("eve"));
  const seen = record(eve);
  await root.client.call("chat.mute", { user: "eve", minutes: 5 });
  const e = await assertRejects(() => eve.send({ room: "lobby" }, "hi"), RemoteError);
  assertEquals(e.code, "forbidden");
  assert(e.message.includes("muted"), e.message);
  await waitFor(() => seen.events.some((x) => x.kind === "notice"), "mute notice");
  await root.client.call("chat.mute", { user: "eve", off: true });
  await eve.send({ room: "lobby" }, "back");
  root.close();
  eve.close();
});

Deno.test("a banned user is disconnected and refused until unbanned", async () => {
  await using t = await startTestServer();
  await t.addUser("root", { admin: true });
  const eveKey = await t.addUser("eve");
  const root = await t.connect("root");
  const eve = await t.connect("eve", { reconnect: true, backoffMs: 50 });
  const states: string[] = [];
  eve.onState((s) => states.push(s));
  await root.call("chat.ban", { user: "eve", reason: "spam" });
  await waitFor(() => eve.state === "closed", "eve disconnected");
  assertEquals(states.includes("reconnecting"), false);
  const again = await ParleyClient.connect({
    host: "127.0.0.1",
    port: t.port,
    user: "eve",
    key: keyBytes(eveKey),
    tls: false,
  });
  const why = await again.session.closed;
  await again.close();
  assertEquals((why as RemoteError).code, "forbidden");
  await root.call("chat.ban", { user: "eve", off: true });
  const ok = await ParleyClient.connect({
    host: "127.0.0.1",
    port: t.port,
    user: "eve",
    key: keyBytes(eveKey),
    tls: false,
  });
  assertEquals(await ok.call("diag.echo", { a: 1 }), { a: 1 });
  await ok.close();
});

Deno.test("200 clients connected at once all receive a broadcast", async () => {
  await using t = await startTestServer();
  const n = 200;
  const chats: ChatClient[] = [];
  const counts = new Array(n).fill(0);
  // accounts first, one at a time: the account file is replaced on each add
  for (let i = 0; i < n; i++) await t.addUser(`u${i}`);
  for (let i = 0; i < n; i += 20) {
    const batch = await Promise.all(
      Array.from({ length: Math.min(20, n - i) }, async (_, j) => {
        const c = await ChatClient.start(await t.connect(`u${i + j}`), { inbox: false });
        c.onEvent((e) => {
          if (e.kind === "msg" && !e.replay) counts[i + j]++;
        });
        await c.join("lobby");
        return c;
      }),
    );
    chats.push(...batch);
  }
  await chats[0]!.send({ room: "lobby" }, "hello everyone");
  await waitFor(() => counts.every((x) => x === 1), "200 deliveries", 20_000);
  for (const c of chats) c.close();
});
