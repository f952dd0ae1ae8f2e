/**
 * The embedded chat backend (see `../backend/chat.ts`): history in
 * journals under `<data>/chat/` (`rooms/ROOM.jsonl`, `dm/USER.jsonl`), ids
 * from `chat/seq`, moderation state in `chat/state.json`, the log's epoch in
 * `chat/epoch`; the feed and presence live in this process.
 *
 * @module
 */
import { join } from "@std/path";
import type { ChatBackend } from "../backend/chat.ts";
import { parseChatConfig } from "../chat/chat_config.ts";
import type { ServerConfig } from "../config.ts";
import type { Logger } from "../log.ts";
import { OrderedFeed } from "./chat_feed.ts";
import { EmbeddedChatLog } from "./chat_log.ts";
import { EmbeddedChatPolicy } from "./chat_policy.ts";
import { LocalPresence } from "./chat_presence.ts";
import { ChatStore } from "./chat_store.ts";

/** The embedded chat backend, closed with `close()` (idempotent). */
export type EmbeddedChat = ChatBackend & AsyncDisposable & { close(): Promise<void> };

/** Opens the embedded chat backend under `config.dataDir`. */
export async function openEmbeddedChat(
  config: Pick<ServerConfig, "dataDir" | "features">,
  log: Logger,
): Promise<EmbeddedChat> {
  const chat = parseChatConfig(config.features.chat);
  const dir = join(config.dataDir, "chat");
  const store = await ChatStore.open(dir, {
    roomLimit: chat.historyPerRoom,
    dmLimit: chat.dmHistoryPerUser,
    log,
  });
  let policy: EmbeddedChatPolicy;
  let epoch: string;
  try {
    epoch = await _epoch(join(dir, "epoch"));
    policy = await EmbeddedChatPolicy.open(join(dir, "state.json"), log);
  } catch (e) {
    await store.close();
    throw e;
  }
  const feed = new OrderedFeed(store.highestLoadedId);
  let closing: Promise<void> | undefined;
  const close = (): Promise<void> =>
    closing ??= (async () => {
      const results = await Promise.allSettled([policy.close(), store.close()]);
      const failed = results.find((r) => r.status === "rejected");
      if (failed) throw (failed as PromiseRejectedResult).reason;
    })();
  return {
    log: new EmbeddedChatLog(store, feed, epoch),
    feed,
    policy,
    presence: new LocalPresence(),
    close,
    [Symbol.asyncDispose]: close,
  };
}

/** Reads the data dir's chat epoch, creating it on first start. */
async function _epoch(path: string): Promise<string> {
  try {
    const text = (await Deno.readTextFile(path)).trim();
    if (/^[0-9a-z-]{1,64}$/.test(text)) return text;
  } catch (e) {
    if (!(e instanceof Deno.errors.NotFound)) throw e;
  }
  // time and randomness: two data dirs made in the same millisecond still differ
  const epoch = `${Date.now()}-${crypto.randomUUID().slice(0, 8)}`;
  const tmp = `${path}.tmp`;
  await Deno.writeTextFile(tmp, `${epoch}\n`, { mode: 0o600 });
  await Deno.rename(tmp, path);
  return epoch;
}
