/**
 * `chat.send` keys and the id epoch over real sockets: a retried key stores
 * and delivers the message once; keys are per user; bad keys are refused;
 * join and history replies name the epoch, which survives a restart; a
 * client that reconnects to a server whose chat store was recreated drops
 * its last-seen ids and shows the new history.
 */
import { assert, assertEquals, assertRejects } from "@std/assert";
import { join } from "@std/path";
import { ChatClient } from "../../client/chat/chat_client.ts";
import type { ChatJoinReply, ChatPage, ChatSendReply } from "../../protocol/ops/chat.ts";
import { RemoteError } from "../../protocol/errors.ts";
import { type ClientOptions, ParleyClient } from "../../client/client.ts";
import { keyBytes, startTestServer } from "../helpers.ts";
import { record, waitFor } from "./chat_helpers.ts";

Deno.test("chat.send with a key stores and delivers a message once; the key is the sender's own", async () => {
  await using t = await startTestServer();
  const ada = await t.connect("ada");
  const bob = await t.connect("bob");
  const cy = await ChatClient.start(await t.connect("cy"));
  const seen = record(cy);
  await cy.join("lobby");
  const send = async (c: typeof ada, text: string, key?: string) =>
    await c.call("chat.send", { room: "lobby", text, ...(key ? { key } : {}) }) as ChatSendReply;
  const first = await send(ada, "hello", "k-1");
  assertEquals(first.dup, undefined);
  const retry = await send(ada, "hello (again)", "k-1");
  assertEquals(retry, { id: first.id, ts: first.ts, dup: true });
  const bobs = await send(bob, "bob's", "k-1");
  assertEquals(bobs.dup, undefined);
  assert(Number(bobs.id) > Number(first.id), "bob's key was taken as ada's");
  const last = await send(ada, "last");
  await waitFor(() => seen.msgs.some((m) => m.id === last.id), "the last message");
  assertEquals(seen.msgs.map((m) => m.text), ["hello", "bob's", "last"]);
  const h = await ada.call("chat.history", { room: "lobby" }) as ChatPage;
  assertEquals(h.messages.map((m) => m.text), ["hello", "bob's", "last"]);
  for (const key of ["", "has space", "x".repeat(65), "clé", "tab\there"]) {
    const e = await assertRejects(
      () => ada.call("chat.send", { room: "lobby", text: "bad", key }),
      RemoteError,
    );
    assertEquals(e.code, "bad_request", `key ${JSON.stringify(key)}`);
    assert(e.message.includes("key"), e.message);
  }
  cy.close();
});

/** A client of `user` on `port` (plaintext), for a server restarted on the same data dir. */
function _connect(
  port: number,
  user: string,
  key: string,
  extra: Partial<ClientOptions> = {},
): Promise<ParleyClient> {
  return ParleyClient.connect({
    host: "127.0.0.1",
    port,
    user,
    key: keyBytes(key),
    tls: false,
    ...extra,
  });
}

Deno.test("join and history replies name the epoch; it survives a restart", async () => {
  const dataDir = await Deno.makeTempDir({ prefix: "parley-epoch-" });
  try {
    let epoch: string;
    let key: string;
    {
      await using t = await startTestServer({ dataDir });
      key = await t.addUser("ada");
      const c = await t.connect("ada");
      const j = await c.call("chat.join", { room: "lobby" }) as ChatJoinReply;
      const h = await c.call("chat.history", { dm: true }) as ChatPage;
      epoch = j.epoch!;
      assert(/^[0-9a-z-]{1,64}$/.test(epoch), `epoch ${epoch}`);
      assertEquals(h.epoch, epoch);
    }
    await using t = await startTestServer({ dataDir });
    await using c = await _connect(t.port, "ada", key);
    const j = await c.call("chat.join", { room: "lobby" }) as ChatJoinReply;
    assertEquals(j.epoch, epoch);
  } finally {
    await Deno.remove(dataDir, { recursive: true });
  }
});

Deno.test("a client that reconnects to a recreated chat store drops its old ids and shows the new history", async () => {
  const dataDir = await Deno.makeTempDir({ prefix: "parley-epoch-" });
  try {
    const chat = { rateBurst: 1000 };
    let port: number;
    let ada: ChatClient;
    let got: ReturnType<typeof record>;
    let bobKey: string;
    {
      await using t = await startTestServer({ dataDir, features: { chat } });
      port = t.port;
      bobKey = await t.addUser("bob");
      // not through t.connect: this client outlives the first server
      const key = await t.addUser("ada");
      ada = await ChatClient.start(
        await _connect(port, "ada", key, { reconnect: true, backoffMs: 100, maxBackoffMs: 200 }),
      );
      got = record(ada);
      await ada.join("lobby");
      const bob = await ChatClient.start(await t.connect("bob"));
      for (let i = 0; i < 10; i++) await bob.send({ room: "lobby" }, `old ${i}`);
      await waitFor(() => got.msgs.length === 10, "ten messages of the old store");
      bob.close();
    }
    const oldEpoch = ada.epoch;
    assert(oldEpoch !== undefined);
    assertEquals(ada.lastId("lobby"), 10);
    // the chat store is recreated: ids start at 1 again, under another epoch
    await Deno.remove(join(dataDir, "chat"), { recursive: true });
    await using t = await startTestServer({ dataDir, port, features: { chat } });
    try {
      await using bobClient = await _connect(t.port, "bob", bobKey);
      const bob = await ChatClient.start(bobClient);
      for (let i = 0; i < 3; i++) await bob.send({ room: "lobby" }, `new ${i}`);
      bob.close();
      await waitFor(
        () => got.msgs.filter((m) => m.text.startsWith("new")).length === 3,
        "the new store's messages",
        20_000,
      );
      assert(ada.epoch !== oldEpoch, "the client kept the old epoch");
      assertEquals(got.msgs.map((m) => m.text), [
        ...Array.from({ length: 10 }, (_, i) => `old ${i}`),
        "new 0",
        "new 1",
        "new 2",
      ]);
      assert(
        got.events.some((e) => e.kind === "notice" && e.text.includes("started over")),
        "no notice that ids started over",
      );
      assertEquals(ada.lastId("lobby"), 3);
    } finally {
      ada.close();
      await ada.client.close();
    }
  } finally {
    await Deno.remove(dataDir, { recursive: true });
  }
});
