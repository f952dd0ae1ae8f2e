/**
 * The embedded log's memory of `chat.send` keys is bounded: per sender by
 * count, and by time; a key whose append failed is forgotten at once, so a
 * retry stores the message.
 *
 * @module
 */
import { assertEquals, assertRejects } from "@std/assert";
import type { ChatMessage } from "../../server/backend/chat.ts";
import { DUPLICATE_WINDOW_MS } from "../../server/nats/chat_stream.ts";
import {
  SEND_KEY_WINDOW_MS,
  SEND_KEYS_PER_USER,
  SendKeys,
} from "../../server/embedded/chat_log.ts";

function _stored(id: string): Promise<ChatMessage> {
  return Promise.resolve({ id, room: "lobby", from: "ada", text: id, ts: 0 });
}

Deno.test("send keys: the embedded window is the cluster stream's duplicate window", () => {
  assertEquals(SEND_KEY_WINDOW_MS, DUPLICATE_WINDOW_MS);
  assertEquals(SEND_KEYS_PER_USER, 64);
});

Deno.test("send keys: a sender's oldest key is forgotten past the per-sender bound", async () => {
  const keys = new SendKeys(60_000, 3);
  for (let i = 1; i <= 4; i++) keys.add("ada", `k${i}`, _stored(String(i)), 1000);
  assertEquals(keys.get("ada", "k1", 1000), undefined, "more keys than the bound were kept");
  assertEquals(await keys.get("ada", "k4", 1000), "4");
  assertEquals(await keys.get("ada", "k2", 1000), "2");
  assertEquals(keys.get("bob", "k4", 1000), undefined, "a key was shared between senders");
});

Deno.test("send keys: a key is forgotten when its window ends, and so is an idle sender", async () => {
  const keys = new SendKeys(1000, 10);
  keys.add("ada", "old", _stored("1"), 0);
  keys.add("ada", "new", _stored("2"), 600);
  assertEquals(await keys.get("ada", "old", 999), "1");
  assertEquals(keys.get("ada", "old", 1000), undefined);
  assertEquals(await keys.get("ada", "new", 1000), "2");
  assertEquals(keys.get("ada", "new", 1600), undefined);
  assertEquals(keys.users, 0, "a sender without keys was kept");
});

Deno.test("send keys: a key whose append failed is forgotten, so the retry stores", async () => {
  const keys = new SendKeys();
  const failed = Promise.reject(new Error("disk full"));
  keys.add("ada", "k", failed);
  await assertRejects(() => failed);
  await new Promise((r) => setTimeout(r, 0));
  assertEquals(keys.get("ada", "k"), undefined);
  assertEquals(keys.users, 0);
});

Deno.test("send keys: many senders cost nothing once their windows end", () => {
  const keys = new SendKeys(1000, 4);
  for (let u = 0; u < 5000; u++) keys.add(`u${u}`, "k", _stored(String(u)), 0);
  assertEquals(keys.users, 5000);
  // later appends sweep the expired senders out (one sweep every 1024 appends)
  for (let i = 0; i < 1024; i++) keys.add("ada", `k${i}`, _stored(String(i)), 5000);
  assertEquals(keys.users, 1);
});
