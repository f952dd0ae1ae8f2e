/**
 * The chat backend contract against the embedded implementation, on real
 * temporary data dirs; plus what only the embedded one promises (its files).
 *
 * @module
 */
import { assertEquals } from "@std/assert";
import { join } from "@std/path";
import { openEmbeddedChat } from "../../server/embedded/chat.ts";
import { Logger } from "../../server/log.ts";
import { type ChatStoreOptions, runChatContract } from "./chat_contract.ts";

async function _store(options: ChatStoreOptions = {}) {
  const dataDir = await Deno.makeTempDir({ prefix: "parley-chat-backend-" });
  const log = new Logger({ level: "error", sink: () => {} });
  const config = { dataDir, features: { chat: { ...options } } };
  const open = new Set<{ close(): Promise<void> }>();
  return {
    dataDir,
    async open() {
      const chat = await openEmbeddedChat(config, log);
      open.add(chat);
      return chat;
    },
    async [Symbol.asyncDispose]() {
      await Promise.allSettled([...open].map((c) => c.close()));
      await Deno.remove(dataDir, { recursive: true });
    },
  };
}

runChatContract("embedded", _store);

Deno.test("embedded chat backend: history lives in one journal per room and per user's DMs", async () => {
  await using store = await _store();
  await using chat = await store.open();
  const m = await chat.log.append({ room: "lobby", from: "ada", text: "hi", ts: 1 });
  const d = await chat.log.append({ to: "bob", from: "ada", text: "psst", ts: 2 });
  const lines = async (...p: string[]) =>
    (await Deno.readTextFile(join(store.dataDir, "chat", ...p))).trim().split("\n").map((l) =>
      JSON.parse(l)
    );
  assertEquals(await lines("rooms", "lobby.jsonl"), [m]);
  assertEquals(await lines("dm", "bob.jsonl"), [d]);
  assertEquals(await lines("dm", "ada.jsonl"), [d]);
});

Deno.test("embedded chat backend: close is idempotent", async () => {
  await using store = await _store();
  const chat = await store.open();
  await chat.close();
  await chat.close();
  await chat[Symbol.asyncDispose]();
});
